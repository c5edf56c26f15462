//! The public API: misuse gives errors (never panics), handles are
//! generational, range variables survive nseg changes, kernel failures are
//! reported, ions follow NEURON's style rules, events and recording work.
mod common;

use runtime::plugin::{KernelFailure, KernelResult, PackView};
use runtime::{abi, Error, MechKind, MechanismSpec, NetSource, Probe, Sampling};

#[test]
fn misuse_is_an_error() {
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    assert!(matches!(m.set_nseg(s, 0), Err(Error::BadValue { .. })));
    assert!(matches!(m.area(s, -0.1), Err(Error::BadLocation { .. })));
    assert!(matches!(
        m.area(s, f64::NAN),
        Err(Error::BadLocation { .. })
    ));
    assert!(matches!(
        m.insert(s, "nope"),
        Err(Error::UnknownMechanism { .. })
    ));
    assert!(matches!(
        m.insert(s, "IClamp"),
        Err(Error::UnknownMechanism { .. })
    ));
    assert!(matches!(
        m.point_process("hh", s, 0.5),
        Err(Error::UnknownMechanism { .. })
    ));
    assert!(matches!(
        m.set_range(s, 0.5, "gnabar_hh", 1.0),
        Err(Error::UnknownField { .. })
    ));
    m.insert(s, "hh").unwrap();
    m.set_range(s, 0.5, "gnabar_hh", 0.2).unwrap();
    assert_eq!(m.get_range(s, 0.5, "gnabar_hh").unwrap(), 0.2);
    assert!(matches!(
        m.set_range(s, 0.5, "gnabar_pas", 1.0),
        Err(Error::UnknownField { .. })
    ));
    assert!(matches!(
        m.set_range(s, 0.5, "diam", -1.0),
        Err(Error::BadValue { .. })
    ));
    assert!(m.set_dt(0.0).is_err());
    assert!(m.set_secondorder(3).is_err());
    let t = m.create_section("t").unwrap();
    m.connect(t, 0.0, s, 1.0).unwrap();
    assert!(
        matches!(m.connect(s, 0.0, t, 0.5), Err(Error::Structure { .. })),
        "loops are rejected"
    );
    assert!(
        m.register(common::hh_spec()).is_err(),
        "double registration"
    );
}

#[test]
fn deleted_section_handles_are_stale() {
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    let child = m.create_section("c").unwrap();
    m.connect(child, 0.0, s, 1.0).unwrap();
    let stim = m.point_process("IClamp", s, 0.5).unwrap();
    let nc = m
        .netcon(NetSource::Voltage(s, 0.5), None, 10.0, 1.0, &[1.0])
        .unwrap();
    m.delete_section(s).unwrap();
    assert!(matches!(m.area(s, 0.5), Err(Error::StaleHandle { .. })));
    assert!(matches!(
        m.set_point(stim, "amp", 1.0),
        Err(Error::StaleHandle { .. })
    ));
    assert!(matches!(m.spikes(nc), Err(Error::StaleHandle { .. })));
    // A new section reusing the slot does not revive the old handle.
    let s2 = m.create_section("s2").unwrap();
    assert_ne!(s, s2);
    assert!(m.name(s).is_err());
    // The child became a root section and the model still runs.
    assert_eq!(m.parent(child).unwrap(), None);
    m.run(-65.0, 0.1).unwrap();
}

#[test]
fn nseg_change_keeps_values_like_neuron() {
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    m.insert(s, "pas").unwrap();
    m.set_nseg(s, 2).unwrap();
    m.set_range(s, 0.25, "g_pas", 1.0).unwrap();
    m.set_range(s, 0.75, "g_pas", 2.0).unwrap();
    m.set_nseg(s, 4).unwrap();
    let g: Vec<f64> = [0.125, 0.375, 0.625, 0.875]
        .iter()
        .map(|&x| m.get_range(s, x, "g_pas").unwrap())
        .collect();
    assert_eq!(g, vec![1.0, 1.0, 2.0, 2.0]);
    let stim = m.point_process("IClamp", s, 0.3).unwrap();
    assert_eq!(m.point_location(stim).unwrap().unwrap().1, 0.375);
}

