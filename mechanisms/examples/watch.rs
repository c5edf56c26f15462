use runtime::*;
fn main() {
    let mut m = mechanisms::new_model().unwrap();
    let c = codegen::load::compile_file(std::path::Path::new("/tmp/watch/wdet.mod"))
        .unwrap_or_else(|e| panic!("{e}"));
    m.register(c.spec).unwrap();
    let s = m.create_section("soma").unwrap();
    m.set_length(s, 10.0).unwrap();
    m.set_diam(s, 10.0).unwrap();
    m.insert(s, "hh").unwrap();
    let st = m.point_process("IClamp", s, 0.5).unwrap();
    m.set_point(st, "del", 2.0).unwrap();
    m.set_point(st, "dur", 20.0).unwrap();
    m.set_point(st, "amp", 0.3).unwrap();
    let w = m.point_process("WDet", s, 0.5).unwrap();
    let rn = m
        .record(Probe::Point(w, "n".into()), Sampling::EveryStep)
        .unwrap();
    let rt = m
        .record(Probe::Point(w, "tlast".into()), Sampling::EveryStep)
        .unwrap();
    m.finitialize(-65.0).unwrap();
    for _ in 0..1000 {
        m.fadvance().unwrap();
    }
    let n = m.recorded(rn).unwrap();
    let t = m.recorded(rt).unwrap();
    let mut last = -1.0;
    for (a, b) in n.iter().zip(t) {
        if *b != last {
            println!("n={a} t={b}");
            last = *b;
        }
    }
}
