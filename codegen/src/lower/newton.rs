//! Implicit solves: backward Euler for DERIVATIVE (`derivimplicit`) and
//! KINETIC (`sparse`) blocks, and STEADYSTATE, by Newton's method with a
//! central-difference Jacobian, as NEURON's scopmath `newton` does (increment
//! max(2 % of the value, 1e-6)). The linear systems are solved by Gaussian
//! elimination with partial pivoting, emitted as IR loops over local arrays.

use nmodl_frontend::model::SolveBlock;

use super::kernels::StateElem;
use super::sym::{self, emit, Sym, Var};
use super::{unsupported, Lower, Mode, Res};
use crate::ir::{
    BinaryOp as B, Block, Body, EnvVar, Handle, Local, LocalArray, MathFn, Statement, Type, UnaryOp,
};

/// At most this many Newton iterations; then the kernel fails with
/// `STATUS_NEWTON_FAILED`.
const MAX_ITERATIONS: u32 = 50;

fn loc(l: Handle<Local>) -> Sym {
    Sym::Var(Var::Local(l))
}

fn elem(a: Handle<LocalArray>, i: Sym) -> Sym {
    Sym::Var(Var::LocalArray(a, Box::new(i)))
}

fn has_local(s: &Sym) -> bool {
    match s {
        Sym::Var(Var::Local(_) | Var::LocalArray(..)) => true,
        Sym::Var(Var::Field(_, Some(i)) | Var::Global(_, Some(i))) => has_local(i),
        Sym::Var(_) | Sym::Num(_) | Sym::Bool(_) | Sym::Random => false,
        Sym::Unary(_, a) | Sym::BoolToF64(a) | Sym::F64ToBool(a) => has_local(a),
        Sym::Binary(_, a, b) => has_local(a) || has_local(b),
        Sym::Select(c, a, b) => has_local(c) || has_local(a) || has_local(b),
        Sym::Math(_, v) | Sym::Call(_, v) => v.iter().any(has_local),
    }
}

fn store(body: &mut Body, out: &mut Block, target: &Sym, value: &Sym) {
    let value_h;
    match target {
        Sym::Var(Var::Local(l)) => {
            value_h = emit(value, body);
            out.push(Statement::Assign {
                local: *l,
                value: value_h,
            });
        }
        Sym::Var(v) => {
            let place = v.place(body).expect("storable");
            value_h = emit(value, body);
            out.push(Statement::Store {
                place,
                value: value_h,
            });
        }
        _ => unreachable!("store to a non-variable"),
    }
}