/// The step reads a compiled copy of the capacitance: setting `cm` between
/// steps must reach it (the decay then follows the new time constant).
#[test]
fn capacitance_set_between_steps_takes_effect() {
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    m.insert(s, "pas").unwrap();
    let v = m.record(Probe::V(s, 0.5), Sampling::EveryStep).unwrap();
    m.run(-50.0, 0.5).unwrap();
    m.set_cm(s, 2.0).unwrap();
    m.continuerun(1.0).unwrap();
    let trace = m.recorded(v).unwrap();
    assert_eq!(trace.len(), 41);
    let mut expect = -50.0f64;
    for (n, &got) in trace.iter().enumerate() {
        assert!((got - expect).abs() < 1e-9, "step {n}: {got} vs {expect}");
        let cm = if n < 20 { 1.0 } else { 2.0 };
        let k = 0.025 * 0.001 * 1000.0 / cm;
        expect = (expect + k * -70.0) / (1.0 + k);
    }
}

#[test]
fn passive_decay_matches_backward_euler_analytic() {
    // One compartment, pas only: backward Euler gives
    // v_{n+1} = (v_n + dt·g/cm·1000·e)/(1 + dt·g/cm·1000) exactly.
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    m.insert(s, "pas").unwrap();
    let v = m.record(Probe::V(s, 0.5), Sampling::EveryStep).unwrap();
    m.run(-50.0, 1.0).unwrap();
    let k = 0.025 * 0.001 * 1000.0;
    let mut expect = -50.0f64;
    for (n, &got) in m.recorded(v).unwrap().iter().enumerate() {
        assert!((got - expect).abs() < 1e-9, "step {n}: {got} vs {expect}");
        expect = (expect + k * -70.0) / (1.0 + k);
    }
}

fn failing_state(p: &PackView) -> KernelResult {
    if p.t() > 0.05 {
        return Err(KernelFailure {
            instance: (p.count() - 1) as u32,
            status: abi::STATUS_NEWTON_FAILED,
        });
    }
    Ok(())
}
runtime::kernel!(fn failing_state_k = failing_state;);

fn panicking_cur(_p: &PackView) -> KernelResult {
    panic!("kernel bug");
}
runtime::kernel!(fn panicking_cur_k = panicking_cur;);

#[test]
fn kernel_failures_become_errors() {
    let mut m = common::model_with_builtins();
    m.register(
        MechanismSpec::new("bad", MechKind::Density).kernels(abi::NrnKernels {
            state: Some(failing_state_k),
            ..Default::default()
        }),
    )
    .unwrap();
    m.register(
        MechanismSpec::new("boom", MechKind::Density).kernels(abi::NrnKernels {
            cur: Some(panicking_cur_k),
            ..Default::default()
        }),
    )
    .unwrap();
    let s = m.create_section("s").unwrap();
    m.set_nseg(s, 3).unwrap();
    m.insert(s, "bad").unwrap();
    m.finitialize(-65.0).unwrap();
    m.fadvance().unwrap();
    m.fadvance().unwrap();
    let err = m.fadvance().unwrap_err();
    assert_eq!(
        err,
        Error::Kernel {
            mechanism: "bad".into(),
            phase: "state",
            instance: 2,
            status: abi::STATUS_NEWTON_FAILED
        }
    );
    assert!(err.to_string().contains("Newton"));
    m.uninsert(s, "bad").unwrap();
    m.insert(s, "boom").unwrap();
    let err = m.fadvance().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Kernel {
                phase: "cur",
                status: abi::STATUS_MECHANISM_ERROR,
                ..
            }
        ),
        "{err}"
    );
}

// A mechanism that reads nai/nao: ena must come from Nernst at finitialize.
fn noop(_p: &PackView) -> KernelResult {
    Ok(())
}
runtime::kernel!(fn noop_k = noop;);

#[test]
fn ion_style_nernst_at_init() {
    let mut m = common::model_with_builtins();
    m.register(
        MechanismSpec::new("nareader", MechKind::Density)
            .ion("na", abi::ION_READ_CI | abi::ION_READ_CO, None)
            .kernels(abi::NrnKernels {
                init: Some(noop_k),
                ..Default::default()
            }),
    )
    .unwrap();
    let s = m.create_section("s").unwrap();
    m.insert(s, "hh").unwrap();
    m.set_celsius(6.3).unwrap();
    m.finitialize(-65.0).unwrap();
    assert_eq!(
        m.get_range(s, 0.5, "ena").unwrap(),
        50.0,
        "hh alone: ena stays a parameter"
    );
    m.insert(s, "nareader").unwrap();
    m.finitialize(-65.0).unwrap();
    let expect = runtime::ion::nernst(10.0, 140.0, 1.0, 6.3);
    assert_eq!(m.get_range(s, 0.5, "ena").unwrap(), expect);
    assert_eq!(m.get_range(s, 0.5, "ek").unwrap(), -77.0);
}

