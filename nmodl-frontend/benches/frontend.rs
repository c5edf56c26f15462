//! Parse + resolve time for a realistic 4,000-line mod file built in memory:
//! many PROCEDUREs and FUNCTIONs with TABLEs, a KINETIC scheme, a DERIVATIVE
//! block and a NET_RECEIVE block. Target (issue 2): under 20 ms per file in a
//! release build. Run with `cargo bench -p nmodl-frontend --bench frontend`;
//! besides criterion's report it prints one summary line with the median time
//! per file and the file's line count.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nmodl_frontend::check_source;
use nmodl_frontend::source::SourceMap;
use std::fmt::Write;
use std::time::Instant;

/// A synthetic point process with `n` rate procedures, functions and states.
fn big_mod(n: usize) -> String {
    let mut s = String::new();
    s.push_str("TITLE synthetic benchmark mechanism\nCOMMENT\nGenerated for the front-end benchmark.\nENDCOMMENT\n");
    s.push_str("NEURON {\n    POINT_PROCESS Big\n    USEION ca READ cai WRITE ica\n    NONSPECIFIC_CURRENT i\n    RANGE gbar, e\n}\n");
    s.push_str("UNITS {\n    (mA) = (milliamp)\n    (mV) = (millivolt)\n    (nA) = (nanoamp)\n    (uS) = (microsiemens)\n    (mM) = (milli/liter)\n    FARADAY = (faraday) (coulomb)\n}\n");
    s.push_str(
        "PARAMETER {\n    gbar = 0.01 (uS) <0, 1e9>\n    e = -70 (mV)\n    kb = 0.05 (/ms)\n",
    );
    for k in 0..n {
        let _ = writeln!(
            s,
            "    vh{k} = -{} (mV)\n    sl{k} = {}.5 (mV)",
            30 + k % 20,
            5 + k % 7
        );
    }
    s.push_str("}\nASSIGNED {\n    v (mV)\n    celsius (degC)\n    i (nA)\n    ica (mA/cm2)\n    cai (mM)\n    w\n");
    for k in 0..n {
        let _ = writeln!(s, "    inf{k}\n    tau{k} (ms)");
    }
    s.push_str("}\nSTATE {\n    C O I\n");
    for k in 0..n {
        let _ = writeln!(s, "    m{k}");
    }
    s.push_str("}\nBREAKPOINT {\n    SOLVE states METHOD cnexp\n    SOLVE scheme METHOD sparse\n    i = gbar*O*(v - e)");
    for k in 0..n {
        let _ = write!(s, "*m{k}");
    }
    s.push_str("\n    ica = 0\n}\nINITIAL {\n    w = 0\n");
    for k in 0..n {
        let _ = writeln!(s, "    rates{k}(v)\n    m{k} = inf{k}");
    }
    s.push_str("    C = 1\n    O = 0\n    I = 0\n    net_send(0, 1)\n}\nDERIVATIVE states {\n");
    for k in 0..n {
        let _ = writeln!(s, "    rates{k}(v)\n    m{k}' = (inf{k} - m{k})/tau{k}");
    }
    s.push_str("}\nKINETIC scheme {\n    ~ C <-> O (alpha0(v), kb)\n    ~ O <-> I (alpha1(v), kb)\n    ~ I <-> C (kb, alpha2(v))\n    CONSERVE C + O + I = 1\n}\n");
    for k in 0..n {
        let _ = write!(
            s,
            "PROCEDURE rates{k}(v (mV)) {{\n    LOCAL q10, a, b\n    TABLE inf{k}, tau{k} DEPEND celsius FROM -100 TO 100 WITH 200\n    : rate constants for gate {k}\n    q10 = 3^((celsius - 6.3)/10)\n    a = alpha{k}(v)\n    b = 0.125*exp(-(v + 65)/80)\n    if (a + b > 1e-9) {{\n        tau{k} = 1/(q10*(a + b))\n    }} else {{\n        tau{k} = 1e9\n    }}\n    inf{k} = a/(a + b)\n}}\nFUNCTION alpha{k}(v (mV)) (/ms) {{\n    if (fabs((v - vh{k})/sl{k}) < 1e-6) {{\n        alpha{k} = 0.1*sl{k}*(1 - (v - vh{k})/sl{k}/2)\n    }} else {{\n        alpha{k} = 0.1*(v - vh{k})/(1 - exp(-(v - vh{k})/sl{k}))\n    }}\n}}\n"
        );
    }
    s.push_str("NET_RECEIVE(weight (uS)) {\n    INITIAL { }\n    if (flag == 1) {\n        WATCH (v > -20) 2\n    } else if (flag == 2) {\n        net_event(t)\n    } else {\n        w = w + weight\n    }\n}\n");
    s
}

/// The smallest synthetic file with at least `lines` lines.
fn mod_with_lines(lines: usize) -> String {
    (1..)
        .map(big_mod)
        .find(|text| text.lines().count() >= lines)
        .expect("the generator grows without bound")
}

/// Median wall time of `f` over `runs` calls, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn bench(c: &mut Criterion) {
    let text = mod_with_lines(4_000);
    let lines = text.lines().count();
    // The file must be valid, or we would be timing the error path.
    let mut sources = SourceMap::new();
    let r = check_source(&mut sources, "big.mod", &text);
    assert!(
        !r.has_errors(),
        "{}",
        nmodl_frontend::render::render(&sources, &r.diagnostics, false)
    );
    let check = || {
        let mut sources = SourceMap::new();
        check_source(&mut sources, "big.mod", std::hint::black_box(&text))
    };
    let parse = || {
        nmodl_frontend::parser::parse(
            nmodl_frontend::source::FileId(0),
            std::hint::black_box(&text),
        )
    };
    let mut group = c.benchmark_group("frontend");
    // Criterion reports the time per file and, as throughput, lines per second.
    group.throughput(Throughput::Elements(lines as u64));
    group.bench_function(format!("parse+resolve one {lines}-line mod file"), |b| {
        b.iter(check)
    });
    group.bench_function(format!("parse only one {lines}-line mod file"), |b| {
        b.iter(parse)
    });
    group.finish();
    let total = median_ms(31, || drop(check()));
    let parse_only = median_ms(31, || drop(parse()));
    println!(
        "summary: parse+resolve {total:.2} ms per {lines}-line file (parse {parse_only:.2} ms, \
         resolve {:.2} ms); target under 20 ms",
        total - parse_only
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
