use runtime::*;
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mechanisms/mod");
    let mut m = Model::new();
    for (_, r) in codegen::load::load_folder(&dir).unwrap() {
        m.register(r.unwrap().spec).unwrap();
    }
    let which = std::env::args().nth(1).unwrap_or("hh_single_so0".into());
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("tests/data/neuron/{which}.json")).unwrap(),
    )
    .unwrap();
    let s = m.create_section("soma").unwrap();
    m.set_length(s, 10.0).unwrap();
    m.set_diam(s, 10.0).unwrap();
    m.insert(s, "hh").unwrap();
    let usetable = d["model"]["globals"]["usetable_hh"].as_f64().unwrap_or(1.0);
    m.set_global("hh", "usetable", usetable).unwrap();
    let st = m.point_process("IClamp", s, 0.5).unwrap();
    m.set_point(st, "del", 2.0).unwrap();
    m.set_point(st, "dur", 0.1).unwrap();
    m.set_point(st, "amp", 1.0).unwrap();
    let r = m.record(Probe::V(s, 0.5), Sampling::EveryStep).unwrap();
    let rm = m
        .record(Probe::Range(s, 0.5, "m_hh".into()), Sampling::EveryStep)
        .unwrap();
    m.finitialize(-65.0).unwrap();
    for _ in 0..d["nsteps"].as_u64().unwrap() {
        m.fadvance().unwrap();
    }
    let ours = m.recorded(r).unwrap();
    let theirs: Vec<f64> = d["traces"]["soma(0.5).v"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let maxd = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let om = m.recorded(rm).unwrap();
    let tm: Vec<f64> = d["traces"]["soma(0.5).hh.m"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect())
        .unwrap_or_default();
    let maxm = om
        .iter()
        .zip(&tm)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "{which}: n={} max|dV|={maxd:e} max|dm|={maxm:e}",
        ours.len()
    );
}
