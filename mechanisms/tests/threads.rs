//! The JIT-compiled built-ins give bit-identical results for any thread
//! count, including TABLEs rebuilt after a celsius change (tables live in
//! GLOBALs, which the runtime copies per thread).

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

#[test]
fn one_two_and_three_threads_agree_bit_for_bit() {
    let one = run(1);
    // The cells spike: the comparison is not of flat traces.
    assert!(one.iter().any(|&v| v > 20.0));
    for n in [2, 3] {
        let other = run(n);
        assert_eq!(one.len(), other.len());
        let same = one
            .iter()
            .zip(&other)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{n} threads differ from 1");
    }
}
