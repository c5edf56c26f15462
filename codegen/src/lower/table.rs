//! TABLE: NEURON's tabulation of a one-argument FUNCTION or PROCEDURE.
//!
//! For `TABLE a, b DEPEND d FROM lo TO hi WITH n` in `PROCEDURE p(x)`:
//! hidden globals hold `tmin`, `mfac = 1/dx`, the saved DEPEND values, a
//! "built" flag and one array of `n + 1` values per tabulated name (for a
//! FUNCTION, its result). The `table_check` kernel (run by the simulator
//! before INITIAL and before every step) rebuilds the tables when `usetable`
//! is nonzero and the table was never built or a DEPEND value changed: it
//! evaluates the body at `x = lo, lo + dx, …` (x accumulated by `+= dx`, as
//! nocmodl's loop does). `p(x)` then looks up: `usetable == 0` runs the body;
//! otherwise `xi = mfac·(x − tmin)`; NaN propagates to every name; `xi <= 0`
//! gives the first point, `xi >= n` the last; else linear interpolation
//! between points `⌊xi⌋` and `⌊xi⌋ + 1`.

use nmodl_frontend::model::{Callable, TableSpec};

use super::sym::{emit, Sym, Var};
use super::{codes, Lower, Res, Scope};
use crate::ir::{
    BinaryOp as B, Block, Body, GlobalDecl, Handle, Kernel, Local, MathFn, Phase, Statement, Type,
};
use nmodl_frontend::diagnostic::Diagnostic;

pub(super) struct TableGlobals {
    tmin: Handle<GlobalDecl>,
    mfac: Handle<GlobalDecl>,
    made: Handle<GlobalDecl>,
    saved: Vec<Handle<GlobalDecl>>,
    /// (the tabulated symbol or None for a FUNCTION's value, its array)
    arrays: Vec<(Option<nmodl_frontend::model::SymbolId>, Handle<GlobalDecl>)>,
}

fn g(h: Handle<GlobalDecl>) -> Sym {
    Sym::Var(Var::Global(h, None))
}

fn gi(h: Handle<GlobalDecl>, i: Sym) -> Sym {
    Sym::Var(Var::Global(h, Some(Box::new(i))))
}

fn l(h: Handle<Local>) -> Sym {
    Sym::Var(Var::Local(h))
}

fn set(body: &mut Body, out: &mut Block, target: &Sym, value: &Sym) {
    match target {
        Sym::Var(Var::Local(h)) => {
            let value = emit(value, body);
            out.push(Statement::Assign { local: *h, value });
        }
        Sym::Var(v) => {
            let place = v.place(body).expect("storable");
            let value = emit(value, body);
            out.push(Statement::Store { place, value });
        }
        _ => unreachable!(),
    }
}

impl<'a> Lower<'a> {
    fn table_globals(&mut self, c: &Callable, t: &TableSpec) -> TableGlobals {
        let owner = &c.name;
        let n = (t.with.max(1) + 1) as u32;
        let tmin = self.add_global(&format!("#tmin_{owner}"), "", 1, 0.0);
        let mfac = self.add_global(&format!("#mfac_{owner}"), "", 1, 0.0);
        let made = self.add_global(&format!("#made_{owner}"), "", 1, 0.0);
        let saved = t
            .depend
            .iter()
            .map(|&d| {
                let name = format!("#sav_{owner}_{}", self.sym(d).name);
                self.add_global(&name, "", 1, 0.0)
            })
            .collect();
        let arrays = if c.is_function {
            vec![(None, self.add_global(&format!("#t_{owner}"), "", n, 0.0))]
        } else {
            t.names
                .iter()
                .map(|&s| {
                    let name = format!("#t_{owner}_{}", self.sym(s).name);
                    (Some(s), self.add_global(&name, "", n, 0.0))
                })
                .collect()
        };
        TableGlobals {
            tmin,
            mfac,
            made,
            saved,
            arrays,
        }
    }

