//! How long `Model::set_range` takes by itself on 100,000 segments (the
//! floor under `seg.gnabar_hh = x` from Python).
fn main() {
    let mut m = mechanisms::new_model().expect("built-ins");
    let mut secs = Vec::new();
    for i in 0..10 {
        let s = m.create_section(&format!("s{i}")).unwrap();
        m.set_nseg(s, 10000).unwrap();
        m.insert(s, "hh").unwrap();
        secs.push(s);
    }
    m.finitialize(-65.0).unwrap();
    for name in ["gnabar_hh", "v"] {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t0 = std::time::Instant::now();
            for &s in &secs {
                for j in 0..10000 {
                    let x = (j as f64 + 0.5) / 10000.0;
                    m.set_range(s, x, name, -60.0).unwrap();
                }
            }
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "set_range({name}) on 100,000 segments: {:.1} ms",
            best * 1e3
        );
    }
}
