//! The protocol runner (`tests::build_and_run` / `tests::compare`) checked
//! against NEURON 9.0.2's reference data with the runtime's hand-written
//! test kernels (hh, pas, IClamp, ExpSyn, Exp2Syn, AlphaSynapse, NetStim),
//! which `runtime/tests/neuron_reference.rs` shows to agree with NEURON. A
//! failure here with those kernels is a runner bug. The other tests make
//! sure the comparison can fail.
#[path = "../../runtime/tests/common/mod.rs"]
mod common;

use runtime::{MechanismSpec, Model};
use std::path::Path;
use tests::{
    build_and_run, build_model, compare, corpus_cases, corpus_dir, corpus_table, data_dir,
    load_reference, run_corpus_case, Comparison, CorpusOutcome, Reference, RunOptions, RunResult,
    Tolerances, Trace, TraceKind, TraceStatus,
};

/// Every hand-written kernel, in NEURON's built-in order.
fn kernels() -> Vec<MechanismSpec> {
    vec![
        common::hh_spec(),
        common::pas_spec(),
        common::iclamp_spec(),
        common::expsyn_spec(),
        common::exp2syn_spec(),
        common::alphasynapse_spec(),
        common::netstim_spec(),
    ]
}

fn register_kernels(m: &mut Model) -> Result<(), String> {
    for spec in kernels() {
        m.register(spec).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn load(file: &str) -> Reference {
    load_reference(data_dir().join(file)).unwrap_or_else(|e| panic!("{e}"))
}

fn run(reference: &Reference, nthread: usize) -> RunResult {
    build_and_run(reference, &register_kernels, &RunOptions { nthread })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one protocol and asserts that it matches NEURON.
fn check(file: &str) -> (Comparison, RunResult) {
    let reference = load(file);
    let result = run(&reference, 1);
    let c = compare(&reference, &result, &Tolerances::default());
    eprintln!("{c}");
    assert!(c.passed(), "{file} differs from NEURON:\n{c}");
    // Every reference trace was compared, none skipped.
    assert_eq!(
        c.traces.iter().filter(|t| t.passed()).count(),
        c.traces.len()
    );
    assert!(c.traces.len() >= reference.traces.len());
    (c, result)
}

macro_rules! protocols {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            check(concat!(stringify!($name), ".json"));
        }
    )*};
}

protocols!(
    hh_single_so0,
    hh_single_so2,
    hh_axon_so0,
    hh_axon_so2,
    hh_axon_ra35,
    hh_axon_ra100,
    pas_single,
    demo,
    hh_soma_iclamp,
    hh_soma_iclamp_notable,
    iclamp_alone,
    two_cells_expsyn,
    netstim_expsyn,
    expsyn_alone,
    exp2syn_alone,
    netstim_alone,
    pas_alphasynapse,
);