    /// Builds the public (looking-up) function of a TABLE'd callable, and
    /// records what the table_check kernel needs.
    pub(super) fn table_lookup_function(&mut self, c: &Callable, t: usize) -> Res<()> {
        let spec = &self.mech.tables[t];
        if c.params.len() != 1 {
            return Err(Diagnostic::error(
                codes::BAD_TABLE,
                spec.span,
                "TABLE needs a FUNCTION or PROCEDURE with exactly one argument (as in NEURON)",
            ));
        }
        let tg = self.table_globals(c, spec);
        let usetable = self.usetable.expect("usetable exists when a TABLE does");
        let raw = self.raw_functions[&c.symbol];
        let with = spec.with.max(1) as f64;
        let mut body = Body::default();
        let arg = body.local(&c.params[0].name, Type::F64);
        let result = c.is_function.then(|| body.local(&c.name, Type::F64));
        let mut out = Block::new();
        // Targets of the lookup: the tabulated fields/globals, or the result.
        let mut targets = Vec::new();
        for (sym, arr) in &tg.arrays {
            let target = match sym {
                None => l(result.expect("function")),
                Some(s) => self.storage_var(*s, None, spec.span)?,
            };
            targets.push((target, *arr));
        }
        // usetable == 0: evaluate directly.
        {
            let cond = emit(&Sym::bin(B::Eq, g(usetable), Sym::Num(0.0)), &mut body);
            let mut acc = Block::new();
            let a = body.read(arg);
            match result {
                Some(r) => {
                    let v = body.call(raw, &[a]);
                    acc.push(Statement::Assign { local: r, value: v });
                }
                None => acc.push(Statement::Call {
                    function: raw,
                    args: vec![a],
                }),
            }
            acc.push(Statement::Return);
            out.push(Statement::If {
                condition: cond,
                accept: acc,
                reject: Vec::new(),
            });
        }
        let xi = body.local("#xi", Type::F64);
        set(
            &mut body,
            &mut out,
            &l(xi),
            &Sym::bin(B::Mul, g(tg.mfac), Sym::bin(B::Sub, l(arg), g(tg.tmin))),
        );
        let branch = |body: &mut Body,
                      out: &mut Block,
                      cond: Sym,
                      value: &dyn Fn(Handle<GlobalDecl>) -> Sym| {
            let c = emit(&cond, body);
            let mut acc = Block::new();
            for (target, arr) in &targets {
                set(body, &mut acc, target, &value(*arr));
            }
            acc.push(Statement::Return);
            out.push(Statement::If {
                condition: c,
                accept: acc,
                reject: Vec::new(),
            });
        };
        branch(&mut body, &mut out, Sym::bin(B::Ne, l(xi), l(xi)), &|_| {
            l(xi)
        });
        branch(
            &mut body,
            &mut out,
            Sym::bin(B::Le, l(xi), Sym::Num(0.0)),
            &|a| gi(a, Sym::Num(0.0)),
        );
        branch(
            &mut body,
            &mut out,
            Sym::bin(B::Ge, l(xi), Sym::Num(with)),
            &|a| gi(a, Sym::Num(with)),
        );
        let i = body.local("#i", Type::F64);
        let theta = body.local("#theta", Type::F64);
        set(
            &mut body,
            &mut out,
            &l(i),
            &Sym::Math(MathFn::Floor, vec![l(xi)]),
        );
        set(
            &mut body,
            &mut out,
            &l(theta),
            &Sym::bin(B::Sub, l(xi), l(i)),
        );
        for (target, arr) in &targets {
            let lo = gi(*arr, l(i));
            let hi = gi(*arr, Sym::bin(B::Add, l(i), Sym::Num(1.0)));
            set(
                &mut body,
                &mut out,
                target,
                &Sym::bin(
                    B::Add,
                    lo.clone(),
                    Sym::bin(B::Mul, l(theta), Sym::bin(B::Sub, hi, lo)),
                ),
            );
        }
        body.block = out;
        let public = self.functions[&c.symbol];
        let f = &mut self.module.functions[public];
        f.body = body;
        f.params = vec![arg];
        f.result = result;
        self.pending_tables.push((c.symbol, t, tg));
        Ok(())
    }

