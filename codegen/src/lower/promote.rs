//! Scalar promotion: in a per-instance kernel body that calls no function,
//! every scalar field of the current instance lives in a local for the whole
//! body — loaded once at the start (unless the body assigns it before it
//! can read it), stored once at the end — so the back ends keep it in a
//! register instead of going through memory at every use.
//! The arithmetic is unchanged (same operations on the same values), so the
//! results are bit-identical; only a failing instance may keep its fields
//! unwritten, which no caller observes (the kernel call fails).

use std::collections::{HashMap, HashSet};

use crate::ir::{Block, Body, Expression, FieldDecl, Handle, Local, Place, Statement, Type};

fn has_calls(body: &Body) -> bool {
    fn block(b: &[Statement]) -> bool {
        b.iter().any(|s| match s {
            Statement::Call { .. } | Statement::Return => true,
            Statement::If { accept, reject, .. } => block(accept) || block(reject),
            Statement::While { body, .. } | Statement::ForRange { body, .. } => block(body),
            _ => false,
        })
    }
    body.expressions
        .iter()
        .any(|(_, e)| matches!(e, Expression::Call { .. }))
        || block(&body.block)
}

/// Promotes the scalar fields of `body` (see the module docs); does nothing
/// when the body calls a function.
pub fn promote_fields(body: &mut Body) {
    if has_calls(body) {
        return;
    }
    let mut locals: HashMap<Handle<FieldDecl>, Handle<Local>> = HashMap::new();
    let mut order: Vec<Handle<FieldDecl>> = Vec::new();
    let mut written: Vec<Handle<FieldDecl>> = Vec::new();
    let mut new_local = |body_locals: &mut crate::ir::Arena<Local>, f: Handle<FieldDecl>| {
        *locals.entry(f).or_insert_with(|| {
            order.push(f);
            body_locals.append(Local {
                name: format!("#field{}", f.index()),
                ty: Type::F64,
            })
        })
    };
    // Loads become local reads.
    let n = body.expressions.len();
    for k in 0..n {
        let h = Handle::from_index(k);
        if let Expression::Load(Place::Field { field, index: None }) = body.expressions[h] {
            let l = new_local(&mut body.locals, field);
            body.expressions[h] = Expression::Local(l);
        }
    }
    // Stores become local assignments.
    fn stores(
        b: &mut Block,
        f: &mut dyn FnMut(Handle<FieldDecl>) -> Handle<Local>,
        written: &mut Vec<Handle<FieldDecl>>,
    ) {
        for s in b.iter_mut() {
            match s {
                Statement::Store {
                    place: Place::Field { field, index: None },
                    value,
                } => {
                    let field = *field;
                    if !written.contains(&field) {
                        written.push(field);
                    }
                    *s = Statement::Assign {
                        local: f(field),
                        value: *value,
                    };
                }
                Statement::If { accept, reject, .. } => {
                    stores(accept, f, written);
                    stores(reject, f, written);
                }
                Statement::While { body, .. } | Statement::ForRange { body, .. } => {
                    stores(body, f, written)
                }
                _ => {}
            }
        }
    }
    let mut block = std::mem::take(&mut body.block);
    {
        let locals_arena = &mut body.locals;
        stores(
            &mut block,
            &mut |f| new_local(locals_arena, f),
            &mut written,
        );
    }
    if locals.is_empty() {
        body.block = block;
        return;
    }
    let assigned_first = assigned_before_read(body, &block);
    let mut prologue = Block::new();
    for f in &order {
        // A field the body overwrites before it can read it is not loaded:
        // the load would only cost memory traffic.
        if assigned_first.contains(&locals[f]) {
            continue;
        }
        let value = body.expr(Expression::Load(Place::Field {
            field: *f,
            index: None,
        }));
        prologue.push(Statement::Assign {
            local: locals[f],
            value,
        });
    }
    prologue.extend(block);
    for f in &written {
        let value = body.expr(Expression::Local(locals[f]));
        prologue.push(Statement::Store {
            place: Place::Field {
                field: *f,
                index: None,
            },
            value,
        });
    }
    body.block = prologue;
}

