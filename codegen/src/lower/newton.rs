//! Implicit solves: backward Euler for DERIVATIVE (`derivimplicit`) and
//! KINETIC (`sparse`) blocks, and STEADYSTATE, by Newton's method with a
//! central-difference Jacobian, as NEURON's scopmath `newton` does (increment
//! max(2 % of the value, 1e-6)). The linear systems are solved by Gaussian
//! elimination with partial pivoting, emitted as IR loops over local arrays.

use nmodl_frontend::model::SolveBlock;

use super::kernels::StateElem;
use super::sym::{emit, Sym, Var};
use super::{unsupported, Lower, Mode, Res};
use crate::ir::{
    BinaryOp as B, Block, Body, EnvVar, Handle, Local, LocalArray, MathFn, Statement, Type,
    UnaryOp,
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
        kinetic: bool,
        steady: bool,
        out: &mut Block,
    ) -> Res<()> {
        let (f, fsc) = self.deriv_function(block, if kinetic { Mode::Kinetic } else { Mode::Deriv })?;
        let n = elems.len();
        if n == 0 {
            return Ok(());
        }
        // Per-row equation kind.
        let mut volume: Vec<Option<Sym>> = vec![None; n];
        for (id, vol) in &fsc.compartments {
            if has_local(vol) {
                return Err(unsupported(block.span, "a COMPARTMENT volume that uses a LOCAL is not supported"));
            }
            for (i, e) in elems.iter().enumerate() {
                if e.id == *id {
                    volume[i] = Some(vol.clone());
                }
            }
        }
        let mut conserve: Vec<Option<Sym>> = vec![None; n];
        for (terms, total) in &fsc.conserves {
            if has_local(total) || terms.is_empty() {
                return Err(unsupported(block.span, "a CONSERVE total that uses a LOCAL is not supported"));
            }
            // The conservation law replaces the equation of the last species
            // it names that has not been replaced already.
            let row = terms
                .iter()
                .rev()
                .filter_map(|(_, v)| elems.iter().position(|e| e.x == *v))
                .find(|&i| conserve[i].is_none())
                .ok_or_else(|| unsupported(block.span, "CONSERVE of species that are not solved here"))?;
            let mut sum = Sym::Num(0.0);
            for (c, v) in terms {
                sum = Sym::bin(B::Add, sum, Sym::bin(B::Mul, Sym::Num(*c), Sym::Var(v.clone())));
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

        let done = body.local("#done", Type::F64);
        let count = body.local("#count", Type::F64);
        let mut iter = Block::new();
        let one = Sym::Num(1.0);
        store(body, &mut iter, &loc(count), &Sym::bin(B::Add, loc(count), one));
        // Jacobian, column by column.
        let x0 = body.local("#x0", Type::F64);
        let h = body.local("#h", Type::F64);
        for j in 0..n {
            store(body, &mut iter, &loc(x0), &x(j));
            store(
                body,
                &mut iter,
                &loc(h),
                &Sym::Math(
                    MathFn::Fmax,
                    vec![
                        Sym::Math(MathFn::Fabs, vec![Sym::bin(B::Mul, Sym::Num(0.02), loc(x0))]),
                        Sym::Num(1e-6),
                    ],
                ),
            );
            store(body, &mut iter, &x(j), &Sym::bin(B::Add, loc(x0), loc(h)));
            residual(body, &mut iter, rp);
            store(body, &mut iter, &x(j), &Sym::bin(B::Sub, loc(x0), loc(h)));
            residual(body, &mut iter, rm);
            for i in 0..n {
                let idx = Sym::Num((i * n + j) as f64);
                let fi = Sym::Num(i as f64);
                store(
                    body,
                    &mut iter,
                    &elem(jac, idx),
                    &Sym::bin(
                        B::Div,
                        Sym::bin(B::Sub, elem(rp, fi.clone()), elem(rm, fi)),
                        Sym::bin(B::Mul, Sym::Num(2.0), loc(h)),
                    ),
                );
            }
            store(body, &mut iter, &x(j), &loc(x0));
        }
        residual(body, &mut iter, r);
        // delta = -r, then solve jac * delta = -r in place.
        for i in 0..n {
            let fi = Sym::Num(i as f64);
            store(body, &mut iter, &elem(delta, fi.clone()), &Sym::neg(elem(r, fi)));
        }
        self.emit_dense_solve(body, &mut iter, jac, delta, n);
        // Update and convergence test: |delta_i| <= 1e-9 |x_i| + 1e-15.
        store(body, &mut iter, &loc(done), &Sym::Num(1.0));
        for i in 0..n {
            let fi = Sym::Num(i as f64);
            store(body, &mut iter, &x(i), &Sym::bin(B::Add, x(i), elem(delta, fi.clone())));
            let big = Sym::bin(
                B::Gt,
                Sym::Math(MathFn::Fabs, vec![elem(delta, fi)]),
                Sym::bin(
                    B::Add,
                    Sym::bin(B::Mul, Sym::Num(1e-9), Sym::Math(MathFn::Fabs, vec![x(i)])),
                    Sym::Num(1e-15),
                ),
            );
            // NaN deltas never converge.
            let nan = Sym::bin(B::Ne, x(i), x(i));
            let cond = emit(&Sym::bin(B::Or, big, nan), body);
            let zero = body.constant(0.0);
            iter.push(Statement::If {
                condition: cond,
                accept: vec![Statement::Assign { local: done, value: zero }],
                reject: Vec::new(),
            });
        }
        let fail = emit(
            &Sym::bin(
                B::And,
                Sym::bin(B::Eq, loc(done), Sym::Num(0.0)),
                Sym::bin(B::Ge, loc(count), Sym::Num(MAX_ITERATIONS as f64)),
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

    /// Solves `a (n×n, row-major) · x = b` in place (`b` becomes `x`) by
    /// Gaussian elimination with partial pivoting; a zero pivot fails with
    /// `STATUS_SINGULAR`.
    fn emit_dense_solve(
        &mut self,
        body: &mut Body,
        out: &mut Block,
        a: Handle<LocalArray>,
        b: Handle<LocalArray>,
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

        // --- forward elimination, for k in 0..=last
        let mut kbody = Block::new();
        store(body, &mut kbody, &loc(p), &loc(k));
        store(body, &mut kbody, &loc(amax), &abs(at(loc(k), loc(k))));
        {
            // pivot search: for i in k+1..=last
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
            let start = emit(&plus1(k), body);
            let end = body.constant(last);
            kbody.push(Statement::ForRange {
                var: i,
                start,
                end,
                step: 1.0,
                body: ib,
                max_iterations: n as u32 + 1,
            });
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
            // row swap when p != k
            let mut sw = Block::new();
            let mut jb = Block::new();
            store(body, &mut jb, &loc(tmp), &at(loc(k), loc(j)));
            store(body, &mut jb, &at(loc(k), loc(j)), &at(loc(p), loc(j)));
            store(body, &mut jb, &at(loc(p), loc(j)), &loc(tmp));
            let start = body.constant(0.0);
            let end = body.constant(last);
            sw.push(Statement::ForRange {
                var: j,
                start,
                end,
                step: 1.0,
                body: jb,
                max_iterations: n as u32 + 1,
            });
            store(body, &mut sw, &loc(tmp), &elem(b, loc(k)));
            store(body, &mut sw, &elem(b, loc(k)), &elem(b, loc(p)));
            store(body, &mut sw, &elem(b, loc(p)), &loc(tmp));
            let cond = emit(&Sym::bin(B::Ne, loc(p), loc(k)), body);
            kbody.push(Statement::If {
                condition: cond,
                accept: sw,
                reject: Vec::new(),
            });
        }
        {
            // eliminate below the pivot
            let mut ib = Block::new();
            store(body, &mut ib, &loc(fct), &Sym::bin(B::Div, at(loc(i), loc(k)), at(loc(k), loc(k))));
            let mut jb = Block::new();
            store(
                body,
                &mut jb,
                &at(loc(i), loc(j)),
                &Sym::bin(B::Sub, at(loc(i), loc(j)), Sym::bin(B::Mul, loc(fct), at(loc(k), loc(j)))),
            );
            let start = emit(&plus1(k), body);
            let end = body.constant(last);
            ib.push(Statement::ForRange {
                var: j,
                start,
                end,
                step: 1.0,
                body: jb,
                max_iterations: n as u32 + 1,
            });
            store(
                body,
                &mut ib,
                &elem(b, loc(i)),
                &Sym::bin(B::Sub, elem(b, loc(i)), Sym::bin(B::Mul, loc(fct), elem(b, loc(k)))),
            );
            let start = emit(&plus1(k), body);
            let end = body.constant(last);
            kbody.push(Statement::ForRange {
                var: i,
                start,
                end,
                step: 1.0,
                body: ib,
                max_iterations: n as u32 + 1,
            });
        }
        let start = body.constant(0.0);
        let end = body.constant(last);
        out.push(Statement::ForRange {
            var: k,
            start,
            end,
            step: 1.0,
            body: kbody,
            max_iterations: n as u32 + 1,
        });

        // --- back substitution, for i from last down to 0
        let mut ib = Block::new();
        store(body, &mut ib, &loc(tmp), &elem(b, loc(i)));
        let mut jb = Block::new();
        store(
            body,
            &mut jb,
            &loc(tmp),
            &Sym::bin(B::Sub, loc(tmp), Sym::bin(B::Mul, at(loc(i), loc(j)), elem(b, loc(j)))),
        );
        let start = emit(&plus1(i), body);
        let end = body.constant(last);
        ib.push(Statement::ForRange {
            var: j,
            start,
            end,
            step: 1.0,
            body: jb,
            max_iterations: n as u32 + 1,
        });
        store(body, &mut ib, &elem(b, loc(i)), &Sym::bin(B::Div, loc(tmp), at(loc(i), loc(i))));
        let start = body.constant(last);
        let end = body.constant(0.0);
        out.push(Statement::ForRange {
            var: i,
            start,
            end,
            step: -1.0,
            body: ib,
            max_iterations: n as u32 + 1,
        });
    }
}