// An artificial cell that fires every `interval` ms with net_send/net_event.
fn ticker_init(p: &PackView) -> KernelResult {
    for i in 0..p.count() {
        p.net_send(i, p.field(0)[i].get(), 1.0);
    }
    Ok(())
}
fn ticker_receive(p: &PackView, i: usize, _w: &[std::cell::Cell<f64>], flag: f64) -> KernelResult {
    if flag == 1.0 {
        p.net_event(i, p.t());
        p.net_send(i, p.field(0)[i].get(), 1.0);
    }
    Ok(())
}
runtime::kernel!(fn ticker_init_k = ticker_init;);
runtime::net_receive_kernel!(fn ticker_receive_k = ticker_receive;);

// A counter target: adds its weight to `total`.
fn counter_receive(p: &PackView, i: usize, w: &[std::cell::Cell<f64>], _flag: f64) -> KernelResult {
    let c = &p.field(0)[i];
    c.set(c.get() + w[0].get());
    p.field(1)[i].set(p.t());
    Ok(())
}
runtime::net_receive_kernel!(fn counter_receive_k = counter_receive;);

#[test]
fn events_net_send_net_event_and_netcon_delay() {
    let mut m = common::model_with_builtins();
    m.register(
        MechanismSpec::new("Ticker", MechKind::ArtificialCell)
            .field("interval", abi::FIELD_PARAMETER, 1.0)
            .flags(abi::MECH_HAS_NET_EVENT)
            .kernels(abi::NrnKernels {
                init: Some(ticker_init_k),
                net_receive: Some(ticker_receive_k),
                ..Default::default()
            }),
    )
    .unwrap();
    m.register(
        MechanismSpec::new("Counter", MechKind::ArtificialCell)
            .field("total", abi::FIELD_ASSIGNED, 0.0)
            .field("last", abi::FIELD_ASSIGNED, -1.0)
            .kernels(abi::NrnKernels {
                net_receive: Some(counter_receive_k),
                ..Default::default()
            }),
    )
    .unwrap();
    let tick = m.artificial_cell("Ticker").unwrap();
    let count = m.artificial_cell("Counter").unwrap();
    let nc = m
        .netcon(NetSource::Point(tick), Some(count), 10.0, 0.5, &[2.0])
        .unwrap();
    m.run(-65.0, 5.0).unwrap();
    assert_eq!(m.spikes(nc).unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0]);
    // Delivered at 1.5, 2.5, 3.5, 4.5 (5.5 is beyond tstop).
    assert_eq!(m.get_point(count, "total").unwrap(), 8.0);
    assert_eq!(m.get_point(count, "last").unwrap(), 4.5);
    m.delete_point(count).unwrap();
    assert!(
        m.weights(nc).is_err(),
        "a NetCon to a deleted target is stale"
    );
}

#[test]
fn unrecord_and_deleted_targets_stop_recordings_and_keep_data() {
    let mut m = common::model_with_builtins();
    let a = m.create_section("a").unwrap();
    let b = m.create_section("b").unwrap();
    let ra = m.record(Probe::V(a, 0.5), Sampling::EveryStep).unwrap();
    let rb = m.record(Probe::V(b, 0.5), Sampling::EveryStep).unwrap();
    m.run(-65.0, 0.1).unwrap();
    assert_eq!(m.recorded(ra).unwrap().len(), 5);
    m.unrecord(ra).unwrap();
    m.delete_section(b).unwrap();
    // The run goes on; both keep what they had.
    m.run(-60.0, 0.2).unwrap();
    assert_eq!(m.recorded(ra).unwrap().len(), 5);
    assert_eq!(m.recorded(rb).unwrap().len(), 5);
    assert_eq!(m.recorded(ra).unwrap()[0], -65.0);
}

#[test]
fn netcon_threshold_and_delay_can_be_read_and_changed() {
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    let nc = m
        .netcon(runtime::NetSource::Voltage(s, 0.5), None, 10.0, 1.0, &[0.0])
        .unwrap();
    assert_eq!(m.netcon_threshold(nc).unwrap(), Some(10.0));
    m.set_netcon_threshold(nc, -20.0).unwrap();
    m.set_netcon_delay(nc, 2.5).unwrap();
    assert_eq!(m.netcon_threshold(nc).unwrap(), Some(-20.0));
    assert_eq!(m.netcon_delay(nc).unwrap(), 2.5);
    assert!(m.set_netcon_delay(nc, -1.0).is_err());
    assert!(m.set_netcon_threshold(nc, f64::NAN).is_err());
    m.set_t(3.0).unwrap();
    assert_eq!(m.t(), 3.0);
    assert!(m.set_t(f64::INFINITY).is_err());
}

