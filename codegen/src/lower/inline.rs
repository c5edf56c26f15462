//! Inlining of PROCEDURE calls into kernels.
//!
//! Nearly every channel model computes its rates in a PROCEDURE (`rates(v)`)
//! that BREAKPOINT and SOLVE call once per instance at every step. As a call, it
//! costs the kernel its registers (every field and column pointer is saved
//! around it) and keeps the kernel's fields in memory; inlined, the back ends
//! see one straight body. The statements and expressions are copied as they
//! are, so the arithmetic, and every result, is unchanged.
//!
//! A call statement is inlined when its callee has no local arrays, is small
//! ([`MAX_EXPRESSIONS`]), and every `return` in it can be removed by moving
//! the statements after an `if` whose one branch returns into its other
//! branch (the shape of TABLE lookups and of early exits); a `return` inside a
//! loop keeps the call. Calls inside the callee stay calls. The callee's
//! parameters and locals become fresh locals of the kernel, set at the call
//! site: parameters to the arguments, locals to 0 (as each call starts them).

use std::collections::HashMap;

use crate::ir::{
    each_statement, Arena, Block, Body, Expression, Function, Handle, Kernel, Local, Place,
    Statement, Type,
};

/// The largest callee (in expressions) that is inlined.
pub const MAX_EXPRESSIONS: usize = 4000;

/// Inlines the eligible PROCEDURE (and discarded-result FUNCTION) calls of
/// the kernels that run at every step ([`crate::ir::Phase::every_step`]);
/// the others (INITIAL, TABLE building, NET_RECEIVE, …) keep their calls,
/// which keeps the JIT's compile time down where it buys nothing.
pub fn inline_calls(kernels: &mut [Kernel], functions: &Arena<Function>) {
    let plans: Vec<Option<Block>> = functions
        .iter()
        .map(|(_, f)| {
            if !f.body.arrays.is_empty() || f.body.expressions.len() > MAX_EXPRESSIONS {
                return None;
            }
            without_returns(&f.body.block)
        })
        .collect();
    for k in kernels.iter_mut().filter(|k| k.phase.every_step()) {
        let mut block = std::mem::take(&mut k.body.block);
        inline_block(&mut block, &mut k.body, functions, &plans);
        k.body.block = block;
    }
}

fn inline_block(
    block: &mut Block,
    body: &mut Body,
    functions: &Arena<Function>,
    plans: &[Option<Block>],
) {
    let old = std::mem::take(block);
    for mut s in old {
        if let Statement::Call { function, args } = &s {
            if let Some(plan) = &plans[function.index()] {
                splice(block, body, &functions[*function], plan, args);
                continue;
            }
        }
        match &mut s {
            Statement::If { accept, reject, .. } => {
                inline_block(accept, body, functions, plans);
                inline_block(reject, body, functions, plans);
            }
            Statement::While { body: inner, .. } | Statement::ForRange { body: inner, .. } => {
                inline_block(inner, body, functions, plans)
            }
            _ => {}
        }
        block.push(s);
    }
}

/// Appends to `out` the callee `f` (its body rewritten as `plan`) called with
/// `args` (expressions of `body`).
fn splice(
    out: &mut Block,
    body: &mut Body,
    f: &Function,
    plan: &Block,
    args: &[Handle<Expression>],
) {
    let locals: HashMap<Handle<Local>, Handle<Local>> = f
        .body
        .locals
        .iter()
        .map(|(h, l)| (h, body.local(&format!("{}.{}", f.name, l.name), l.ty)))
        .collect();
    for (h, l) in f.body.locals.iter() {
        let value = match f.params.iter().position(|&p| p == h) {
            Some(k) => args[k],
            None => match l.ty {
                Type::F64 => body.constant(0.0),
                Type::Bool => body.expr(Expression::Bool(false)),
            },
        };
        out.push(Statement::Assign {
            local: locals[&h],
            value,
        });
    }
    let mut exprs: Vec<Handle<Expression>> = Vec::with_capacity(f.body.expressions.len());
    for (_, e) in f.body.expressions.iter() {
        let e = remap_expression(e, &|h| exprs[h.index()], &locals);
        exprs.push(body.expr(e));
    }
    let map = |h: Handle<Expression>| exprs[h.index()];
    for s in plan {
        out.push(remap_statement(s, &map, &locals));
    }
}

fn remap_place(p: &Place, e: &dyn Fn(Handle<Expression>) -> Handle<Expression>) -> Place {
    match p {
        Place::Field { field, index } => Place::Field {
            field: *field,
            index: index.map(e),
        },
        Place::Global { global, index } => Place::Global {
            global: *global,
            index: index.map(e),
        },
        Place::LocalArray { array, index } => Place::LocalArray {
            array: *array,
            index: e(*index),
        },
        other => other.clone(),
    }
}

fn remap_expression(
    x: &Expression,
    e: &dyn Fn(Handle<Expression>) -> Handle<Expression>,
    locals: &HashMap<Handle<Local>, Handle<Local>>,
) -> Expression {
    use Expression as E;
    match x {
        E::Local(l) => E::Local(locals[l]),
        E::Load(p) => E::Load(remap_place(p, e)),
        E::Unary { op, arg } => E::Unary {
            op: *op,
            arg: e(*arg),
        },
        E::Binary { op, left, right } => E::Binary {
            op: *op,
            left: e(*left),
            right: e(*right),
        },
        E::Select {
            condition,
            accept,
            reject,
        } => E::Select {
            condition: e(*condition),
            accept: e(*accept),
            reject: e(*reject),
        },
        E::Math { fun, args } => E::Math {
            fun: *fun,
            args: args.iter().map(|&a| e(a)).collect(),
        },
        E::Call { function, args } => E::Call {
            function: *function,
            args: args.iter().map(|&a| e(a)).collect(),
        },
        E::BoolToF64(a) => E::BoolToF64(e(*a)),
        E::F64ToBool(a) => E::F64ToBool(e(*a)),
        E::Constant(_) | E::Bool(_) | E::Env(_) | E::RandomUniform => x.clone(),
    }
}

