//! hh benchmark with JIT-compiled built-ins against the same .mod files
//! built into a library by nrnivmodl-rs (the AOT back end), interleaved in
//! one process. Prints ns per compartment-step for each, and their ratio.
//!
//! `cargo run --release -p mechanisms --example aot_vs_jit -- path/to/libnrnmech.so [CELLS]`
//! (100 cells by default; 40,000 cell-steps per timing)
//! (see bench/aot_vs_jit.sh, which builds the library first).
use runtime::{Model, NetSource};

fn build(m: &mut Model, cells: usize) {
    for c in 0..cells {
        let s = m.create_section(&format!("axon{c}")).unwrap();
        m.set_nseg(s, 101).unwrap();
        m.set_length(s, 1000.0).unwrap();
        m.set_diam(s, 1.0).unwrap();
        m.insert(s, "hh").unwrap();
        let st = m.point_process("IClamp", s, 0.0).unwrap();
        m.set_point(st, "del", 1.0).unwrap();
        m.set_point(st, "dur", 100.0).unwrap();
        m.set_point(st, "amp", 0.5).unwrap();
        m.netcon(NetSource::Voltage(s, 1.0), None, 10.0, 1.0, &[0.0])
            .unwrap();
    }
}

fn time(m: &mut Model, cells: usize, steps: usize) -> f64 {
    m.finitialize(-65.0).unwrap();
    let t0 = std::time::Instant::now();
    for _ in 0..steps {
        m.fadvance().unwrap();
    }
    t0.elapsed().as_secs_f64() * 1e9 / (steps as f64 * cells as f64 * 101.0)
}

fn main() {
    let lib = std::env::args()
        .nth(1)
        .expect("usage: aot_vs_jit LIBRARY [CELLS]");
    let cells: usize = std::env::args()
        .nth(2)
        .map_or(100, |n| n.parse().expect("CELLS is a number"));
    let mut jit = mechanisms::new_model_from(mechanisms::Backend::Jit).unwrap();
    build(&mut jit, cells);
    let mut aot = Model::new();
    aot.load_library(std::path::Path::new(&lib)).unwrap();
    build(&mut aot, cells);
    let (mut j, mut a) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        j.push(time(&mut jit, cells, 40_000 / cells.max(1)));
        a.push(time(&mut aot, cells, 40_000 / cells.max(1)));
    }
    j.sort_by(f64::total_cmp);
    a.sort_by(f64::total_cmp);
    println!(
        "hh, {cells} cells x 101 compartments, {} steps, median of 5 (interleaved):",
        40_000 / cells.max(1)
    );
    println!(
        "  JIT kernels: {:.1} ns per compartment-step (min {:.1}, max {:.1})",
        j[2], j[0], j[4]
    );
    println!(
        "  AOT library: {:.1} ns per compartment-step (min {:.1}, max {:.1})",
        a[2], a[0], a[4]
    );
    println!("  AOT / JIT time: {:.2}", a[2] / j[2]);
}
