use runtime::*;
fn main() {
    let mut m = mechanisms::new_model().unwrap();
    let ns = m.artificial_cell("NetStim").unwrap();
    for (k, v) in [
        ("interval", 5.0),
        ("number", 10.0),
        ("start", 2.0),
        ("noise", 0.0),
    ] {
        m.set_point(ns, k, v).unwrap();
    }
    let c = m.artificial_cell("IntFire1").unwrap();
    m.netcon(NetSource::Point(ns), Some(c), 10.0, 1.0, &[0.5])
        .unwrap();
    let sc = m
        .netcon(NetSource::Point(c), None, 10.0, 1.0, &[0.0])
        .unwrap();
    let r = m
        .record(Probe::Point(c, "m".into()), Sampling::EveryStep)
        .unwrap();
    let rr = m
        .record(Probe::Point(c, "refractory".into()), Sampling::EveryStep)
        .unwrap();
    m.finitialize(-65.0).unwrap();
    for _ in 0..2000 {
        m.fadvance().unwrap();
    }
    let v = m.recorded(r).unwrap();
    let rf = m.recorded(rr).unwrap();
    for k in [118, 119, 120, 121, 600, 720, 721, 722, 1000, 1720] {
        println!("{k}: m={} refr={}", v[k], rf[k]);
    }
    println!("spikes {:?}", m.spikes(sc).unwrap());
    println!(
        "{:?}",
        m.mechanism_spec("IntFire1")
            .unwrap()
            .fields
            .iter()
            .map(|f| (&f.name, f.kind))
            .collect::<Vec<_>>()
    );
}