impl<'a> Lower<'a> {
    /// Emits the Newton solve of `block` for `elems` into `out`.
    pub(super) fn newton(
        &mut self,
        body: &mut Body,
        block: &SolveBlock,
        elems: &[StateElem],
        mode: Mode,
        steady: bool,
        out: &mut Block,
    ) -> Res<()> {
        let (f, fsc) = self.deriv_function(block, mode)?;
        if mode == Mode::Algebraic && fsc.equations != elems.len() {
            return Err(unsupported(
                block.span,
                format!(
                    "{} has {} equations for {} unknowns",
                    block.name,
                    fsc.equations,
                    elems.len()
                ),
            ));
        }
        let n = elems.len();
        if n == 0 {
            return Ok(());
        }
        // Per-row equation kind.
        let mut volume: Vec<Option<Sym>> = vec![None; n];
        for (id, element, vol) in &fsc.compartments {
            if has_local(vol) {
                return Err(unsupported(
                    block.span,
                    "a COMPARTMENT volume that uses a LOCAL is not supported",
                ));
            }
            let mut k = 0;
            for (i, e) in elems.iter().enumerate() {
                if e.id == *id {
                    if element.is_none() || *element == Some(k) {
                        volume[i] = Some(vol.clone());
                    }
                    k += 1;
                }
            }
        }
        let mut conserve: Vec<Option<Sym>> = vec![None; n];
        for (terms, total) in &fsc.conserves {
            if has_local(total) || terms.is_empty() {
                return Err(unsupported(
                    block.span,
                    "a CONSERVE total that uses a LOCAL is not supported",
                ));
            }
            // The conservation law replaces the equation of the last species
            // it names that has not been replaced already.
            let row = terms
                .iter()
                .rev()
                .filter_map(|(_, v)| elems.iter().position(|e| e.x == *v))
                .find(|&i| conserve[i].is_none())
                .ok_or_else(|| {
                    unsupported(block.span, "CONSERVE of species that are not solved here")
                })?;
            // With COMPARTMENTs the law is on amounts: Σ coef·volume·state
            // (nocmodl's kinetic.cpp), so CONSERVE B + CaB = Btot in a shell
            // of volume `depth` holds depth·(B + CaB) = Btot.
            let mut sum = Sym::Num(0.0);
            for (c, v) in terms {
                let mut term = Sym::bin(B::Mul, Sym::Num(*c), Sym::Var(v.clone()));
                if let Some(vol) = elems
                    .iter()
                    .position(|e| e.x == *v)
                    .and_then(|i| volume[i].clone())
                {
                    term = Sym::bin(B::Mul, vol, term);
                }
                sum = Sym::bin(B::Add, sum, term);
            }
            conserve[row] = Some(Sym::bin(B::Sub, sum, total.clone()));
        }

        let save = body.array("#save", n as u32);
        let r = body.array("#r", n as u32);
        let rp = body.array("#rp", n as u32);
        let rm = body.array("#rm", n as u32);
        let jac = body.array("#jac", (n * n) as u32);
        let delta = body.array("#delta", n as u32);
        let x = |i: usize| Sym::Var(elems[i].x.clone());
        for i in 0..n {
            store(body, out, &elem(save, Sym::Num(i as f64)), &x(i));
        }
        let dt = Sym::Var(Var::Env(EnvVar::Dt));
        // residual → array `target`
        let residual = |body: &mut Body, out: &mut Block, target: Handle<LocalArray>| {
            out.push(Statement::Call {
                function: f,
                args: Vec::new(),
            });
            for i in 0..n {
                let value = if let Some(c) = &conserve[i] {
                    c.clone()
                } else {
                    let d = Sym::Var(elems[i].d.clone());
                    if steady {
                        d
                    } else {
                        let mut change = Sym::bin(
                            B::Div,
                            Sym::bin(B::Sub, x(i), elem(save, Sym::Num(i as f64))),
                            dt.clone(),
                        );
                        if let Some(v) = &volume[i] {
                            change = Sym::bin(B::Mul, v.clone(), change);
                        }
                        Sym::bin(B::Sub, d, change)
                    }
                };
                store(body, out, &elem(target, Sym::Num(i as f64)), &value);
            }
        };

        let style = if steady {
            Style::Exact
        } else if mode == Mode::Kinetic {
            Style::Sparse
        } else {
            Style::Derivimplicit
        };
        let done = body.local("#done", Type::F64);
        let count = body.local("#count", Type::F64);
        let change = body.local("#change", Type::F64);
        let perm = body.array("#perm", n as u32);
        store(body, out, &loc(change), &Sym::Num(1.0));
        let mut iter = Block::new();
        store(
            body,
            &mut iter,
            &loc(count),
            &Sym::bin(B::Add, loc(count), Sym::Num(1.0)),
        );
        // The Jacobian by central differences, restoring each x by adding
        // the increment back (as scopmath does), then F at x into r.
        let mut build = Block::new();
        let h = body.local("#h", Type::F64);
        for j in 0..n {
            store(
                body,
                &mut build,
                &loc(h),
                &Sym::Math(
                    MathFn::Fmax,
                    vec![
                        Sym::Math(MathFn::Fabs, vec![Sym::bin(B::Mul, Sym::Num(0.02), x(j))]),
                        Sym::Num(1e-6),
                    ],
                ),
            );
            store(body, &mut build, &x(j), &Sym::bin(B::Add, x(j), loc(h)));
            residual(body, &mut build, rp);
            store(
                body,
                &mut build,
                &x(j),
                &Sym::bin(B::Sub, x(j), Sym::bin(B::Mul, Sym::Num(2.0), loc(h))),
            );
            residual(body, &mut build, rm);
            for i in 0..n {
                let idx = Sym::Num((i * n + j) as f64);
                let fi = Sym::Num(i as f64);
                store(
                    body,
                    &mut build,
                    &elem(jac, idx),
                    &Sym::bin(
                        B::Div,
                        Sym::bin(B::Sub, elem(rp, fi.clone()), elem(rm, fi)),
                        Sym::bin(B::Mul, Sym::Num(2.0), loc(h)),
                    ),
                );
            }
            store(body, &mut build, &x(j), &Sym::bin(B::Add, x(j), loc(h)));
        }
        residual(body, &mut build, r);
        if style == Style::Sparse {
            // scopmath sparse: the analytic matrix the kinetic block built
            // (mass action only: rates and `<<` fluxes count as constants),
            // minus volume/dt on the diagonal; CONSERVE rows hold their
            // coefficients. One evaluation per iteration.
            build = Block::new();
            residual(body, &mut build, r);
            let jfield = fsc.jacobian.expect("kinetic blocks have a Jacobian");
            for i in 0..n {
                for j in 0..n {
                    let idx = Sym::Num((i * n + j) as f64);
                    let value = if let Some(c) = &conserve[i] {
                        sym::simplify(c.diff(&elems[j].x).unwrap_or(Sym::Num(0.0)))
                    } else {
                        let mut v = Sym::Var(Var::Field(jfield, Some(Box::new(idx.clone()))));
                        if i == j {
                            let vol = volume[i].clone().unwrap_or(Sym::Num(1.0));
                            v = Sym::bin(B::Sub, v, Sym::bin(B::Div, vol, dt.clone()));
                        }
                        v
                    };
                    store(body, &mut build, &elem(jac, idx), &value);
                }
            }
        }
        self.emit_lu_factor(body, &mut build, jac, perm, n);
        match style {
            // scopmath newton: a new Jacobian only while the solution still
            // changes by more than MAXCHANGE (5 %); otherwise the old one.
            Style::Derivimplicit => {
                let cond = emit(&Sym::bin(B::Gt, loc(change), Sym::Num(0.05)), body);
                iter.push(Statement::If {
                    condition: cond,
                    accept: build,
                    reject: Vec::new(),
                });
            }
            Style::Sparse | Style::Exact => iter.extend(build),
        }
        // delta = -r; solve.
        for i in 0..n {
            let fi = Sym::Num(i as f64);
            store(
                body,
                &mut iter,
                &elem(delta, fi.clone()),
                &Sym::neg(elem(r, fi)),
            );
        }
        self.emit_lu_solve(body, &mut iter, jac, perm, delta, n);
        // Update, and the measure of change.
        store(body, &mut iter, &loc(change), &Sym::Num(0.0));
        for i in 0..n {
            let fi = Sym::Num(i as f64);
            let d = elem(delta, fi);
            let term = match style {
                // max |delta/x| over |x| > ZERO (1e-8), before the update.
                Style::Derivimplicit => Sym::Select(
                    Box::new(Sym::bin(
                        B::Gt,
                        Sym::Math(MathFn::Fabs, vec![x(i)]),
                        Sym::Num(1e-8),
                    )),
                    Box::new(Sym::Math(
                        MathFn::Fabs,
                        vec![Sym::bin(B::Div, d.clone(), x(i))],
                    )),
                    Box::new(Sym::Num(0.0)),
                ),
                // sparse: Σ |delta|.
                Style::Sparse => Sym::Math(MathFn::Fabs, vec![d.clone()]),
                // exact: max |delta| / (|x| + 1e-6) after the update
                Style::Exact => Sym::Num(0.0),
            };
            match style {
                Style::Derivimplicit => store(
                    body,
                    &mut iter,
                    &loc(change),
                    &Sym::Math(MathFn::Fmax, vec![loc(change), term]),
                ),
                Style::Sparse => store(
                    body,
                    &mut iter,
                    &loc(change),
                    &Sym::bin(B::Add, loc(change), term),
                ),
                Style::Exact => {}
            }
            store(body, &mut iter, &x(i), &Sym::bin(B::Add, x(i), d.clone()));
            match style {
                // Nonlinear kinetic schemes: negative states are clamped.
                Style::Sparse => {
                    let neg = emit(&Sym::bin(B::Lt, x(i), Sym::Num(0.0)), body);
                    let mut acc = Block::new();
                    store(body, &mut acc, &x(i), &Sym::Num(0.0));
                    iter.push(Statement::If {
                        condition: neg,
                        accept: acc,
                        reject: Vec::new(),
                    });
                }
                Style::Exact => {
                    let rel = Sym::bin(
                        B::Div,
                        Sym::Math(MathFn::Fabs, vec![d]),
                        Sym::bin(B::Add, Sym::Math(MathFn::Fabs, vec![x(i)]), Sym::Num(1e-6)),
                    );
                    store(
                        body,
                        &mut iter,
                        &loc(change),
                        &Sym::Math(MathFn::Fmax, vec![loc(change), rel]),
                    );
                }
                Style::Derivimplicit => {}
            }
        }
        let converged = match style {
            Style::Derivimplicit => {
                // F at the new x; converged when change <= 1e-6 and max |F| <= 1e-8.
                residual(body, &mut iter, r);
                let mut maxdev = Sym::Num(0.0);
                for i in 0..n {
                    maxdev = Sym::Math(
                        MathFn::Fmax,
                        vec![
                            maxdev,
                            Sym::Math(MathFn::Fabs, vec![elem(r, Sym::Num(i as f64))]),
                        ],
                    );
                }
                Sym::bin(
                    B::And,
                    Sym::bin(B::Le, loc(change), Sym::Num(1e-6)),
                    Sym::bin(B::Le, maxdev, Sym::Num(1e-8)),
                )
            }
            Style::Sparse => Sym::bin(B::Le, loc(change), Sym::Num(1e-6)),
            Style::Exact => Sym::bin(B::Le, loc(change), Sym::Num(1e-12)),
        };
        let cond = emit(&converged, body);
        let one = body.constant(1.0);
        iter.push(Statement::If {
            condition: cond,
            accept: vec![Statement::Assign {
                local: done,
                value: one,
            }],
            reject: Vec::new(),
        });
        let max_iter = match style {
            Style::Sparse => 22.0,
            _ => MAX_ITERATIONS as f64,
        };
        let fail = emit(
            &Sym::bin(
                B::And,
                Sym::bin(B::Eq, loc(done), Sym::Num(0.0)),
                Sym::bin(B::Ge, loc(count), Sym::Num(max_iter)),
            ),
            body,
        );
        iter.push(Statement::If {
            condition: fail,
            accept: vec![Statement::Error {
                status: runtime::abi::STATUS_NEWTON_FAILED,
            }],
            reject: Vec::new(),
        });
        let cond = emit(&Sym::bin(B::Eq, loc(done), Sym::Num(0.0)), body);
        out.push(Statement::While {
            condition: cond,
            body: iter,
            max_iterations: MAX_ITERATIONS + 1,
        });
        // Leave D consistent with the final state, as NEURON's last call does.
        out.push(Statement::Call {
            function: f,
            args: Vec::new(),
        });
        Ok(())
    }

