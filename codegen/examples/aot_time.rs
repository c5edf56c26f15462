use nmodl_frontend::source::SourceMap;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let mut lowered = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "mod") {
            let mut sm = SourceMap::new();
            let r = nmodl_frontend::check_file(&mut sm, &p);
            let l = codegen::lower::lower(&r.model.unwrap()).unwrap();
            let vm = codegen::valid::validate(&l.module).unwrap();
            lowered.push((vm, l.spec));
        }
    }
    let entries: Vec<_> = lowered
        .iter()
        .map(|(vm, s)| codegen::rust::LibraryEntry {
            module: vm,
            spec: s,
            source_fingerprint: 0,
        })
        .collect();
    let t = std::time::Instant::now();
    let src = codegen::rust::emit_library(&entries).unwrap();
    println!("emit {:?}, {} bytes", t.elapsed(), src.len());
    std::fs::write("/tmp/aot/lib.rs", &src).unwrap();
}
