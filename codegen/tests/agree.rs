//! Property test: random well-typed modules run through the interpreter and
//! the JIT agree on every output column, host call and status, bit for bit
//! (NaN-aware).

mod common;

use codegen::interp::{self, MechData};
use codegen::ir::*;
use codegen::jit;
use codegen::valid::validate;
use common::diff_data;
use common::gen::{build_module, data_strategy, ge, gs, value};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn interpreter_and_jit_agree(
        func in prop::collection::vec(gs(), 0..4),
        func_ret in ge(),
        proc in prop::collection::vec(gs(), 0..4),
        kernel in prop::collection::vec(gs(), 1..8),
        (field_values, other_values) in data_strategy(),
        instance in 0u32..6,
        flag in value(),
    ) {
        let module = build_module(&func, &func_ret, &proc, &kernel, &MathFn::ALL);
        let vm = match validate(&module) {
            Ok(vm) => vm,
            Err(e) => return Err(TestCaseError::fail(format!("generated IR must validate: {e:?}"))),
        };
        // Every optimisation level must give the same bits as the interpreter.
        let jits: Vec<_> = [jit::OptLevel::Speed, jit::OptLevel::None, jit::OptLevel::QuickCompile]
            .into_iter()
            .map(|opt| {
                jit::Compiler::new(opt)
                    .and_then(|mut c| c.compile(&vm))
                    .expect("validated IR compiles")
            })
            .collect();
        let count = 6;
        let mut data = MechData::new(&vm, count, 3);
        for (c, col) in data.fields.iter_mut().enumerate() {
            for (i, x) in col.iter_mut().enumerate().take(count) {
                *x = field_values[(c * 8 + i) % field_values.len()];
            }
        }
        let ng = data.globals.len();
        data.globals.copy_from_slice(&other_values[..ng]);
        data.v.copy_from_slice(&other_values[8..11]);
        data.ions[0].erev.copy_from_slice(&other_values[11..14]);
        data.ions[0].conc_i[0] = other_values[14];
        data.t = other_values[15];
        data.secondorder = 1;
        data.pointer_pool = vec![1.5, -2.5];
        data.pointers[0] = (0..count).map(|i| Some(i % 2)).collect();
        data.host.rng_state = 42;
        data.ions[0].valence = 2.0;

        for (k, jit) in jits.iter().enumerate() {
            let mut a = data.clone();
            let mut b = data.clone();
            let sa = interp::run_kernel(&vm, Phase::Cur, &mut a).unwrap();
            let sb = jit::run_kernel(jit, &vm, Phase::Cur, &mut b).unwrap();
            prop_assert_eq!(sa, sb, "cur status, JIT config {}", k);
            let diffs = diff_data(&a, &b);
            prop_assert!(diffs.is_empty(), "cur, JIT config {}: {:#?}", k, diffs);

            let mut wa = vec![0.5, -1.0, 3.0];
            let mut wb = wa.clone();
            let sa = interp::run_event(&vm, Phase::NetReceive, &mut a, instance, &mut wa, flag)
                .unwrap();
            let sb = jit::run_event(jit, &vm, Phase::NetReceive, &mut b, instance, &mut wb, flag)
                .unwrap();
            prop_assert_eq!(sa, sb, "net_receive status, JIT config {}", k);
            let diffs = diff_data(&a, &b);
            prop_assert!(diffs.is_empty(), "net_receive, JIT config {}: {:#?}", k, diffs);
            prop_assert!(common::diff_slices("weights", &wa, &wb).is_none());
        }
    }
}