    /// The `table_check` kernel: rebuilds every table that needs it.
    pub(super) fn table_check_kernel(&mut self) -> Res<()> {
        if self.pending_tables.is_empty() {
            return Ok(());
        }
        let usetable = self.usetable.expect("usetable");
        let mut body = Body::default();
        let mut out = Block::new();
        let mut all = Block::new();
        let pending = std::mem::take(&mut self.pending_tables);
        for (sym, t, tg) in pending {
            let TableGlobals {
                tmin,
                mfac,
                made,
                saved,
                arrays,
            } = tg;
            let spec = &self.mech.tables[t];
            let mut sc = Scope::default();
            // Rebuild when never built or a DEPEND value changed.
            let mut cond = Sym::bin(B::Eq, g(made), Sym::Num(0.0));
            for (&d, &s) in spec.depend.iter().zip(&saved) {
                let dv = self.storage_var(d, None, spec.span)?;
                cond = Sym::bin(B::Or, cond, Sym::bin(B::Ne, g(s), dv));
            }
            let mut build = Block::new();
            let from = self.expr(&mut sc, &mut body, &spec.from)?.as_f64();
            let to = self.expr(&mut sc, &mut body, &spec.to)?.as_f64();
            let with = spec.with.max(1) as f64;
            let tmax = body.local("#tmax", Type::F64);
            let dx = body.local("#dx", Type::F64);
            let x = body.local("#x", Type::F64);
            set(&mut body, &mut build, &g(tmin), &from);
            set(&mut body, &mut build, &l(tmax), &to);
            set(
                &mut body,
                &mut build,
                &l(dx),
                &Sym::bin(B::Div, Sym::bin(B::Sub, l(tmax), g(tmin)), Sym::Num(with)),
            );
            set(
                &mut body,
                &mut build,
                &g(mfac),
                &Sym::bin(B::Div, Sym::Num(1.0), l(dx)),
            );
            set(&mut body, &mut build, &l(x), &g(tmin));
            // `_f_name(x)` (the un-tabulated body) into the current
            // instance, then copy the tabulated values, as nocmodl does.
            let raw = self.raw_functions[&sym];
            let i = body.local("#ti", Type::F64);
            let mut each = Block::new();
            for (s, arr) in &arrays {
                let value = match s {
                    None => Sym::Call(raw, vec![l(x)]),
                    Some(s) => self.storage_var(*s, None, spec.span)?,
                };
                if s.is_some() && std::ptr::eq(s, &arrays[0].0) {
                    let a = emit(&l(x), &mut body);
                    each.push(Statement::Call {
                        function: raw,
                        args: vec![a],
                    });
                }
                set(&mut body, &mut each, &gi(*arr, l(i)), &value);
            }
            set(&mut body, &mut each, &l(x), &Sym::bin(B::Add, l(x), l(dx)));
            let start = body.constant(0.0);
            let end = body.constant(with);
            build.push(Statement::ForRange {
                var: i,
                start,
                end,
                step: 1.0,
                body: each,
                max_iterations: with as u32 + 2,
            });
            for (&d, &s) in spec.depend.iter().zip(&saved) {
                let dv = self.storage_var(d, None, spec.span)?;
                set(&mut body, &mut build, &g(s), &dv);
            }
            set(&mut body, &mut build, &g(made), &Sym::Num(1.0));
            let c = emit(&cond, &mut body);
            all.push(Statement::If {
                condition: c,
                accept: build,
                reject: Vec::new(),
            });
        }
        let on = emit(&Sym::bin(B::Ne, g(usetable), Sym::Num(0.0)), &mut body);
        out.push(Statement::If {
            condition: on,
            accept: all,
            reject: Vec::new(),
        });
        body.block = out;
        self.module.kernels.push(Kernel {
            phase: Phase::TableCheck,
            body,
        });
        Ok(())
    }
}
