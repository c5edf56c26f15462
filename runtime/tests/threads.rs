//! Threads (cell groups): a network of hh cells connected by NetCons onto
//! ExpSyn synapses gives bit-identical voltage traces and spike times with
//! 1, 2 and 3 threads, whatever the partition; misuse is an error; a
//! mechanism that is not thread safe forces one group.
mod common;

use runtime::{Error, NetSource, Probe, Sampling};

struct Run {
    traces: Vec<Vec<u64>>,
    spikes: Vec<Vec<u64>>,
    groups: usize,
}

/// 8 cells of 3 sections (soma, dend, axon) of different sizes; cell i
/// excites cell i+1 (and cell 2 also excites cell 5, 6 also excites 3, onto
/// the same synapse with the same delay, so events tie). Delays range from
/// 0 (less than dt) to 2.7 ms.
fn network(nthread: usize, extra: Option<&str>) -> Run {
    network_so(nthread, extra, 0)
}

fn network_so(nthread: usize, extra: Option<&str>, secondorder: i32) -> Run {
    let mut m = common::model_with_builtins();
    m.register(common::expsyn_spec()).unwrap();
    if let Some(name) = extra {
        // pas under another name, without MECH_THREADSAFE.
        let mut spec = common::pas_spec().flags(0);
        spec.name = name.to_string();
        m.register(spec).unwrap();
    }
    let ncell = 8;
    let mut somas = Vec::new();
    let mut syns = Vec::new();
    for c in 0..ncell {
        let soma = m.create_section(&format!("soma{c}")).unwrap();
        m.set_length(soma, 20.0).unwrap();
        m.set_diam(soma, 20.0).unwrap();
        let dend = m.create_section(&format!("dend{c}")).unwrap();
        m.set_nseg(dend, 3 + 4 * (c % 3)).unwrap();
        m.set_length(dend, 200.0).unwrap();
        m.set_diam(dend, 2.0).unwrap();
        m.connect(dend, 0.0, soma, 1.0).unwrap();
        let axon = m.create_section(&format!("axon{c}")).unwrap();
        m.set_nseg(axon, 5 + c).unwrap();
        m.set_length(axon, 300.0).unwrap();
        m.set_diam(axon, 1.0).unwrap();
        m.connect(axon, 0.0, soma, 0.0).unwrap();
        for s in [soma, axon] {
            m.insert(s, "hh").unwrap();
        }
        m.insert(dend, "pas").unwrap();
        m.insert(dend, "hh").unwrap();
        m.set_range(dend, 0.5, "gnabar_hh", 0.06).unwrap();
        let syn = m.point_process("ExpSyn", dend, 0.3).unwrap();
        m.set_point(syn, "tau", 2.0).unwrap();
        // A second synapse at the same node, to keep same-node sums ordered.
        let syn2 = m.point_process("ExpSyn", dend, 0.3).unwrap();
        m.set_point(syn2, "tau", 5.0).unwrap();
        somas.push(soma);
        syns.push((syn, syn2));
    }
    let stim = m.point_process("IClamp", somas[0], 0.5).unwrap();
    m.set_point(stim, "del", 1.0).unwrap();
    m.set_point(stim, "dur", 2.0).unwrap();
    m.set_point(stim, "amp", 0.6).unwrap();
    let mut ncs = Vec::new();
    for c in 0..ncell {
        let delay = [1.0, 0.0, 2.7, 0.01, 1.5, 0.5, 2.0, 1.25][c];
        let target = syns[(c + 1) % ncell].0;
        ncs.push(
            m.netcon(
                NetSource::Voltage(somas[c], 0.5),
                Some(target),
                -20.0,
                delay,
                &[0.05],
            )
            .unwrap(),
        );
    }
    for (src, dst) in [(2, 5), (6, 3)] {
        ncs.push(
            m.netcon(
                NetSource::Voltage(somas[src], 0.5),
                Some(syns[dst].1),
                -20.0,
                1.0,
                &[0.02],
            )
            .unwrap(),
        );
    }
    if let Some(name) = extra {
        let dend = m.sections()[1];
        m.insert(dend, name).unwrap();
    }
    let mut recs = Vec::new();
    for &s in &somas {
        recs.push(m.record(Probe::V(s, 0.5), Sampling::EveryStep).unwrap());
    }
    for &(s, _) in &syns {
        recs.push(
            m.record(Probe::Point(s, "g".into()), Sampling::EveryStep)
                .unwrap(),
        );
    }
    m.set_nthread(nthread).unwrap();
    m.set_secondorder(secondorder).unwrap();
    m.run(-65.0, 40.0).unwrap();
    let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    Run {
        traces: recs.iter().map(|&r| bits(m.recorded(r).unwrap())).collect(),
        spikes: ncs.iter().map(|&n| bits(m.spikes(n).unwrap())).collect(),
        groups: m.ngroups().unwrap(),
    }
}

