fn main() {
    let root = std::path::Path::new(".cache/corpus");
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else if p.extension().is_some_and(|x| x == "mod") {
                files.push(p)
            }
        }
    }
    files.sort();
    let (mut ok, mut bad) = (0, 0);
    for f in &files {
        let t = std::time::Instant::now();
        match codegen::load::compile_file(f) {
            Ok(_) => {
                ok += 1;
                println!("OK   {} ({:?})", f.display(), t.elapsed());
            }
            Err(e) => {
                bad += 1;
                println!("FAIL {}", e.headline);
            }
        }
    }
    println!("{ok} ok, {bad} rejected");
}
