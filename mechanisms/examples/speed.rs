//! Quick kernel-speed probe: 100 hh axons of 101 compartments with our
//! JIT-compiled built-ins, 400 steps; prints ns per compartment-step and the
//! runtime's per-phase times. `cargo run --release -p mechanisms --example speed`
fn main() {
    let mut m = mechanisms::new_model().unwrap();
    let ncell = 100;
    for c in 0..ncell {
        let s = m.create_section(&format!("axon{c}")).unwrap();
        m.set_nseg(s, 101).unwrap();
        m.set_length(s, 1000.0).unwrap();
        m.set_diam(s, 1.0).unwrap();
        m.insert(s, "hh").unwrap();
        let st = m.point_process("IClamp", s, 0.0).unwrap();
        m.set_point(st, "del", 1.0).unwrap();
        m.set_point(st, "dur", 100.0).unwrap();
        m.set_point(st, "amp", 0.5).unwrap();
    }
    m.finitialize(-65.0).unwrap();
    let n = 400;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        m.fadvance().unwrap();
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "{:.1} ns per compartment-step",
        el * 1e9 / (n as f64 * ncell as f64 * 101.0)
    );
    println!("{:?}", m.phase_times());
}
