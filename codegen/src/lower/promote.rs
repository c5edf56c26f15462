//! Memory traffic of per-instance kernels, without changing any arithmetic.
//!
//! - **Scalar promotion** ([`promote_fields`]): in a per-instance kernel
//!   body, every scalar field of the current instance that no called
//!   function touches lives in a local for the whole body — loaded once at
//!   the start (unless the body assigns it before it can read it), stored
//!   once at the end — so the back ends keep it in a register instead of
//!   going through memory at every use.
//! - **Dead copies** ([`drop_dead_stores`], [`drop_dead_assignments`]): an
//!   internal field, which no user can name (above all the `#v` and
//!   ion-variable copies nocmodl keeps per instance), that no body of the
//!   mechanism ever loads is never stored either, nor computed only to be
//!   stored there.
//!
//! The arithmetic is unchanged (same operations on the same values), so the
//! results are bit-identical; only a failing instance may keep its fields
//! unwritten, which no caller observes (the kernel call fails).

use std::collections::{HashMap, HashSet};

use crate::ir::{
    each_statement, Arena, Block, Body, Expression, FieldDecl, Function, Handle, Local, Place,
    Statement, Type,
};

/// The fields `body` loads from memory (any element of an array field).
fn field_loads(body: &Body) -> impl Iterator<Item = Handle<FieldDecl>> + '_ {
    body.expressions.iter().filter_map(|(_, e)| match e {
        Expression::Load(Place::Field { field, .. }) => Some(*field),
        _ => None,
    })
}

/// Keeps the statements of `b`, nested blocks included, for which `keep`
/// holds; whether any went.
fn retain_nested(b: &mut Block, keep: &mut dyn FnMut(&Statement) -> bool) -> bool {
    let before = b.len();
    b.retain(|s| keep(s));
    let mut changed = b.len() != before;
    for s in b.iter_mut() {
        match s {
            Statement::If { accept, reject, .. } => {
                changed |= retain_nested(accept, keep);
                changed |= retain_nested(reject, keep);
            }
            Statement::While { body, .. } | Statement::ForRange { body, .. } => {
                changed |= retain_nested(body, keep)
            }
            _ => {}
        }
    }
    changed
}

/// The fields `body` loads or stores (any element of an array field).
fn fields_touched(body: &Body) -> HashSet<Handle<FieldDecl>> {
    let mut out: HashSet<Handle<FieldDecl>> = field_loads(body).collect();
    each_statement(&body.block, &mut |s| {
        if let Statement::Store {
            place: Place::Field { field, .. },
            ..
        } = s
        {
            out.insert(*field);
        }
    });
    out
}

/// For each function (by index), the fields it or any function it calls,
/// transitively, loads or stores.
pub fn function_fields(functions: &Arena<Function>) -> Vec<HashSet<Handle<FieldDecl>>> {
    let mut touched: Vec<HashSet<Handle<FieldDecl>>> = functions
        .iter()
        .map(|(_, f)| fields_touched(&f.body))
        .collect();
    let calls: Vec<HashSet<Handle<Function>>> =
        functions.iter().map(|(_, f)| f.body.callees()).collect();
    // A fixpoint: functions may call each other, recursively too.
    loop {
        let mut changed = false;
        for k in 0..touched.len() {
            for c in &calls[k] {
                if c.index() == k {
                    continue;
                }
                let add: Vec<_> = touched[c.index()]
                    .difference(&touched[k])
                    .copied()
                    .collect();
                if !add.is_empty() {
                    changed = true;
                    touched[k].extend(add);
                }
            }
        }
        if !changed {
            return touched;
        }
    }
}

