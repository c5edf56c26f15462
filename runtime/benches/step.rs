//! The fixed step on the hh-cells model: 100 cells, each a soma (L = diam =
//! 20 µm) and a dendrite (L 1000 µm, diam 1 µm, nseg 100) with hh
//! everywhere and an IClamp at the soma (delay 1 ms, dur 100 ms, 0.5 nA):
//! 100 × 101 compartments. Timed over a fixed number of steps with 1 and 2
//! threads; prints ns per compartment-step and the per-phase split.
//!
//! Run with `cargo bench -p runtime --bench step`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use runtime::Model;

const CELLS: usize = 100;
const DEND_NSEG: usize = 100;
const COMPARTMENTS: usize = CELLS * (1 + DEND_NSEG);
const STEPS: usize = 200;

fn hh_cells(nthread: usize) -> Model {
    let mut m = common::model_with_builtins();
    for c in 0..CELLS {
        let soma = m.create_section(&format!("soma{c}")).unwrap();
        m.set_length(soma, 20.0).unwrap();
        m.set_diam(soma, 20.0).unwrap();
        let dend = m.create_section(&format!("dend{c}")).unwrap();
        m.set_nseg(dend, DEND_NSEG).unwrap();
        m.set_length(dend, 1000.0).unwrap();
        m.set_diam(dend, 1.0).unwrap();
        m.connect(dend, 0.0, soma, 1.0).unwrap();
        m.insert(soma, "hh").unwrap();
        m.insert(dend, "hh").unwrap();
        let stim = m.point_process("IClamp", soma, 0.5).unwrap();
        m.set_point(stim, "del", 1.0).unwrap();
        m.set_point(stim, "dur", 100.0).unwrap();
        m.set_point(stim, "amp", 0.5).unwrap();
    }
    m.set_nthread(nthread).unwrap();
    m.finitialize(-65.0).unwrap();
    m
}

fn ns_per_compartment_step(d: Duration, steps: usize) -> f64 {
    d.as_nanos() as f64 / (steps * COMPARTMENTS) as f64
}

fn bench(c: &mut Criterion) {
    for nthread in [1, 2] {
        // One plain timed run for the printed figure and the phase split.
        let mut m = hh_cells(nthread);
        m.reset_phase_times();
        let start = Instant::now();
        for _ in 0..STEPS {
            m.fadvance().unwrap();
        }
        let total = start.elapsed();
        let p = m.phase_times();
        println!(
            "hh-cells {CELLS}x{} nthread={nthread} (groups {}): {:.2} ns per compartment-step \
             over {STEPS} steps; currents {:.2}, matrix setup {:.2}, solve {:.2}, states {:.2}, \
             events {:.2} ns per compartment-step",
            1 + DEND_NSEG,
            m.ngroups().unwrap(),
            ns_per_compartment_step(total, STEPS),
            ns_per_compartment_step(p.currents, STEPS),
            ns_per_compartment_step(p.matrix_setup, STEPS),
            ns_per_compartment_step(p.solve, STEPS),
            ns_per_compartment_step(p.states, STEPS),
            ns_per_compartment_step(p.events, STEPS),
        );
        let mut group = c.benchmark_group(format!("hh_cells_nthread{nthread}"));
        group.sample_size(10);
        group.bench_function(format!("{STEPS}_steps"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    for _ in 0..STEPS {
                        m.fadvance().unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
