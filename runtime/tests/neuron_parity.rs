//! Parity with NEURON 9.0.2: geometry (area, ri, volume, diam, L) to 1e-12
//! relative, the topology printout, and hh traces (single compartment and a
//! 101-segment axon, secondorder 0 and 2, usetable_hh = 0): identical spike
//! times and max |ΔV| ≤ 1e-6 mV.
//!
//! The reference values come from NEURON itself: they were made by
//! `scripts/neuron_reference/runtime_parity.py` under NEURON 9.0.2 and are
//! committed in `tests/data/neuron/core/runtime_parity.json`, so this test
//! needs no NEURON installation.
mod common;

use runtime::{Model, NetSource, Probe, Sampling, SectionId};
use serde_json::Value;

fn neuron_reference() -> &'static Value {
    static REFERENCE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    REFERENCE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/neuron/core/runtime_parity.json"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading the committed NEURON reference {path}: {e}"));
        serde_json::from_str(&text).expect("the NEURON reference is valid JSON")
    })
}

fn geometry_model() -> (Model, Vec<(&'static str, SectionId)>) {
    let mut m = common::model_with_builtins();
    let soma = m.create_section("soma").unwrap();
    m.set_length(soma, 20.0).unwrap();
    m.set_diam(soma, 20.0).unwrap();
    let axon = m.create_section("axon").unwrap();
    m.set_nseg(axon, 5).unwrap();
    m.set_length(axon, 200.0).unwrap();
    m.set_diam(axon, 1.0).unwrap();
    m.set_ra(axon, 100.0).unwrap();
    m.connect(axon, 0.0, soma, 1.0).unwrap();
    let dend = m.create_section("dend").unwrap();
    m.set_nseg(dend, 3).unwrap();
    for (x, y, z, d) in [
        (0., 0., 0., 3.),
        (10., 0., 0., 2.),
        (10., 17., 3., 1.5),
        (30., 20., 3., 1.),
    ] {
        m.pt3dadd(dend, x, y, z, d).unwrap();
    }
    m.connect(dend, 0.0, soma, 0.0).unwrap();
    let d2 = m.create_section("d2").unwrap();
    m.set_nseg(d2, 2).unwrap();
    m.connect(d2, 1.0, soma, 0.5).unwrap();
    (
        m,
        vec![("soma", soma), ("axon", axon), ("dend", dend), ("d2", d2)],
    )
}

#[test]
fn geometry_matches_neuron() {
    let reference = neuron_reference();
    let (mut m, secs) = geometry_model();
    let mut checked = 0;
    for row in reference["geo"].as_array().unwrap() {
        let r = row.as_array().unwrap();
        let name = r[0].as_str().unwrap();
        let sec = secs.iter().find(|s| s.0 == name).unwrap().1;
        let x = r[1].as_f64().unwrap();
        let close = |ours: f64, theirs: f64, what: &str| {
            let rel = if theirs == 0.0 {
                ours.abs()
            } else {
                ((ours - theirs) / theirs).abs()
            };
            assert!(
                rel <= 1e-12,
                "{name}({x}) {what}: ours {ours}, NEURON {theirs}"
            );
        };
        if x < 0.0 {
            close(m.length(sec).unwrap(), r[2].as_f64().unwrap(), "L");
            continue;
        }
        close(m.area(sec, x).unwrap(), r[2].as_f64().unwrap(), "area");
        close(m.ri(sec, x).unwrap(), r[3].as_f64().unwrap(), "ri");
        if x > 0.0 && x < 1.0 {
            close(m.volume(sec, x).unwrap(), r[4].as_f64().unwrap(), "volume");
            close(m.diam(sec, x).unwrap(), r[5].as_f64().unwrap(), "diam");
        }
        checked += 1;
    }
    assert!(checked == 19, "only {checked} rows checked");
}

#[test]
fn topology_matches_neuron_printout() {
    // NEURON 9.0.2's h.topology() output for geometry_model().
    let (m, _) = geometry_model();
    let expected = "\n|-|       soma(0-1)\n   `----|       axon(0-1)\n  `-|       d2(1-0)\n `--|       dend(0-1)\n\n";
    assert_eq!(m.topology().unwrap(), expected);
}

#[test]
fn hh_traces_match_neuron() {
    let reference = neuron_reference();
    for case in ["single", "axon"] {
        for so in [0, 2] {
            let mut m = common::model_with_builtins();
            let s = m
                .create_section(if case == "single" { "soma" } else { "axon" })
                .unwrap();
            let (stim_x, rec_x, dur, amp) = if case == "single" {
                m.set_length(s, 18.8).unwrap();
                m.set_diam(s, 18.8).unwrap();
                (0.5, 0.5, 5.0, 0.3)
            } else {
                m.set_nseg(s, 101).unwrap();
                m.set_length(s, 1000.0).unwrap();
                m.set_diam(s, 2.0).unwrap();
                m.set_ra(s, 100.0).unwrap();
                (0.0, 0.9, 1.0, 0.5)
            };
            m.insert(s, "hh").unwrap();
            let stim = m.point_process("IClamp", s, stim_x).unwrap();
            m.set_point(stim, "del", 1.0).unwrap();
            m.set_point(stim, "dur", dur).unwrap();
            m.set_point(stim, "amp", amp).unwrap();
            m.set_secondorder(so).unwrap();
            let v = m.record(Probe::V(s, rec_x), Sampling::EveryStep).unwrap();
            let nc = m
                .netcon(NetSource::Voltage(s, rec_x), None, 10.0, 1.0, &[0.0])
                .unwrap();
            m.finitialize(-65.0).unwrap();
            m.continuerun(20.0).unwrap();
            let r = &reference["hh"][format!("{case}_{so}")];
            let rv: Vec<f64> = r["v"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let rs: Vec<f64> = r["spikes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let ov = m.recorded(v).unwrap();
            assert_eq!(ov.len(), rv.len(), "{case} secondorder {so}: sample count");
            let maxd = rv
                .iter()
                .zip(ov)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            eprintln!(
                "{case} secondorder={so}: max|dV| = {maxd:e} mV, spikes {:?} (NEURON {rs:?})",
                m.spikes(nc).unwrap()
            );
            assert!(maxd <= 1e-6, "{case} secondorder {so}: max |dV| {maxd}");
            assert_eq!(
                m.spikes(nc).unwrap(),
                rs.as_slice(),
                "{case} secondorder {so}: spike times"
            );
            assert!(!rs.is_empty(), "the reference run must spike");
        }
    }
}
