//! Times JIT-loading every `.mod` file of a folder into a fresh model:
//! front end, lowering, validation, cranelift, registration. Prints one JSON
//! line: `{"files": n, "times_ms": [...]}` (one entry per repetition).
//!
//! `cargo run --release -p codegen --example jit_load -- FOLDER [REPEATS]`

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: jit_load FOLDER [REPEATS]");
        std::process::exit(2);
    };
    let repeats: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut times = Vec::new();
    let mut files = 0;
    for _ in 0..repeats {
        let t0 = std::time::Instant::now();
        let mut model = runtime::Model::new();
        let loaded = match codegen::load::load_folder(std::path::Path::new(&dir)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot read {dir}: {e}");
                std::process::exit(1);
            }
        };
        files = loaded.len();
        for (path, r) in loaded {
            match r {
                Ok(c) => {
                    if let Err(e) = model.register(c.spec) {
                        eprintln!("error: {}: {e}", path.display());
                        std::process::exit(1);
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!("{{\"files\": {files}, \"times_ms\": {times:?}}}");
}