/// The runner builds every geometry kind of geometry.json (cylinder,
/// seg_diam, pt3d) as NEURON did: area, ri, volume and diam of every node
/// agree with NEURON's to 1e-12 relative.
#[test]
fn geometry_kinds_are_built_as_neuron_did() {
    let path = data_dir().join("geometry.json");
    let reference = load_reference(&path).unwrap();
    let mut built = build_model(&reference, &register_kernels).unwrap();
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let mut nodes = 0;
    for sec in raw["geometry"]["sections"].as_array().unwrap() {
        let name = sec["name"].as_str().unwrap();
        kinds.insert(sec["geometry"].as_str().unwrap().to_string());
        let id = built.sections[name];
        for seg in sec["segments"].as_array().unwrap() {
            let x = seg["x"].as_f64().unwrap();
            let m = &mut built.model;
            for (what, ours) in [
                ("area", m.area(id, x).unwrap()),
                ("ri", m.ri(id, x).unwrap()),
                ("volume", m.volume(id, x).unwrap()),
                ("diam", m.diam(id, x).unwrap()),
            ] {
                let theirs = seg[what].as_f64().unwrap();
                let ok = if theirs == 0.0 {
                    ours.abs() <= 1e-12
                } else {
                    ((ours - theirs) / theirs).abs() <= 1e-12
                };
                assert!(ok, "{name}({x}).{what}: ours {ours}, NEURON {theirs}");
            }
            nodes += 1;
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["cylinder", "pt3d", "seg_diam"]
    );
    // The trees, each built alone from its own sections (connected with
    // parent_x / child_x, including a child attached by its 1 end).
    for tree in raw["geometry"]["trees"].as_array().unwrap() {
        let mut r = reference.clone();
        r.simulation.as_mut().unwrap().model.sections =
            serde_json::from_value(tree["sections"].clone()).unwrap();
        let mut built = build_model(&r, &register_kernels).unwrap();
        assert_eq!(
            built.model.topology().unwrap(),
            tree["topology"].as_str().unwrap()
        );
        for sec in tree["sections"].as_array().unwrap() {
            let id = built.sections[sec["name"].as_str().unwrap()];
            for seg in sec["segments"].as_array().unwrap() {
                let x = seg["x"].as_f64().unwrap();
                let (ours, theirs) = (
                    built.model.area(id, x).unwrap(),
                    seg["area"].as_f64().unwrap(),
                );
                assert!(
                    (ours - theirs).abs() <= 1e-12 * theirs.abs().max(1.0),
                    "{}({x}) area: ours {ours}, NEURON {theirs}",
                    sec["name"]
                );
                nodes += 1;
            }
        }
    }
    assert!(nodes > 50, "{nodes} nodes");
}

#[test]
fn spikes_and_ions_are_compared() {
    let (c, _) = check("two_cells_expsyn.json");
    let sources: Vec<&str> = c.spikes.iter().map(|s| s.source.as_str()).collect();
    assert_eq!(sources, ["soma1(0.5)", "soma2(0.5)"]);
    assert!(c.spikes.iter().all(|s| !s.neuron.is_empty()));
    // hh's na and k after finitialize, on both somas.
    let init = c
        .traces
        .iter()
        .filter(|t| t.name.ends_with("@init"))
        .count();
    assert_eq!(init, 2 * 6, "{c}");
    let kinds: Vec<_> = c.traces.iter().map(|t| (t.name.as_str(), t.kind)).collect();
    assert!(kinds.contains(&("soma1(0.5).v", Some(TraceKind::Voltage))));
    assert!(kinds.contains(&("syn.g", Some(TraceKind::State))));
    assert!(kinds.contains(&("syn.i", Some(TraceKind::Other))));
    assert!(kinds.contains(&("t", Some(TraceKind::Time))));
}

#[test]
fn two_threads_match_neuron_and_one_thread() {
    let reference = load("two_cells_expsyn.json");
    let one = run(&reference, 1);
    let two = run(&reference, 2);
    let c = compare(&reference, &two, &Tolerances::default());
    assert!(c.passed(), "{c}");
    assert_eq!(one, two, "two threads differ from one");
}

#[test]
fn state_traces_are_classified_as_states() {
    let (c, _) = check("hh_single_so0.json");
    for (name, kind, tol) in [
        ("soma(0.5).hh.m", TraceKind::State, 1e-9),
        ("soma(0.5).hh.il", TraceKind::Other, 1e-6),
        ("soma(0.5).ina", TraceKind::Other, 1e-6),
        ("soma(0.5).v", TraceKind::Voltage, 1e-6),
        ("soma(0.5).ena @init", TraceKind::Voltage, 1e-6),
        ("soma(0.5).nai @init", TraceKind::State, 1e-9),
    ] {
        let t = c.traces.iter().find(|t| t.name == name).unwrap();
        assert_eq!((t.kind, t.tolerance), (Some(kind), tol), "{name}");
    }
}

/// Decimated traces (corpus files keep every 40th step) line up with the
/// run's samples at steps 0, 40, 80, ...
#[test]
fn sample_every_keeps_every_nth_step() {
    let mut reference = load("hh_single_so0.json");
    let sim = reference.simulation.as_mut().unwrap();
    sim.sample_every = 40;
    for values in reference.traces.values_mut() {
        *values = values.iter().step_by(40).copied().collect();
    }
    let result = run(&reference, 1);
    let Some(Trace::Recorded { values, .. }) = result.traces.get("t") else {
        panic!("t not recorded");
    };
    assert_eq!(values.len(), 400 / 40 + 1);
    let c = compare(&reference, &result, &Tolerances::default());
    assert!(c.passed(), "{c}");
    // Shifting NEURON's samples by one step must be caught.
    let mut shifted = load("hh_single_so0.json");
    shifted.simulation.as_mut().unwrap().sample_every = 40;
    for values in shifted.traces.values_mut() {
        *values = values.iter().skip(1).step_by(40).copied().collect();
    }
    let c = compare(&shifted, &result, &Tolerances::default());
    assert!(!c.passed(), "{c}");
}

// ---------------------------------------------------------------------------
// The comparison is not vacuous.

fn perturbed(result: &RunResult, name: &str, k: usize, delta: f64) -> RunResult {
    let mut r = result.clone();
    match r.traces.get_mut(name) {
        Some(Trace::Recorded { values, .. }) => values[k] += delta,
        other => panic!("{name}: {other:?}"),
    }
    r
}

#[test]
fn a_perturbed_voltage_fails_at_its_index() {
    let reference = load("hh_single_so0.json");
    let result = run(&reference, 1);
    let tol = Tolerances::default();
    assert!(compare(&reference, &result, &tol).passed());
    let bad = perturbed(&result, "soma(0.5).v", 123, 2e-6);
    let c = compare(&reference, &bad, &tol);
    assert!(!c.passed());
    assert_eq!(c.failures(), ["soma(0.5).v"]);
    let v = c.traces.iter().find(|t| t.name == "soma(0.5).v").unwrap();
    match v.status {
        TraceStatus::Compared {
            max_abs_diff,
            worst_index,
            first_exceeding,
            ..
        } => {
            assert!(max_abs_diff > 1e-6 && max_abs_diff < 3e-6, "{max_abs_diff}");
            assert_eq!((worst_index, first_exceeding), (123, Some(123)));
        }
        ref s => panic!("{s:?}"),
    }
    let text = c.to_string();
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("index 123 (t = 3.07"), "{text}");
    // Within tolerance: still a pass.
    assert!(compare(
        &reference,
        &perturbed(&result, "soma(0.5).v", 123, 5e-7),
        &tol
    )
    .passed());
}