fn remap_statement(
    s: &Statement,
    e: &dyn Fn(Handle<Expression>) -> Handle<Expression>,
    locals: &HashMap<Handle<Local>, Handle<Local>>,
) -> Statement {
    use Statement as S;
    let block = |b: &Block| -> Block { b.iter().map(|s| remap_statement(s, e, locals)).collect() };
    match s {
        S::Assign { local, value } => S::Assign {
            local: locals[local],
            value: e(*value),
        },
        S::Store { place, value } => S::Store {
            place: remap_place(place, e),
            value: e(*value),
        },
        S::Accumulate { target, op, value } => S::Accumulate {
            target: *target,
            op: *op,
            value: e(*value),
        },
        S::If {
            condition,
            accept,
            reject,
        } => S::If {
            condition: e(*condition),
            accept: block(accept),
            reject: block(reject),
        },
        S::While {
            condition,
            body,
            max_iterations,
        } => S::While {
            condition: e(*condition),
            body: block(body),
            max_iterations: *max_iterations,
        },
        S::ForRange {
            var,
            start,
            end,
            step,
            body,
            max_iterations,
        } => S::ForRange {
            var: locals[var],
            start: e(*start),
            end: e(*end),
            step: *step,
            body: block(body),
            max_iterations: *max_iterations,
        },
        S::Call { function, args } => S::Call {
            function: *function,
            args: args.iter().map(|&a| e(a)).collect(),
        },
        S::NetSend { delay, flag } => S::NetSend {
            delay: e(*delay),
            flag: e(*flag),
        },
        S::NetEvent { time } => S::NetEvent { time: e(*time) },
        S::NetMove { time } => S::NetMove { time: e(*time) },
        S::SetSeed { seed } => S::SetSeed { seed: e(*seed) },
        S::Return | S::Error { .. } => s.clone(),
    }
}

/// Whether `b` has a `return` anywhere, nested blocks included.
pub(super) fn has_return(b: &[Statement]) -> bool {
    let mut found = false;
    each_statement(b, &mut |s| found |= matches!(s, Statement::Return));
    found
}

/// Whether every path through `b` ends in a `return`.
fn always_returns(b: &[Statement]) -> bool {
    b.iter().any(|s| match s {
        Statement::Return => true,
        Statement::If { accept, reject, .. } => always_returns(accept) && always_returns(reject),
        _ => false,
    })
}

/// `b` without `return`s, where falling off the end is returning: the
/// statements after an `if` one of whose branches always returns move into
/// the other branch. `None` when a `return` is in a loop or in a branch that
/// can also fall through.
fn without_returns(b: &[Statement]) -> Option<Block> {
    let mut out = Vec::new();
    for (i, s) in b.iter().enumerate() {
        match s {
            Statement::Return => return Some(out),
            Statement::If {
                condition,
                accept,
                reject,
            } if has_return(accept) || has_return(reject) => {
                let rest = &b[i + 1..];
                let branch = |x: &Block| -> Option<Block> {
                    if always_returns(x) {
                        without_returns(x)
                    } else if !has_return(x) {
                        let mut joined = x.clone();
                        joined.extend(rest.iter().cloned());
                        without_returns(&joined)
                    } else {
                        None
                    }
                };
                out.push(Statement::If {
                    condition: *condition,
                    accept: branch(accept)?,
                    reject: branch(reject)?,
                });
                return Some(out);
            }
            Statement::While { body, .. } | Statement::ForRange { body, .. }
                if has_return(body) =>
            {
                return None
            }
            _ => out.push(s.clone()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret() -> Statement {
        Statement::Return
    }

    fn store(body: &mut Body, x: f64) -> Statement {
        let value = body.constant(x);
        Statement::Store {
            place: Place::Global {
                global: Handle::from_index(0),
                index: None,
            },
            value,
        }
    }

    /// `if c { a; return } b` becomes `if c { a } else { b }`; a return in
    /// both branches drops what follows; a branch that may fall through or
    /// return, or a return in a loop, is refused.
    #[test]
    fn returns_become_branches() {
        let mut body = Body::default();
        let c = body.expr(Expression::Bool(true));
        let (a, b2) = (store(&mut body, 1.0), store(&mut body, 2.0));
        let early = vec![
            Statement::If {
                condition: c,
                accept: vec![a.clone(), ret()],
                reject: vec![],
            },
            b2.clone(),
        ];
        assert_eq!(
            without_returns(&early),
            Some(vec![Statement::If {
                condition: c,
                accept: vec![a.clone()],
                reject: vec![b2.clone()],
            }])
        );
        let both = vec![
            Statement::If {
                condition: c,
                accept: vec![ret()],
                reject: vec![a.clone(), ret()],
            },
            b2.clone(),
        ];
        assert_eq!(
            without_returns(&both),
            Some(vec![Statement::If {
                condition: c,
                accept: vec![],
                reject: vec![a.clone()],
            }])
        );
        let partial = vec![Statement::If {
            condition: c,
            accept: vec![Statement::If {
                condition: c,
                accept: vec![ret()],
                reject: vec![],
            }],
            reject: vec![],
        }];
        assert_eq!(without_returns(&partial), None);
        let in_loop = vec![Statement::While {
            condition: c,
            body: vec![ret()],
            max_iterations: 10,
        }];
        assert_eq!(without_returns(&in_loop), None);
    }
}
