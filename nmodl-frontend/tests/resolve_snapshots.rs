//! Snapshots of the resolved model of every construct fixture.
//!
//! Each file in `tests/fixtures/constructs/` exercises one NMODL construct and is
//! accepted by NEURON 9.0.2, so it must resolve with zero errors. The snapshot is
//! the readable [`Mechanism::summary`]: symbols with kinds and units, ions,
//! blocks, signatures, SOLVE methods and tables, headed by the input path.

use nmodl_frontend::ast::{Block, Expr, ExprKind, Ident, Stmt, StmtKind};
use nmodl_frontend::model::Mechanism;
use nmodl_frontend::source::SourceMap;
use nmodl_frontend::{check_file, check_source, render};

/// Every identifier that a code generator must look up (names in expressions,
/// assignment targets, derivative states, called functions) has a resolution in
/// `Mechanism::refs`. Returns the names that do not.
fn unresolved(m: &Mechanism) -> Vec<String> {
    fn ident(m: &Mechanism, i: &Ident, out: &mut Vec<String>) {
        if m.refs.get(i.span).is_none() {
            out.push(i.name.clone());
        }
    }
    fn expr(m: &Mechanism, e: &Expr, out: &mut Vec<String>) {
        match &e.kind {
            ExprKind::Name(i) => ident(m, i, out),
            ExprKind::Indexed(i, x) => {
                ident(m, i, out);
                expr(m, x, out);
            }
            ExprKind::Call(f, args) => {
                ident(m, f, out);
                args.iter().for_each(|a| expr(m, a, out));
            }
            ExprKind::Unary(_, x) | ExprKind::Paren(x) => expr(m, x, out),
            ExprKind::Binary(_, a, b) => {
                expr(m, a, out);
                expr(m, b, out);
            }
            ExprKind::Number(_) | ExprKind::String(_) => {}
        }
    }
    fn block(m: &Mechanism, b: &Block, out: &mut Vec<String>) {
        b.stmts.iter().for_each(|s| stmt(m, s, out));
    }
    fn stmt(m: &Mechanism, s: &Stmt, out: &mut Vec<String>) {
        match &s.kind {
            StmtKind::Assign { lhs, rhs } => {
                expr(m, lhs, out);
                expr(m, rhs, out);
            }
            StmtKind::DiffEq {
                state, index, rhs, ..
            } => {
                ident(m, state, out);
                index.iter().for_each(|i| expr(m, i, out));
                expr(m, rhs, out);
            }
            StmtKind::Reaction(r) => {
                for t in r.lhs.iter().chain(r.rhs.iter()) {
                    ident(m, &t.name, out);
                }
                r.rates.iter().for_each(|e| expr(m, e, out));
            }
            StmtKind::LinearEq { lhs, rhs } => {
                expr(m, lhs, out);
                expr(m, rhs, out);
            }
            StmtKind::If {
                cond,
                then_block,
                else_ifs,
                else_block,
            } => {
                expr(m, cond, out);
                block(m, then_block, out);
                for e in else_ifs {
                    expr(m, &e.cond, out);
                    block(m, &e.body, out);
                }
                else_block.iter().for_each(|b| block(m, b, out));
            }
            StmtKind::While { cond, body } => {
                expr(m, cond, out);
                block(m, body, out);
            }
            StmtKind::From {
                var,
                from,
                to,
                body,
                ..
            } => {
                ident(m, var, out);
                expr(m, from, out);
                expr(m, to, out);
                block(m, body, out);
            }
            StmtKind::Expr(e) => expr(m, e, out),
            StmtKind::Block(b) | StmtKind::Initial(b) => block(m, b, out),
            StmtKind::Protect(inner) => stmt(m, inner, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut bodies: Vec<&Block> = Vec::new();
    bodies.extend(m.initial.iter());
    bodies.extend(m.breakpoint.iter().map(|b| &b.body));
    bodies.extend(m.solve_blocks.iter().map(|b| &b.body));
    bodies.extend(m.callables.iter().map(|c| &c.body));
    bodies.extend(m.net_receive.iter().map(|n| &n.body));
    bodies.extend(m.before_after.iter().map(|b| &b.body));
    bodies.extend(m.constructor.iter());
    bodies.extend(m.destructor.iter());
    for b in bodies {
        block(m, b, &mut out);
    }
    out
}

#[test]
fn construct_fixtures_resolve() {
    insta::glob!("fixtures/constructs/*.mod", |path| {
        let mut sources = SourceMap::new();
        let result = check_file(&mut sources, path);
        assert!(
            !result.has_errors(),
            "{} should resolve without errors:\n{}",
            path.display(),
            render::render(&sources, &result.diagnostics, false)
        );
        let model = result.model.expect("no errors, so a model");
        let missing = unresolved(&model);
        assert!(
            missing.is_empty(),
            "{}: unresolved identifiers {missing:?}",
            path.display()
        );
        // Paths in rendered warnings are made relative to the crate.
        let warnings = render::render(&sources, &result.diagnostics, false)
            .replace(concat!(env!("CARGO_MANIFEST_DIR"), "/"), "");
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path)
            .display()
            .to_string();
        let mut text = format!("input: {rel}\n{}", model.summary(&sources));
        if !warnings.trim().is_empty() {
            text.push_str("warnings:\n");
            text.push_str(&warnings);
        }
        insta::assert_snapshot!(text);
    });
}

/// Each `tests/fixtures/errors/semantic_*.mod` starts with `: <code>: …`, the
/// diagnostic it exists to show (its second line records what nocmodl 9.0.2 did
/// with the file). The resolver must report that code, with that severity, and no
/// error other than it.
#[test]
fn semantic_fixtures_report_their_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("semantic_") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text
            .strip_prefix(": ")
            .and_then(|t| t.split(':').next())
            .unwrap_or_else(|| panic!("{name}: first line must be `: <code>: …`"))
            .to_string();
        let mut sources = SourceMap::new();
        let result = check_file(&mut sources, &path);
        let rendered = render::render(&sources, &result.diagnostics, false);
        let found = result.diagnostics.iter().any(|d| d.code == code);
        let want_error = code.starts_with('E');
        let other_errors: Vec<_> = result
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && d.code != code)
            .map(|d| d.code)
            .collect();
        if !found || result.has_errors() != want_error || !other_errors.is_empty() {
            failures.push(format!("{name}: expected {code}, got:\n{rendered}"));
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} semantic fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn resolve_ok(name: &str, text: &str) -> (SourceMap, Mechanism) {
    let mut sources = SourceMap::new();
    let r = check_source(&mut sources, name, text);
    assert!(
        !r.has_errors(),
        "{name}:\n{}",
        render::render(&sources, &r.diagnostics, false)
    );
    let m = r.model.expect("model");
    let missing = unresolved(&m);
    assert!(missing.is_empty(), "{name}: unresolved {missing:?}");
    (sources, m)
}

const HH_LIKE: &str = r#"
TITLE hh-like test channel
UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
    FARADAY = (faraday) (coulomb)
}
NEURON {
    SUFFIX hhx
    USEION na READ ena WRITE ina
    USEION k READ ek WRITE ik
    USEION ca READ cai
    NONSPECIFIC_CURRENT il
    RANGE gnabar, gkbar, gl, el
    GLOBAL minf, hinf, ninf, mtau
    THREADSAFE
}
PARAMETER {
    gnabar = .12 (S/cm2) <0,1e9>
    gkbar = .036 (S/cm2) <0,1e9>
    gl = .0003 (S/cm2) <0,1e9>
    el = -54.3 (mV)
}
STATE { m h n }
ASSIGNED {
    v (mV)
    celsius (degC)
    ena (mV)
    ek (mV)
    cai (mM)
    ina (mA/cm2)
    ik (mA/cm2)
    il (mA/cm2)
    minf hinf ninf
    mtau (ms) htau (ms) ntau (ms)
}
BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gnabar*m*m*m*h*(v - ena)
    ik = gkbar*n*n*n*n*(v - ek)
    il = gl*(v - el)
}
INITIAL {
    rates(v)
    m = minf
    h = hinf
    n = ninf
}
DERIVATIVE states {
    rates(v)
    m' = (minf - m)/mtau
    h' = (hinf - h)/htau
    n' = (ninf - n)/ntau
}
PROCEDURE rates(v (mV)) {
    LOCAL alpha, beta, q10
    TABLE minf, mtau, hinf, htau, ninf, ntau DEPEND celsius FROM -100 TO 100 WITH 200
    q10 = 3^((celsius - 6.3)/10)
    alpha = .1 * vtrap(-(v + 40), 10)
    beta = 4 * exp(-(v + 65)/18)
    mtau = 1/(q10*(alpha + beta))
    minf = alpha/(alpha + beta)
    hinf = 1 htau = 1 ninf = 1 ntau = 1
}
FUNCTION vtrap(x, y) {
    if (fabs(x/y) < 1e-6) {
        vtrap = y*(1 - x/y/2)
    } else {
        vtrap = x/(exp(x/y) - 1)
    }
}
"#;