#[test]
fn a_perturbed_state_fails_at_the_state_tolerance() {
    let reference = load("hh_single_so0.json");
    let result = run(&reference, 1);
    let tol = Tolerances::default();
    let c = compare(
        &reference,
        &perturbed(&result, "soma(0.5).hh.m", 7, 2e-9),
        &tol,
    );
    assert_eq!(c.failures(), ["soma(0.5).hh.m"], "{c}");
}

#[test]
fn a_nan_never_passes() {
    let reference = load("pas_single.json");
    let result = run(&reference, 1);
    let c = compare(
        &reference,
        &perturbed(&result, "soma(0.5).v", 50, f64::NAN),
        &Tolerances::default(),
    );
    assert_eq!(c.failures(), ["soma(0.5).v"], "{c}");
    assert_eq!(c.max_v_diff(), Some(f64::INFINITY));
}

#[test]
fn a_spike_one_step_off_or_missing_fails() {
    let reference = load("hh_single_so0.json");
    let result = run(&reference, 1);
    let tol = Tolerances::default();
    let mut late = result.clone();
    late.spikes.get_mut("soma(0.5)").unwrap()[0] += 0.025;
    let c = compare(&reference, &late, &tol);
    assert_eq!(c.failures(), ["spikes soma(0.5)"], "{c}");
    let mut extra = result.clone();
    extra.spikes.get_mut("soma(0.5)").unwrap().push(9.0);
    assert!(!compare(&reference, &extra, &tol).passed());
    let mut none = result.clone();
    none.spikes.clear();
    let c = compare(&reference, &none, &tol);
    assert!(c.to_string().contains("none recorded"), "{c}");
    assert!(!c.passed());
}

#[test]
fn an_unprobeable_trace_is_reported_not_fatal() {
    let mut reference = load("pas_single.json");
    let n = reference.traces["t"].len();
    reference
        .traces
        .insert("soma(0.5).pas.nosuchvar".into(), vec![0.0; n]);
    let result = run(&reference, 1);
    assert!(matches!(
        result.traces["soma(0.5).pas.nosuchvar"],
        Trace::Unsupported { .. }
    ));
    let c = compare(&reference, &result, &Tolerances::default());
    assert_eq!(c.failures(), ["soma(0.5).pas.nosuchvar"]);
    assert!(c.to_string().contains("UNSUPPORTED"), "{c}");
    // The other traces were still compared and pass.
    assert!(c.traces.iter().filter(|t| t.passed()).count() >= 4);
}

