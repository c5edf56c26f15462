fn run(nthread: usize) -> Vec<f64> {
    let mut m = mechanisms::new_model().unwrap();
    let mut recs = Vec::new();
    for c in 0..6 {
        let s = m.create_section(&format!("c{c}")).unwrap();
        m.set_nseg(s, 5).unwrap();
        m.set_length(s, 200.0).unwrap();
        m.set_diam(s, 2.0).unwrap();
        m.insert(s, "hh").unwrap();
        let st = m.point_process("IClamp", s, 0.0).unwrap();
        m.set_point(st, "del", 1.0).unwrap();
        m.set_point(st, "dur", 100.0).unwrap();
        m.set_point(st, "amp", 0.1 + 0.05 * c as f64).unwrap();
        recs.push(
            m.record(runtime::Probe::V(s, 1.0), runtime::Sampling::EveryStep)
                .unwrap(),
        );
    }
    m.set_nthread(nthread).unwrap();
    m.set_celsius(16.3).unwrap();
    m.finitialize(-65.0).unwrap();
    for _ in 0..800 {
        m.fadvance().unwrap();
    }
    recs.iter()
        .flat_map(|r| m.recorded(*r).unwrap().to_vec())
        .collect()
}
fn main() {
    let a = run(1);
    let b = run(2);
    let c = run(3);
    let d = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max)
    };
    println!("1 vs 2 threads: {:e}; 1 vs 3: {:e}", d(&a, &b), d(&a, &c));
}
