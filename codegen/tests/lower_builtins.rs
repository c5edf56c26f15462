//! Every built-in mechanism of `mechanisms/mod` lowers, validates and
//! JIT-compiles.

use std::path::Path;

#[test]
fn every_builtin_mod_file_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mechanisms/mod");
    let results = codegen::load::load_folder(&dir).unwrap();
    assert!(results.len() >= 10);
    let mut failures = String::new();
    for (path, r) in results {
        match r {
            Ok(c) => eprintln!(
                "{}: ok ({} fields){}",
                path.display(),
                c.spec.fields.len(),
                c.warnings
            ),
            Err(e) => failures.push_str(&format!("{}\n", e.rendered)),
        }
    }
    assert!(failures.is_empty(), "{failures}");
}