/// The locals that the top level of `block` assigns before anything in it
/// can read them: every path through the block assigns them first (a path
/// that stops early with an error writes nothing back). Conservative: an
/// assignment inside an IF or a loop does not count, and any read, anywhere,
/// before the top-level assignment disqualifies the local.
fn assigned_before_read(body: &Body, block: &[Statement]) -> HashSet<Handle<Local>> {
    let mut assigned = HashSet::new();
    let mut read = HashSet::new();
    for s in block {
        let mut reads = Vec::new();
        statement_reads(body, s, &mut reads);
        read.extend(reads.into_iter().filter(|l| !assigned.contains(l)));
        if let Statement::Assign { local, .. } = s {
            if !read.contains(local) {
                assigned.insert(*local);
            }
        }
    }
    assigned
}

/// Every local `s` (including its nested blocks) may read.
fn statement_reads(body: &Body, s: &Statement, out: &mut Vec<Handle<Local>>) {
    let e = |h: Handle<Expression>, out: &mut Vec<Handle<Local>>| expression_reads(body, h, out);
    match s {
        Statement::Assign { value, .. } => e(*value, out),
        Statement::Store { place, value } => {
            place_reads(body, place, out);
            e(*value, out);
        }
        Statement::Accumulate { value, .. } => e(*value, out),
        Statement::If {
            condition,
            accept,
            reject,
        } => {
            e(*condition, out);
            for s in accept.iter().chain(reject) {
                statement_reads(body, s, out);
            }
        }
        Statement::While {
            condition, body: b, ..
        } => {
            e(*condition, out);
            for s in b {
                statement_reads(body, s, out);
            }
        }
        Statement::ForRange {
            start,
            end,
            body: b,
            ..
        } => {
            e(*start, out);
            e(*end, out);
            for s in b {
                statement_reads(body, s, out);
            }
        }
        Statement::Call { args, .. } => args.iter().for_each(|a| e(*a, out)),
        Statement::NetSend { delay, flag } => {
            e(*delay, out);
            e(*flag, out);
        }
        Statement::NetEvent { time } | Statement::NetMove { time } => e(*time, out),
        Statement::SetSeed { seed } => e(*seed, out),
        Statement::Return | Statement::Error { .. } => {}
    }
}

fn place_reads(body: &Body, place: &Place, out: &mut Vec<Handle<Local>>) {
    match place {
        Place::Field { index: Some(i), .. }
        | Place::Global { index: Some(i), .. }
        | Place::LocalArray { index: i, .. } => expression_reads(body, *i, out),
        _ => {}
    }
}

fn expression_reads(body: &Body, h: Handle<Expression>, out: &mut Vec<Handle<Local>>) {
    match &body.expressions[h] {
        Expression::Local(l) => out.push(*l),
        Expression::Load(place) => place_reads(body, place, out),
        Expression::Unary { arg, .. } => expression_reads(body, *arg, out),
        Expression::Binary { left, right, .. } => {
            expression_reads(body, *left, out);
            expression_reads(body, *right, out);
        }
        Expression::Select {
            condition,
            accept,
            reject,
        } => {
            expression_reads(body, *condition, out);
            expression_reads(body, *accept, out);
            expression_reads(body, *reject, out);
        }
        Expression::Math { args, .. } | Expression::Call { args, .. } => {
            args.iter().for_each(|a| expression_reads(body, *a, out))
        }
        Expression::BoolToF64(a) | Expression::F64ToBool(a) => expression_reads(body, *a, out),
        Expression::Constant(_)
        | Expression::Bool(_)
        | Expression::Env(_)
        | Expression::RandomUniform => {}
    }
}
