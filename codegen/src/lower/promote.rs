//! Scalar promotion: in a per-instance kernel body that calls no function,
//! every scalar field of the current instance lives in a local for the whole
//! body — loaded once at the start, stored once at the end — so the back
//! ends keep it in a register instead of going through memory at every use.
//! The arithmetic is unchanged (same operations on the same values), so the
//! results are bit-identical; only a failing instance may keep its fields
//! unwritten, which no caller observes (the kernel call fails).

use std::collections::HashMap;

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
    let mut prologue = Block::new();
    for f in &order {
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