#[test]
fn one_two_and_three_threads_are_bit_identical() {
    let one = network(1, None);
    assert_eq!(one.groups, 1);
    // The network is active: the spike travels around the ring.
    let spiking = one.spikes.iter().filter(|s| !s.is_empty()).count();
    assert!(spiking >= 6, "only {spiking} cells spiked");
    for n in [2, 3] {
        let run = network(n, None);
        assert_eq!(run.groups, n, "{n} threads give {n} groups");
        assert_eq!(run.spikes, one.spikes, "spike times with {n} threads");
        for (k, (a, b)) in one.traces.iter().zip(&run.traces).enumerate() {
            assert_eq!(a, b, "trace {k} with {n} threads");
        }
    }
}

#[test]
fn crank_nicolson_with_ion_correction_is_bit_identical_too() {
    let one = network_so(1, None, 2);
    let two = network_so(2, None, 2);
    assert_eq!(two.groups, 2);
    assert!(one.spikes.iter().filter(|s| !s.is_empty()).count() >= 6);
    assert_eq!(one.spikes, two.spikes);
    assert_eq!(one.traces, two.traces);
}

#[test]
fn set_nthread_validates_and_clamps_to_cells() {
    let mut m = common::model_with_builtins();
    assert!(matches!(m.set_nthread(0), Err(Error::BadValue { .. })));
    assert_eq!(m.nthread(), 1);
    let a = m.create_section("a").unwrap();
    m.insert(a, "hh").unwrap();
    m.set_nthread(4).unwrap();
    assert_eq!(m.nthread(), 4);
    // One cell makes one group.
    assert_eq!(m.ngroups().unwrap(), 1);
    let b = m.create_section("b").unwrap();
    m.insert(b, "hh").unwrap();
    assert_eq!(m.ngroups().unwrap(), 2);
    m.run(-65.0, 1.0).unwrap();
    let p = m.phase_times();
    assert_eq!(p.steps, 40);
    assert!(p.currents > std::time::Duration::ZERO);
}

#[test]
fn a_mechanism_that_is_not_thread_safe_forces_one_group() {
    let safe = network(3, None);
    let unsafe_run = network(3, Some("pas_nts"));
    assert_eq!(safe.groups, 3);
    assert_eq!(unsafe_run.groups, 1);
}

fn noop(_p: &runtime::plugin::PackView) -> runtime::plugin::KernelResult {
    Ok(())
}
runtime::kernel!(fn noop_k = noop;);

#[test]
fn a_pointer_into_another_group_is_an_error() {
    use runtime::{abi, MechKind, MechanismSpec, PointerTarget};
    let mut m = common::model_with_builtins();
    let mut spec = MechanismSpec::new("vlink", MechKind::PointProcess)
        .flags(abi::MECH_THREADSAFE)
        .kernels(abi::NrnKernels {
            cur: Some(noop_k),
            ..Default::default()
        });
    spec.pointers.push("vpre".into());
    m.register(spec).unwrap();
    let a = m.create_section("a").unwrap();
    let b = m.create_section("b").unwrap();
    let link = m.point_process("vlink", a, 0.5).unwrap();
    m.set_pointer(link, "vpre", PointerTarget::V(a, 0.5))
        .unwrap();
    m.set_nthread(2).unwrap();
    m.run(-65.0, 0.1).unwrap();
    // Across cells (groups) it is refused with two threads...
    m.set_pointer(link, "vpre", PointerTarget::V(b, 0.5))
        .unwrap();
    let e = m.run(-65.0, 0.1).unwrap_err();
    assert!(
        matches!(&e, Error::Structure { reason } if reason.contains("POINTER vpre")),
        "{e}"
    );
    // ...and fine with one.
    m.set_nthread(1).unwrap();
    m.run(-65.0, 0.1).unwrap();
}
