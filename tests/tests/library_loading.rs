//! Issue 5's loading acceptance: a 1,000-iteration load / run / unload /
//! reload loop without memory growth, and hostile libraries (a truncated
//! file, a newer ABI version, a wrong layout fingerprint, a library without
//! the entry symbol, an ELF that is not ours), each refused with a clear
//! error naming the file, never a crash.
//!
//! The libraries are our hh (`mechanisms/mod/hh.mod`) emitted by the Rust
//! back end and compiled by `rustc` as nrnivmodl-rs does; the hostile ones
//! are the same source with one line changed.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use codegen::rust::{emit_library, LibraryEntry};
use runtime::Model;

/// hh's generated library source.
fn hh_source() -> &'static str {
    static SRC: OnceLock<String> = OnceLock::new();
    SRC.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mechanisms/mod/hh.mod");
        let (valid, spec) = common::lower_file(&path);
        emit_library(&[LibraryEntry {
            module: &valid,
            spec: &spec,
            source_fingerprint: 0,
        }])
        .expect("emits")
    })
}

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("library_loading");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `source` into `<scratch>/lib<name>.so`.
fn compile(name: &str, source: &str) -> PathBuf {
    common::compile_cdylib("library_loading", name, source, 1)
}

/// The hh source with `from` replaced by `to` (which must occur once).
fn edited(from: &str, to: &str) -> String {
    let src = hh_source();
    assert_eq!(
        src.matches(from).count(),
        1,
        "`{from}` in the generated source"
    );
    src.replace(from, to)
}

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One use of a library: a model with an hh section, initialised and
/// stepped, then dropped (which unloads the library when no other model
/// holds it).
fn use_once(lib: &Path, mech: &str) -> f64 {
    let mut m = Model::new();
    m.load_library(lib).unwrap();
    let s = m.create_section("soma").unwrap();
    m.insert(s, mech).unwrap();
    m.finitialize(-65.0).unwrap();
    for _ in 0..5 {
        m.fadvance().unwrap();
    }
    m.get_range(s, 0.5, "v").unwrap()
}

#[test]
fn load_run_unload_and_reload_a_thousand_times_without_growth() {
    let a = compile("hh_a", hh_source());
    // A rebuild of the "same" library with another default: a new file at
    // the same path each time the loop switches.
    let b = compile(
        "hh_b",
        &edited("default_value: 0.12f64", "default_value: 0.125f64"),
    );
    let path = scratch().join("libhh_loop.so");
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let mut rss = Vec::new();
    let mut v = [0.0, 0.0];
    for k in 0..1000 {
        let which = (k / 2) % 2;
        if k % 2 == 0 {
            std::fs::write(&path, if which == 0 { &bytes_a } else { &bytes_b }).unwrap();
        }
        v[which] = use_once(&path, "hh");
        if k == 99 || k == 999 {
            rss.push(resident_kib());
        }
    }
    // The two builds really are different libraries.
    assert_ne!(v[0], v[1]);
    if let [Some(at100), Some(at1000)] = rss[..] {
        assert!(
            at1000 <= at100 + 8 * 1024,
            "resident memory grew from {at100} KiB after 100 loads to {at1000} KiB after 1000"
        );
    }
    // Nothing is left in the temporary folder by the loader.
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("nrnrs-{}-", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0, "private copies left behind");
}

fn refused(path: &Path, expect: &str) {
    let mut m = Model::new();
    let e = m
        .load_library(path)
        .expect_err("a hostile library must be refused")
        .to_string();
    assert!(
        e.contains(&path.display().to_string()),
        "names the file: {e}"
    );
    assert!(e.contains(expect), "says why ({expect}): {e}");
    // The model is still usable afterwards.
    assert!(m.mechanism_names().is_empty(), "nothing registered: {e}");
}

#[test]
fn hostile_libraries_are_refused_with_clear_errors() {
    let good = compile("hh_good", hh_source());
    let dir = scratch();

    let truncated = dir.join("libtruncated.so");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    refused(&truncated, "not a loadable shared library");

    let empty = dir.join("libempty.so");
    std::fs::write(&empty, b"").unwrap();
    refused(&empty, "not a loadable shared library");

    let newer = compile(
        "hh_newer_major",
        &edited("abi_major: ABI_MAJOR,", "abi_major: ABI_MAJOR + 1,"),
    );
    refused(&newer, "ABI");

    let newer_minor = compile(
        "hh_newer_minor",
        &edited("abi_minor: ABI_MINOR,", "abi_minor: ABI_MINOR + 1,"),
    );
    refused(&newer_minor, "ABI");

    let layout = compile(
        "hh_layout",
        &edited(
            "layout_fingerprint: LAYOUT_FINGERPRINT,",
            "layout_fingerprint: LAYOUT_FINGERPRINT ^ 1,",
        ),
    );
    refused(&layout, "fingerprint");

    let no_entry = compile(
        "no_entry",
        "#[no_mangle]\npub extern \"C\" fn something_else() -> i32 { 7 }\n",
    );
    refused(&no_entry, "nrnrs_mechanism_table");

    // What a library built with FMA returns on a processor without it.
    let null_table = compile(
        "null_table",
        "#[no_mangle]\npub extern \"C\" fn nrnrs_mechanism_table() -> *const u8 { core::ptr::null() }\n",
    );
    refused(&null_table, "build it again on this machine");

    // An ELF that is not ours: the C library itself, when it can be found.
    for libc in ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6"] {
        let p = Path::new(libc);
        if p.exists() {
            refused(p, "nrnrs_mechanism_table");
        }
    }
    // An executable is not a library either.
    refused(Path::new("/bin/sh"), "");
    // And the good one still loads after all that.
    assert!(use_once(&good, "hh").is_finite());
}
