//! Compiling the hh module, with the time it takes printed (run with
//! `--nocapture`). Nothing is asserted about the time itself: machines and
//! load vary; the criterion bench `benches/jit.rs` measures it properly.

mod common;

use codegen::interp::MechData;
use codegen::ir::Phase;
use codegen::jit::{self, Compiler, OptLevel};
use codegen::valid::validate;
use std::time::Instant;

#[test]
fn hh_compiles_at_every_opt_level_and_runs() {
    let (module, f) = common::hh::hh_module();
    let vm = validate(&module).expect("valid");
    let configs: [(OptLevel, &[(&str, &str)]); 4] = [
        (OptLevel::QuickCompile, &[]),
        (OptLevel::None, &[]),
        (OptLevel::Speed, &[]),
        (OptLevel::Speed, &[("enable_verifier", "false")]),
    ];
    for (opt, extra) in configs {
        let mut compiler = if extra.is_empty() {
            Compiler::new(opt)
        } else {
            Compiler::with_settings(opt, extra)
        }
        .expect("host ISA");
        // The first compile warms up; then 20 compiles reuse the contexts,
        // like loading a folder of 20 mod files.
        let _ = compiler.compile(&vm).expect("compiles");
        let start = Instant::now();
        let modules: Vec<_> = (0..20)
            .map(|_| compiler.compile(&vm).expect("compiles"))
            .collect();
        let elapsed = start.elapsed();
        eprintln!(
            "{opt:?} {extra:?}: 20 hh modules compiled in {:.2} ms ({:.3} ms each)",
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_secs_f64() * 1e3 / 20.0
        );
        // Each compiled module works.
        for m in &modules {
            let mut d = MechData::new(&vm, 1, 1);
            d.v[0] = -65.0;
            assert_eq!(jit::run_kernel(m, &vm, Phase::Init, &mut d).unwrap(), 0);
            assert!((d.fields[vm.field_column(f.m)][0] - 0.0529325).abs() < 1e-6);
        }
    }
}