#[test]
fn hh_like_model_has_what_codegen_needs() {
    use nmodl_frontend::model::{IonRole, MechanismKind, Method, SymbolKind, Visibility};
    let (_sources, m) = resolve_ok("hhx.mod", HH_LIKE);
    assert_eq!(m.name, "hhx");
    assert_eq!(m.kind, MechanismKind::Density);
    assert_eq!(m.title.as_deref(), Some("hh-like test channel"));
    assert!(m.threadsafe_keyword && m.thread_safe && !m.has_verbatim);
    let sym = |name: &str| {
        let id = m.symbols.lookup(name).unwrap_or_else(|| panic!("{name}"));
        m.symbols.get(id)
    };
    let names = |ids: &[nmodl_frontend::model::SymbolId]| -> Vec<String> {
        ids.iter()
            .map(|id| m.symbols.get(*id).name.clone())
            .collect()
    };
    // States in declaration order; the DERIVATIVE block solves all three.
    assert_eq!(names(&m.states), ["m", "h", "n"]);
    assert_eq!(names(&m.solve_blocks[0].states), ["m", "h", "n"]);
    // Visibility: RANGE parameters, GLOBAL assigned, unlisted assigned per instance.
    assert_eq!(sym("gnabar").visibility, Some(Visibility::Range));
    assert_eq!(sym("gnabar").limits, Some((0.0, 1e9)));
    assert_eq!(sym("gnabar").units.as_deref(), Some("S/cm2"));
    assert_eq!(sym("minf").visibility, Some(Visibility::Global));
    assert_eq!(sym("htau").visibility, Some(Visibility::Range));
    // Built-ins declared by the file keep their role.
    assert!(matches!(sym("v").kind, SymbolKind::Builtin(_)));
    assert!(matches!(sym("celsius").kind, SymbolKind::Builtin(_)));
    // Ions: NEURON's default valences, roles and the current summary.
    let valence: Vec<_> = m.ions.iter().map(|u| (u.ion.as_str(), u.valence)).collect();
    assert_eq!(
        valence,
        [("na", Some(1.0)), ("k", Some(1.0)), ("ca", Some(2.0))]
    );
    assert_eq!(sym("ena").ion.as_ref().unwrap().role, IonRole::Reversal);
    assert_eq!(
        sym("cai").ion.as_ref().unwrap().role,
        IonRole::ConcentrationInside
    );
    assert_eq!(sym("ina").ion.as_ref().unwrap().role, IonRole::Current);
    assert!(sym("ina").ion.as_ref().unwrap().write);
    assert_eq!(names(&m.ion_summary.currents_written["na"]), ["ina"]);
    assert!(m.ion_summary.reads_concentration && !m.ion_summary.writes_concentration);
    assert_eq!(names(&m.nonspecific_currents), ["il"]);
    // SOLVE and TABLE.
    let solve = &m.breakpoint.as_ref().unwrap().solves[0];
    assert_eq!((solve.method, solve.method_explicit), (Method::Cnexp, true));
    let t = &m.tables[0];
    assert_eq!(t.owner, "PROCEDURE rates");
    assert_eq!(
        names(&t.names),
        ["minf", "mtau", "hinf", "htau", "ninf", "ntau"]
    );
    assert_eq!(names(&t.depend), ["celsius"]);
    assert_eq!(t.with, 200);
    let rates = m.callables.iter().find(|c| c.name == "rates").unwrap();
    assert_eq!(rates.table, Some(0));
    assert_eq!(rates.params[0].units.as_deref(), Some("mV"));
    // The UNITS constant has nocmodl's value (0x1.78e555060882cp+16).
    assert_eq!(
        sym("FARADAY").kind,
        SymbolKind::UnitsConstant {
            value: 96485.33212331001
        }
    );
    // Locals belong to their block; `v` inside rates is the argument, not the membrane potential.
    let alpha = m
        .symbols
        .symbols
        .iter()
        .find(|s| s.name == "alpha")
        .unwrap();
    assert_eq!(alpha.kind, SymbolKind::Local);
    assert_eq!(alpha.owner.as_deref(), Some("PROCEDURE rates"));
    let v_arg = &rates.params[0];
    assert_eq!(m.symbols.get(v_arg.symbol).kind, SymbolKind::Argument);
}