#[test]
fn a_missing_mechanism_is_a_clear_error() {
    let reference = load("hh_single_so0.json");
    let only_pas = |m: &mut Model| {
        m.register(common::pas_spec())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = build_and_run(&reference, &only_pas, &RunOptions::default()).unwrap_err();
    assert!(err.contains("hh_single_so0") && err.contains("hh"), "{err}");
}

// ---------------------------------------------------------------------------
// The corpus path, with NEURON's own built-in .mod files (the reference ran
// NEURON's built-ins, compiled from these same files) "compiled" to the
// hand-written kernels.

fn builtins() -> Result<Vec<MechanismSpec>, String> {
    Ok(kernels())
}

fn fake_compile(path: &Path) -> Result<Vec<MechanismSpec>, String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let in_share = path.to_string_lossy().contains(".data/share/modfile");
    match stem {
        "passive" if in_share => Ok(vec![common::pas_spec()]),
        "stim" if in_share => Ok(vec![common::iclamp_spec()]),
        "netstim" if in_share => Ok(vec![common::netstim_spec()]),
        "expsyn" if in_share => Ok(vec![common::expsyn_spec()]),
        "exp2syn" if in_share => Ok(vec![common::exp2syn_spec()]),
        "hh" if in_share => Ok(vec![common::hh_spec()]),
        _ => Err(format!(
            "{}:1:1: error: not compiled in this test\nsecond line",
            path.display()
        )),
    }
}

#[test]
fn corpus_builtins_match_neuron_through_the_corpus_runner() {
    let cases = corpus_cases(&corpus_dir(), &data_dir());
    assert!(
        cases.len() >= 71,
        "{} corpus cases; run scripts/fetch_corpus.py",
        cases.len()
    );
    assert!(cases.iter().all(|c| c.reference_path.is_some()));
    assert!(
        cases.iter().all(|c| c.mod_path.is_file()),
        "a .mod file is missing"
    );
    let mut outcomes = Vec::new();
    for case in cases {
        let outcome = run_corpus_case(&case, &builtins, &fake_compile);
        outcomes.push((case, outcome));
    }
    let table = corpus_table(&outcomes);
    eprintln!("{table}");
    let by_file = |suffix: &str| {
        outcomes
            .iter()
            .find(|(c, _)| c.mod_file.ends_with(suffix))
            .unwrap_or_else(|| panic!("no case for {suffix}"))
    };
    for f in [
        "passive.mod",
        "stim.mod",
        "netstim.mod",
        "expsyn.mod",
        "exp2syn.mod",
        "hh.mod",
    ] {
        let (case, outcome) = by_file(&format!("share/modfile/{f}"));
        match outcome {
            CorpusOutcome::Matches(c) => {
                eprintln!("{c}");
                assert!(!c.traces.is_empty());
            }
            other => panic!("{}: {other:#?}", case.mod_file),
        }
    }
    // A file NEURON could not simulate still reports the compiler's verdict.
    let (_, o) = by_file("examples/stochkv/mechanisms/StochKv.mod");
    assert!(matches!(o, CorpusOutcome::Rejected(_)), "{o:?}");
    // The table has one row per case and escapes nothing it should not.
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| `")).count(),
        outcomes.len()
    );
    assert!(table.contains("| matches NEURON |"));
    assert!(table.contains("error: not compiled in this test |"));
    assert!(!table.contains("second line"));
}

#[test]
fn corpus_file_without_simulation_is_no_reference_when_it_compiles() {
    let cases = corpus_cases(&corpus_dir(), &data_dir());
    let stochkv = cases
        .iter()
        .find(|c| c.mod_file.ends_with("StochKv.mod"))
        .unwrap();
    let accept = |_: &Path| Ok(vec![common::pas_spec()]);
    match run_corpus_case(stochkv, &builtins, &accept) {
        CorpusOutcome::NoReference(why) => assert!(why.contains("POINTER"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn corpus_mismatch_is_reported_as_differs() {
    let cases = corpus_cases(&corpus_dir(), &data_dir());
    let passive = cases
        .iter()
        .find(|c| c.mod_file.ends_with("share/modfile/passive.mod"))
        .unwrap();
    // An IClamp whose `del` and `dur` columns are swapped: the reference's
    // del 5, dur 100 becomes a pulse from 100 to 105 ms.
    let wrong_builtins = || {
        let mut v = kernels();
        let stim = v.iter_mut().find(|s| s.name == "IClamp").unwrap();
        stim.fields[0].name = "dur".into();
        stim.fields[1].name = "del".into();
        Ok(v)
    };
    match run_corpus_case(passive, &wrong_builtins, &fake_compile) {
        CorpusOutcome::Differs(c) => {
            let failures = c.failures();
            assert!(failures.contains(&"soma(0.5).v".to_string()), "{c}");
            assert!(c.max_v_diff().unwrap() > 1.0, "{c}");
            let table = corpus_table(&[(passive.clone(), CorpusOutcome::Differs(c))]);
            assert!(table.contains("| differs |"), "{table}");
        }
        other => panic!("{other:?}"),
    }
}
