//! Quick kernel-speed probe on issue 7's hh-cells model: N cells, each a
//! soma (L = diam = 20 µm, hh) and a dendrite (L 1000 µm, diam 1 µm,
//! nseg 100) with hh (`hh`, IClamp 0.5 nA) or pas (`pas`, 0.3 nA), the
//! built-ins in their default form (compiled ahead of time;
//! `NRNRS_BUILTINS=jit` for the JIT), 100 ms at dt 0.025. Prints ns per
//! compartment-step and the runtime's per-phase times in ns per
//! compartment-step.
//!
//! `cargo run --release -p mechanisms --example speed -- [hh|pas] [N] [threads] [steps] [LIBRARY]`
//!
//! With LIBRARY (a `libnrnmech.so` built by nrnivmodl-rs from
//! `mechanisms/mod`), the mechanisms come from it instead (AOT kernels).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("hh", String::as_str);
    let ncell: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let nthread: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut m = match args.get(5) {
        Some(lib) => {
            let mut m = runtime::Model::new();
            m.load_library(std::path::Path::new(lib)).unwrap();
            m
        }
        None => mechanisms::new_model().unwrap(),
    };
    for c in 0..ncell {
        let soma = m.create_section(&format!("soma{c}")).unwrap();
        m.set_length(soma, 20.0).unwrap();
        m.set_diam(soma, 20.0).unwrap();
        m.insert(soma, "hh").unwrap();
        let dend = m.create_section(&format!("dend{c}")).unwrap();
        m.set_nseg(dend, 100).unwrap();
        m.set_length(dend, 1000.0).unwrap();
        m.set_diam(dend, 1.0).unwrap();
        m.connect(dend, 0.0, soma, 1.0).unwrap();
        let amp = if variant == "pas" {
            m.insert(dend, "pas").unwrap();
            for k in 0..100 {
                let x = (k as f64 + 0.5) / 100.0;
                m.set_range(dend, x, "g_pas", 1e-4).unwrap();
                m.set_range(dend, x, "e_pas", -65.0).unwrap();
            }
            0.3
        } else {
            m.insert(dend, "hh").unwrap();
            0.5
        };
        let st = m.point_process("IClamp", soma, 0.5).unwrap();
        m.set_point(st, "del", 1.0).unwrap();
        m.set_point(st, "dur", 100.0).unwrap();
        m.set_point(st, "amp", amp).unwrap();
    }
    m.set_nthread(nthread).unwrap();
    m.finitialize(-65.0).unwrap();
    m.reset_phase_times();
    let n: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4000);
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        m.fadvance().unwrap();
    }
    let el = t0.elapsed().as_secs_f64();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e9 / (n as f64 * ncell as f64 * 101.0);
    let p = m.phase_times();
    println!(
        "{variant} N={ncell} threads={nthread}: {:.1} ns per compartment-step \
         (currents {:.1}, matrix {:.1}, solve {:.1}, states {:.1}, events {:.2})",
        el * 1e9 / (n as f64 * ncell as f64 * 101.0),
        per(p.currents),
        per(p.matrix_setup),
        per(p.solve),
        per(p.states),
        per(p.events)
    );
}