#[test]
fn no_neuron_block_uses_the_file_stem() {
    // nocmodl 9.0.2 on noneuron.mod containing only `PARAMETER { p = 1 }` registers
    // the density mechanism "noneuron" with the GLOBAL p_noneuron.
    use nmodl_frontend::model::{MechanismKind, Visibility};
    let (_s, m) = resolve_ok("dir/noneuron.mod", "PARAMETER { p = 1 }\n");
    assert_eq!(m.name, "noneuron");
    assert_eq!(m.kind, MechanismKind::Density);
    let p = m.symbols.get(m.symbols.lookup("p").unwrap());
    assert_eq!(p.visibility, Some(Visibility::Global));
}

#[test]
fn default_methods_and_solved_states() {
    // nocmodl: DERIVATIVE defaults to derivimplicit, KINETIC to _advance
    // (src/nocmodl/solve.cpp, init.cpp methods[]).
    use nmodl_frontend::model::Method;
    let text = r#"
NEURON { POINT_PROCESS kin }
STATE { c o x }
BREAKPOINT {
    SOLVE scheme
    SOLVE d
}
KINETIC scheme { ~ c <-> o (1, 2) CONSERVE c + o = 1 }
DERIVATIVE d { x' = -x }
NET_RECEIVE (w) { INITIAL { } net_send(1, 2) }
"#;
    let (_s, m) = resolve_ok("kin.mod", text);
    let solves = &m.breakpoint.as_ref().unwrap().solves;
    assert_eq!(solves[0].method, Method::Advance);
    assert_eq!(solves[1].method, Method::Derivimplicit);
    assert!(!solves[0].method_explicit);
    let states: Vec<_> = m.solve_blocks[0]
        .states
        .iter()
        .map(|id| m.symbols.get(*id).name.as_str())
        .collect();
    assert_eq!(states, ["c", "o"]);
    let nr = m.net_receive.as_ref().unwrap();
    assert!(nr.initial.is_some());
    assert_eq!(nr.params[0].name, "w");
    // KINETIC without sparse is not thread safe (nocmodl Notice).
    assert!(!m.thread_safe);
}

#[test]
fn event_calls_where_nocmodl_allows_them() {
    // nocmodl 9.0.2 accepts WATCH, net_send, net_event and net_move inside the
    // INITIAL block of NET_RECEIVE (it counts as NET_RECEIVE), and net_send in
    // the mechanism's INITIAL.
    let text = r#"
NEURON { POINT_PROCESS ev }
INITIAL { net_send(0, 1) }
NET_RECEIVE (w) {
    INITIAL { WATCH (v > 0) 2 net_send(0, 1) net_event(t) net_move(t) }
    net_event(t)
}
"#;
    resolve_ok("ev.mod", text);
    // …but rejects net_send in a FUNCTION called from INITIAL.
    let mut sources = SourceMap::new();
    let r = check_source(
        &mut sources,
        "evf.mod",
        "NEURON { POINT_PROCESS evf }\nFUNCTION f() { net_send(0, 1) f = 1 }\nINITIAL { f() }\nNET_RECEIVE (w) { }\n",
    );
    let codes: Vec<_> = r.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0210"]);
}