    /// LU-factorises `a` (n×n, row-major) in place with partial pivoting,
    /// recording the row order in `perm`; a zero pivot fails with
    /// `STATUS_SINGULAR`.
    fn emit_lu_factor(
        &mut self,
        body: &mut Body,
        out: &mut Block,
        a: Handle<LocalArray>,
        perm: Handle<LocalArray>,
        n: usize,
    ) {
        let nn = Sym::Num(n as f64);
        let last = n as f64 - 1.0;
        let k = body.local("#k", Type::F64);
        let i = body.local("#i", Type::F64);
        let j = body.local("#j", Type::F64);
        let p = body.local("#p", Type::F64);
        let amax = body.local("#amax", Type::F64);
        let fct = body.local("#f", Type::F64);
        let tmp = body.local("#tmp", Type::F64);
        let at = |r: Sym, c: Sym| elem(a, Sym::bin(B::Add, Sym::bin(B::Mul, r, nn.clone()), c));
        let abs = |s: Sym| Sym::Math(MathFn::Fabs, vec![s]);
        let plus1 = |l: Handle<Local>| Sym::bin(B::Add, loc(l), Sym::Num(1.0));
        let range = |body: &mut Body, var: Handle<Local>, from: Sym, to: f64, inner: Block| {
            let start = emit(&from, body);
            let end = body.constant(to);
            Statement::ForRange {
                var,
                start,
                end,
                step: 1.0,
                body: inner,
                max_iterations: n as u32 + 1,
            }
        };
        for r in 0..n {
            store(
                body,
                out,
                &elem(perm, Sym::Num(r as f64)),
                &Sym::Num(r as f64),
            );
        }
        let mut kbody = Block::new();
        store(body, &mut kbody, &loc(p), &loc(k));
        store(body, &mut kbody, &loc(amax), &abs(at(loc(k), loc(k))));
        {
            let mut ib = Block::new();
            let cond = emit(&Sym::bin(B::Gt, abs(at(loc(i), loc(k))), loc(amax)), body);
            let mut acc = Block::new();
            store(body, &mut acc, &loc(amax), &abs(at(loc(i), loc(k))));
            store(body, &mut acc, &loc(p), &loc(i));
            ib.push(Statement::If {
                condition: cond,
                accept: acc,
                reject: Vec::new(),
            });
            let st = range(body, i, plus1(k), last, ib);
            kbody.push(st);
        }
        {
            let cond = emit(
                &Sym::Unary(
                    UnaryOp::Not,
                    Box::new(Sym::bin(B::Gt, loc(amax), Sym::Num(0.0))),
                ),
                body,
            );
            kbody.push(Statement::If {
                condition: cond,
                accept: vec![Statement::Error {
                    status: runtime::abi::STATUS_SINGULAR,
                }],
                reject: Vec::new(),
            });
        }
        {
            let mut sw = Block::new();
            let mut jb = Block::new();
            store(body, &mut jb, &loc(tmp), &at(loc(k), loc(j)));
            store(body, &mut jb, &at(loc(k), loc(j)), &at(loc(p), loc(j)));
            store(body, &mut jb, &at(loc(p), loc(j)), &loc(tmp));
            let st = range(body, j, Sym::Num(0.0), last, jb);
            sw.push(st);
            store(body, &mut sw, &loc(tmp), &elem(perm, loc(k)));
            store(body, &mut sw, &elem(perm, loc(k)), &elem(perm, loc(p)));
            store(body, &mut sw, &elem(perm, loc(p)), &loc(tmp));
            let cond = emit(&Sym::bin(B::Ne, loc(p), loc(k)), body);
            kbody.push(Statement::If {
                condition: cond,
                accept: sw,
                reject: Vec::new(),
            });
        }
        {
            // Multipliers below the pivot, stored in place (L), and the update.
            let mut ib = Block::new();
            store(
                body,
                &mut ib,
                &loc(fct),
                &Sym::bin(B::Div, at(loc(i), loc(k)), at(loc(k), loc(k))),
            );
            store(body, &mut ib, &at(loc(i), loc(k)), &loc(fct));
            let mut jb = Block::new();
            store(
                body,
                &mut jb,
                &at(loc(i), loc(j)),
                &Sym::bin(
                    B::Sub,
                    at(loc(i), loc(j)),
                    Sym::bin(B::Mul, loc(fct), at(loc(k), loc(j))),
                ),
            );
            let st = range(body, j, plus1(k), last, jb);
            ib.push(st);
            let st = range(body, i, plus1(k), last, ib);
            kbody.push(st);
        }
        let st = range(body, k, Sym::Num(0.0), last, kbody);
        out.push(st);
    }

