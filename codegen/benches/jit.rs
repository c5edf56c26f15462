//! Times compiling the hand-built hh module and running its kernels.

#[path = "../tests/common/hh.rs"]
mod hh;

use codegen::interp::{self, MechData};
use codegen::ir::Phase;
use codegen::jit::{self, Compiler, OptLevel};
use codegen::valid::validate;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let (module, _) = hh::hh_module();
    let vm = validate(&module).expect("valid");
    c.bench_function("validate hh", |b| b.iter(|| validate(&module).unwrap()));
    for opt in [OptLevel::QuickCompile, OptLevel::None, OptLevel::Speed] {
        let mut compiler = Compiler::new(opt).unwrap();
        c.bench_function(&format!("compile hh ({opt:?})"), |b| {
            b.iter(|| compiler.compile(&vm).unwrap())
        });
    }
    let jit = jit::compile(&vm).unwrap();
    let mut data = MechData::new(&vm, 1000, 1000);
    for (n, v) in data.v.iter_mut().enumerate() {
        *v = -80.0 + 0.05 * n as f64;
    }
    assert_eq!(
        jit::run_kernel(&jit, &vm, Phase::Init, &mut data).unwrap(),
        0
    );
    for phase in [Phase::Cur, Phase::State] {
        c.bench_function(&format!("jit hh {phase:?} x1000"), |b| {
            b.iter(|| jit::run_kernel(&jit, &vm, phase, &mut data).unwrap())
        });
        c.bench_function(&format!("interp hh {phase:?} x1000"), |b| {
            b.iter(|| interp::run_kernel(&vm, phase, &mut data).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