#[test]
fn interval_recordings_sample_like_neurons_record_events() {
    // NEURON 9.0.2: `Vector.record(&t, Dt)` on a section with hh,
    // finitialize(-65), round(tstop/dt) fadvance calls at dt 0.025:
    // (tstop, Dt, number of samples, last sample).
    let neuron = [
        (1.0, 0.1, 10, 0.8999999999999999),
        (3.0, 0.1, 31, 3.0000000000000013),
        (3.0, 0.25, 13, 3.0),
        (1.0, 0.01, 100, 0.9900000000000007),
        (2.0, 0.03, 67, 1.9800000000000015),
    ];
    for (tstop, dt_rec, count, last) in neuron {
        let mut m = common::model_with_builtins();
        let s = m.create_section("s").unwrap();
        m.insert(s, "hh").unwrap();
        let r = m.record(Probe::T, Sampling::Interval(dt_rec)).unwrap();
        m.finitialize(-65.0).unwrap();
        for _ in 0..(tstop / 0.025f64).round() as usize {
            m.fadvance().unwrap();
        }
        let ts = m.recorded(r).unwrap();
        assert_eq!(ts.len(), count, "tstop {tstop}, Dt {dt_rec}");
        assert_eq!(*ts.last().unwrap(), last, "tstop {tstop}, Dt {dt_rec}");
    }
}

#[test]
fn recording_interval_and_csv() {
    let mut m = common::model_with_builtins();
    let s = m.create_section("s").unwrap();
    m.insert(s, "hh").unwrap();
    let t = m.record(Probe::T, Sampling::Interval(0.1)).unwrap();
    let m_gate = m
        .record(Probe::Range(s, 0.5, "m_hh".into()), Sampling::EveryStep)
        .unwrap();
    let ina = m
        .record(Probe::Range(s, 0.5, "ina".into()), Sampling::EveryStep)
        .unwrap();
    m.run(-65.0, 1.0).unwrap();
    let ts = m.recorded(t).unwrap();
    // NEURON 9.0.2 (Vector.record(&t, 0.1), run to 1 ms) gives 10 samples,
    // 0 … 0.9: the sample due at t = 1 would be taken by the next step.
    assert_eq!(ts.len(), 10);
    for (k, &x) in ts.iter().enumerate() {
        assert!((x - 0.1 * k as f64).abs() < 1e-9);
    }
    assert_eq!(m.recorded(m_gate).unwrap().len(), 41);
    assert!(m.recorded(ina).unwrap()[0] < 0.0, "ina at rest is inward");
    let mut csv = Vec::new();
    m.write_csv(&mut csv, &[("t", t), ("m", m_gate)]).unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with("t,m\n"));
    assert_eq!(text.lines().count(), 42);
}

#[test]
fn ions_exist_only_where_a_mechanism_uses_them() {
    // NEURON creates an ion on a segment only when a mechanism there uses it.
    let mut m = common::model_with_builtins();
    m.register(
        MechanismSpec::new("capt", MechKind::PointProcess)
            .field("x", abi::FIELD_PARAMETER, 0.0)
            .ion("ca", abi::ION_READ_CI, None)
            .flags(abi::MECH_THREADSAFE),
    )
    .unwrap();
    let s = m.create_section("s").unwrap();
    m.set_nseg(s, 5).unwrap();
    let p = m.point_process("capt", s, 0.3).unwrap();
    assert_eq!(m.get_range(s, 0.3, "cai").unwrap(), 5.0e-5);
    for x in [0.1, 0.5, 0.7, 0.9] {
        assert!(
            matches!(m.get_range(s, x, "cai"), Err(Error::UnknownField { .. })),
            "no ca at x = {x}"
        );
    }
    // The point process moves to the segment containing 0.3 of 10: ca follows.
    m.set_nseg(s, 10).unwrap();
    assert_eq!(m.point_location(p).unwrap().unwrap().1, 0.35);
    assert!(m.get_range(s, 0.35, "cai").is_ok());
    assert!(m.get_range(s, 0.95, "cai").is_err());
    // A density mechanism brings its ions to every segment.
    m.insert(s, "hh").unwrap();
    for x in [0.05, 0.35, 0.95] {
        assert_eq!(m.get_range(s, x, "ena").unwrap(), 50.0);
    }
    assert!(m.get_range(s, 0.95, "cai").is_err());
    m.run(-65.0, 0.5).unwrap();
}