    /// Solves `LU x = P b` with the factors of [`Self::emit_lu_factor`];
    /// `b` becomes `x`.
    fn emit_lu_solve(
        &mut self,
        body: &mut Body,
        out: &mut Block,
        a: Handle<LocalArray>,
        perm: Handle<LocalArray>,
        b: Handle<LocalArray>,
        n: usize,
    ) {
        let nn = Sym::Num(n as f64);
        let at = |r: Sym, c: Sym| elem(a, Sym::bin(B::Add, Sym::bin(B::Mul, r, nn.clone()), c));
        // Permute b into y (unrolled: n is small and known).
        let y = body.array("#y", n as u32);
        for r in 0..n {
            store(
                body,
                out,
                &elem(y, Sym::Num(r as f64)),
                &elem(b, elem(perm, Sym::Num(r as f64))),
            );
        }
        // Forward substitution with unit L, back substitution with U.
        for r in 0..n {
            let mut sum = elem(y, Sym::Num(r as f64));
            for c in 0..r {
                sum = Sym::bin(
                    B::Sub,
                    sum,
                    Sym::bin(
                        B::Mul,
                        at(Sym::Num(r as f64), Sym::Num(c as f64)),
                        elem(y, Sym::Num(c as f64)),
                    ),
                );
            }
            store(body, out, &elem(y, Sym::Num(r as f64)), &sum);
        }
        for r in (0..n).rev() {
            let mut sum = elem(y, Sym::Num(r as f64));
            for c in r + 1..n {
                sum = Sym::bin(
                    B::Sub,
                    sum,
                    Sym::bin(
                        B::Mul,
                        at(Sym::Num(r as f64), Sym::Num(c as f64)),
                        elem(b, Sym::Num(c as f64)),
                    ),
                );
            }
            store(
                body,
                out,
                &elem(b, Sym::Num(r as f64)),
                &Sym::bin(B::Div, sum, at(Sym::Num(r as f64), Sym::Num(r as f64))),
            );
        }
    }
}

/// How a Newton solve iterates and when it stops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// scopmath `newton` (derivimplicit): Jacobian reused while the
    /// relative change is at most 5 %; stop when the largest relative change
    /// is at most 1e-6 and the largest residual at most 1e-8; 50 iterations.
    Derivimplicit,
    /// scopmath `sparse` (KINETIC): a new Jacobian every iteration, negative
    /// states clamped to 0, stop when Σ|Δ| ≤ 1e-6; at most 22 iterations.
    Sparse,
    /// Steady states and LINEAR/NONLINEAR: full Newton to a relative change
    /// of 1e-12.
    Exact,
}