/// Promotes the scalar fields of `body` (see the module docs) that none of
/// the functions it calls touches; `function_fields` is
/// [`function_fields`]'s result for the module. Does nothing when the body
/// has a `return`.
pub fn promote_fields(body: &mut Body, function_fields: &[HashSet<Handle<FieldDecl>>]) {
    // A `return` would skip the write-back.
    if super::inline::has_return(&body.block) {
        return;
    }
    let shared: HashSet<Handle<FieldDecl>> = body
        .callees()
        .iter()
        .flat_map(|c| function_fields[c.index()].iter().copied())
        .collect();
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
            if shared.contains(&field) {
                continue;
            }
            let l = new_local(&mut body.locals, field);
            body.expressions[h] = Expression::Local(l);
        }
    }
    // Stores become local assignments.
    fn stores(
        b: &mut Block,
        f: &mut dyn FnMut(Handle<FieldDecl>) -> Handle<Local>,
        written: &mut Vec<Handle<FieldDecl>>,
        shared: &HashSet<Handle<FieldDecl>>,
    ) {
        for s in b.iter_mut() {
            match s {
                Statement::Store {
                    place: Place::Field { field, index: None },
                    value,
                } if !shared.contains(field) => {
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
                    stores(accept, f, written, shared);
                    stores(reject, f, written, shared);
                }
                Statement::While { body, .. } | Statement::ForRange { body, .. } => {
                    stores(body, f, written, shared)
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
            &shared,
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

/// Removes every store to a field of `dead_candidates` that no body of the
/// module (`kernels` and `functions`) loads; see the module docs. Only
/// stores of a local or a constant go (they have no other effect). Call it
/// after [`promote_fields`], whose write-backs are such stores.
pub fn drop_dead_stores<'a>(
    bodies: impl Iterator<Item = &'a mut Body>,
    dead_candidates: &HashSet<Handle<FieldDecl>>,
) {
    let mut bodies: Vec<&mut Body> = bodies.collect();
    let loaded: HashSet<Handle<FieldDecl>> = bodies.iter().flat_map(|b| field_loads(b)).collect();
    let dead: HashSet<Handle<FieldDecl>> = dead_candidates.difference(&loaded).copied().collect();
    if dead.is_empty() {
        return;
    }
    for body in bodies.iter_mut() {
        let exprs = &body.expressions;
        retain_nested(&mut body.block, &mut |s| match s {
            Statement::Store {
                place: Place::Field { field, index: None },
                value,
            } if dead.contains(field) => !matches!(
                exprs[*value],
                Expression::Local(_) | Expression::Constant(_)
            ),
            _ => true,
        });
    }
}

/// Whether evaluating `h` has no effect but its value: no call, no random
/// number, no load that can fail (POINTER, indexed, weight).
fn pure(body: &Body, h: Handle<Expression>) -> bool {
    match &body.expressions[h] {
        Expression::Constant(_)
        | Expression::Bool(_)
        | Expression::Local(_)
        | Expression::Env(_) => true,
        Expression::Load(place) => matches!(
            place,
            Place::Field { index: None, .. }
                | Place::Global { index: None, .. }
                | Place::NodeV
                | Place::NodeArea
                | Place::NodeDiam
                | Place::Ion { .. }
                | Place::IonValence(_)
        ),
        Expression::Unary { arg, .. } => pure(body, *arg),
        Expression::Binary { left, right, .. } => pure(body, *left) && pure(body, *right),
        Expression::Select {
            condition,
            accept,
            reject,
        } => pure(body, *condition) && pure(body, *accept) && pure(body, *reject),
        Expression::Math { args, .. } => args.iter().all(|a| pure(body, *a)),
        Expression::BoolToF64(a) | Expression::F64ToBool(a) => pure(body, *a),
        Expression::Call { .. } | Expression::RandomUniform => false,
    }
}

/// Removes assignments of pure values to locals of a kernel body that
/// nothing reads (what [`drop_dead_stores`] leaves behind: the loads that
/// fed a dead copy), until none is left.
pub fn drop_dead_assignments(body: &mut Body) {
    loop {
        let mut read = Vec::new();
        for s in &body.block {
            statement_reads(body, s, &mut read);
        }
        let read: HashSet<Handle<Local>> = read.into_iter().collect();
        let mut block = std::mem::take(&mut body.block);
        let changed = retain_nested(&mut block, &mut |s| match s {
            Statement::Assign { local, value } => read.contains(local) || !pure(body, *value),
            _ => true,
        });
        body.block = block;
        if !changed {
            return;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Module, Phase};

    fn lower(src: &str) -> Module {
        let mut sources = nmodl_frontend::source::SourceMap::new();
        let r = nmodl_frontend::check_source(&mut sources, "t.mod", src);
        let model = r.model.expect("checks");
        crate::lower::lower(&model).expect("lowers").module
    }

    /// The names of the fields `phase`'s kernel stores and loads.
    fn traffic(m: &Module, phase: Phase) -> (HashSet<String>, HashSet<String>) {
        let body = &m.kernel(phase).expect("kernel").body;
        let name = |f: Handle<FieldDecl>| m.layout.fields[f].name.clone();
        let loads = field_loads(body).map(name).collect();
        let mut stores = HashSet::new();
        each_statement(&body.block, &mut |s| {
            if let Statement::Store {
                place: Place::Field { field, .. },
                ..
            } = s
            {
                stores.insert(name(*field));
            }
        });
        (stores, loads)
    }

    const CHANNEL: &str = "NEURON { SUFFIX ch USEION na READ ena WRITE ina RANGE g, gna }
PARAMETER { g = 0.001 }
ASSIGNED { v ena ina gna }
BREAKPOINT { gna = g  ina = gna * (v - ena) }
";

    #[test]
    fn copies_nothing_reads_are_neither_stored_nor_loaded() {
        let m = lower(CHANNEL);
        let (stores, loads) = traffic(&m, Phase::Cur);
        // What users can name is written back; the copies of v, ena and ina
        // are not, and nothing is loaded but the parameter.
        assert!(stores.contains("gna"), "{stores:?}");
        for copy in ["#v", "#ena", "#ina"] {
            assert!(!stores.contains(copy), "{copy} stored: {stores:?}");
        }
        assert_eq!(loads, HashSet::from(["g".to_string()]));
    }

    #[test]
    fn a_copy_a_function_reads_is_still_stored() {
        let src = CHANNEL
            .replace(
                "RANGE g, gna }",
                "RANGE g, gna, e0 }\nFUNCTION eget() { eget = ena }\nINITIAL { e0 = eget() }",
            )
            .replace(
                "ASSIGNED { v ena ina gna }",
                "ASSIGNED { v ena ina gna e0 }",
            );
        let m = lower(&src);
        let (stores, _) = traffic(&m, Phase::Cur);
        assert!(stores.contains("#ena"), "{stores:?}");
        assert!(!stores.contains("#ina"), "{stores:?}");
    }

    /// A gate whose DERIVATIVE calls `rates(u)` with the body `rates`.
    fn gate(rates: &str) -> String {
        format!(
            "NEURON {{ SUFFIX gt RANGE minf }}
STATE {{ m }}
ASSIGNED {{ v minf }}
BREAKPOINT {{ SOLVE st METHOD cnexp }}
DERIVATIVE st {{ rates(v)  m' = (minf - m) / 2 }}
PROCEDURE rates(u) {{ {rates} }}
"
        )
    }

    #[test]
    fn fields_a_callee_touches_stay_in_memory_around_the_call() {
        // `rates` writes `minf`, which the caller reads after the call: it
        // must not be promoted to a local loaded before the call. (The
        // local array keeps `rates` a call: see `lower::inline`.)
        let m = lower(&gate("LOCAL a[1]  a[0] = u  minf = a[0] / 100"));
        let (stores, loads) = traffic(&m, Phase::State);
        assert!(loads.contains("minf"), "{loads:?}");
        assert!(
            !stores.contains("minf"),
            "the caller stores minf: {stores:?}"
        );
        assert!(stores.contains("m"), "{stores:?}");
    }

    #[test]
    fn an_inlined_procedures_fields_are_promoted() {
        // Inlined, `rates` is part of the kernel: `minf` lives in a local
        // and is stored once, never loaded.
        let m = lower(&gate("minf = u / 100"));
        let (stores, loads) = traffic(&m, Phase::State);
        assert!(!loads.contains("minf"), "{loads:?}");
        assert!(stores.contains("minf"), "{stores:?}");
        let kernel = m.kernels.iter().find(|k| k.phase == Phase::State).unwrap();
        let mut calls = 0;
        each_statement(&kernel.body.block, &mut |s| {
            calls += usize::from(matches!(s, Statement::Call { .. }))
        });
        assert_eq!(calls, 0);
    }
}
