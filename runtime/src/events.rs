//! Discrete events with NEURON's fixed-step semantics (`netcvode.cpp`,
//! `cvodestb.cpp`): NetCons from a voltage threshold or a point process
//! (`net_event`), self-events (`net_send`, `net_move`), delivery through the
//! NET_RECEIVE kernels, and spike recording.
//!
//! Threshold detection (NEURON's `ConditionEvent::check` with teps = 1e-10):
//! at the start of each step, before events are delivered, a source whose
//! `v − threshold > 0` while its flag is down raises the flag and spikes at
//! t + 1e-10; the flag drops when the value is ≤ 0 again. Events with time
//! ≤ t + dt/2 are delivered at the start of a step, events with time ≤ t at the
//! end of a step and during `finitialize`; during delivery t is the event time.

use std::collections::BTreeMap;

use crate::model::{Model, PointId, SectionId};
use crate::plugin::{HostRequest, KernelKind};
use crate::{Error, Result};

/// A generational handle to a NetCon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetConId {
    index: u32,
    generation: u32,
}

/// Where a NetCon's spikes come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NetSource {
    /// The membrane potential at a location crossing the threshold.
    Voltage(SectionId, f64),
    /// A point process or artificial cell calling `net_event`.
    Point(PointId),
    /// No source (events only from `NetCon.event`-like use; never spikes).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SourceKey {
    Voltage(SectionId, f64),
    Point(u32),
}

#[derive(Debug)]
struct PreSyn {
    key: SourceKey,
    threshold: f64,
    flag: bool,
    /// Node of a voltage source, resolved after each compile.
    node: Option<usize>,
    spikes: Vec<f64>,
    alive: bool,
}

#[derive(Debug)]
struct NetCon {
    generation: u32,
    alive: bool,
    presyn: Option<usize>,
    target: Option<PointId>,
    delay: f64,
    weights: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    NetCon(u32),
    SelfEvent {
        point: u32,
        flag: f64,
        weights_of: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    time: TimeKey,
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct TimeKey(f64);
impl Eq for TimeKey {}
impl PartialOrd for TimeKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TimeKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// The event machinery's state, owned by the model.
#[derive(Debug, Default)]
pub(crate) struct EventState {
    presyns: Vec<PreSyn>,
    netcons: Vec<NetCon>,
    queue: BTreeMap<Key, Event>,
    seq: u64,
    /// The NetCon whose event is being delivered (for net_send weights).
    current: Option<u32>,
}

impl EventState {
    pub(crate) fn clear_queue(&mut self) {
        self.queue.clear();
        for p in &mut self.presyns {
            p.flag = false;
            p.spikes.clear();
        }
    }

    pub(crate) fn invalidate(&mut self) {
        for p in &mut self.presyns {
            p.node = None;
        }
    }

    /// A point process was deleted: NetCons from or to it die.
    pub(crate) fn forget_point(&mut self, slot: u32) {
        for (i, p) in self.presyns.iter_mut().enumerate() {
            if p.key == SourceKey::Point(slot) {
                p.alive = false;
                for nc in &mut self.netcons {
                    if nc.presyn == Some(i) {
                        nc.alive = false;
                    }
                }
            }
        }
        for nc in &mut self.netcons {
            if nc.target.is_some_and(|t| t_slot(t) == slot) {
                nc.alive = false;
            }
        }
        self.queue
            .retain(|_, e| !matches!(e, Event::SelfEvent { point, .. } if *point == slot));
    }

    fn push(&mut self, time: f64, e: Event) {
        self.seq += 1;
        self.queue.insert(
            Key {
                time: TimeKey(time),
                seq: self.seq,
            },
            e,
        );
    }
}

fn t_slot(p: PointId) -> u32 {
    // PointId's fields are private to model; compare through Debug-free means.
    crate::model::point_slot(p)
}

impl Model {
    /// Creates a NetCon from `source` to the point process `target` (or
    /// none) with a threshold [mV] (for voltage sources), a delay [ms] and a
    /// weight vector (its length should be the NET_RECEIVE argument count).
    /// NetCons on the same voltage location share one threshold detector,
    /// as in NEURON, and the last threshold given wins.
    pub fn netcon(
        &mut self,
        source: NetSource,
        target: Option<PointId>,
        threshold: f64,
        delay: f64,
        weights: &[f64],
    ) -> Result<NetConId> {
        if !(delay >= 0.0 && delay.is_finite()) {
            return Err(Error::BadValue {
                name: "NetCon delay".into(),
                value: delay,
                reason: "must be non-negative",
            });
        }
        if !threshold.is_finite() {
            return Err(Error::BadValue {
                name: "NetCon threshold".into(),
                value: threshold,
                reason: "must be finite",
            });
        }
        if let Some(t) = target {
            let (m, _) = self.point_mech_inst(t)?;
            if self.mech_kernels(m).net_receive.is_none() {
                return Err(Error::UnknownMechanism {
                    name: format!(
                        "{} (no NET_RECEIVE; cannot be a NetCon target)",
                        self.mech_name(m)
                    ),
                });
            }
        }
        let key = match source {
            NetSource::Voltage(s, x) => {
                self.section_node(s, x)?; // validates the handle and x
                Some(SourceKey::Voltage(s, x))
            }
            NetSource::Point(p) => {
                self.point_mech_inst(p)?;
                Some(SourceKey::Point(t_slot(p)))
            }
            NetSource::None => None,
        };
        let presyn = key.map(|k| {
            let ev = &mut self.events;
            match ev.presyns.iter().position(|p| p.alive && p.key == k) {
                Some(i) => {
                    ev.presyns[i].threshold = threshold;
                    i
                }
                None => {
                    ev.presyns.push(PreSyn {
                        key: k,
                        threshold,
                        flag: false,
                        node: None,
                        spikes: Vec::new(),
                        alive: true,
                    });
                    ev.presyns.len() - 1
                }
            }
        });
        let ev = &mut self.events;
        ev.netcons.push(NetCon {
            generation: 0,
            alive: true,
            presyn,
            target,
            delay,
            weights: weights.to_vec(),
        });
        Ok(NetConId {
            index: (ev.netcons.len() - 1) as u32,
            generation: 0,
        })
    }

    fn nc(&self, id: NetConId) -> Result<&NetCon> {
        match self.events.netcons.get(id.index as usize) {
            Some(nc) if nc.alive && nc.generation == id.generation => {
                if nc.target.is_some_and(|t| !self.point_alive(t)) {
                    return Err(Error::StaleHandle {
                        what: "NetCon (its target was deleted)",
                    });
                }
                if let Some(p) = nc.presyn {
                    if let SourceKey::Voltage(s, _) = self.events.presyns[p].key {
                        if !self.section_alive(s) {
                            return Err(Error::StaleHandle {
                                what: "NetCon (its source section was deleted)",
                            });
                        }
                    }
                }
                Ok(nc)
            }
            _ => Err(Error::StaleHandle { what: "NetCon" }),
        }
    }

    /// Sets weight `k` of a NetCon.
    pub fn set_weight(&mut self, id: NetConId, k: usize, w: f64) -> Result<()> {
        let len = self.nc(id)?.weights.len();
        if k >= len {
            return Err(Error::BadValue {
                name: "weight index".into(),
                value: k as f64,
                reason: "beyond the weight vector",
            });
        }
        self.events.netcons[id.index as usize].weights[k] = w;
        Ok(())
    }

    /// The threshold [mV] of a NetCon's source (shared by every NetCon on
    /// the same source, as in NEURON); `None` for a NetCon without a
    /// source.
    pub fn netcon_threshold(&self, id: NetConId) -> Result<Option<f64>> {
        Ok(self
            .nc(id)?
            .presyn
            .map(|p| self.events.presyns[p].threshold))
    }

    /// Sets the threshold of a NetCon's source (NEURON's
    /// `NetCon.threshold = …`, which every NetCon on that source sees).
    pub fn set_netcon_threshold(&mut self, id: NetConId, threshold: f64) -> Result<()> {
        if !threshold.is_finite() {
            return Err(Error::BadValue {
                name: "NetCon threshold".into(),
                value: threshold,
                reason: "must be finite",
            });
        }
        if let Some(p) = self.nc(id)?.presyn {
            self.events.presyns[p].threshold = threshold;
        }
        Ok(())
    }

    /// The delay [ms] of a NetCon.
    pub fn netcon_delay(&self, id: NetConId) -> Result<f64> {
        Ok(self.nc(id)?.delay)
    }

    /// Sets the delay [ms] of a NetCon. Spikes already in flight keep the
    /// delivery time they were given, as in NEURON.
    pub fn set_netcon_delay(&mut self, id: NetConId, delay: f64) -> Result<()> {
        if !(delay >= 0.0 && delay.is_finite()) {
            return Err(Error::BadValue {
                name: "NetCon delay".into(),
                value: delay,
                reason: "must be non-negative",
            });
        }
        self.nc(id)?;
        self.events.netcons[id.index as usize].delay = delay;
        Ok(())
    }

    /// The weight vector of a NetCon.
    pub fn weights(&self, id: NetConId) -> Result<&[f64]> {
        Ok(&self.nc(id)?.weights)
    }

    /// The spike times [ms] detected at a NetCon's source since the last
    /// `finitialize` (NEURON's `NetCon.record`).
    pub fn spikes(&self, id: NetConId) -> Result<&[f64]> {
        let nc = self.nc(id)?;
        Ok(nc
            .presyn
            .map(|p| self.events.presyns[p].spikes.as_slice())
            .unwrap_or(&[]))
    }

    /// Deletes a NetCon; pending events from it are dropped.
    pub fn delete_netcon(&mut self, id: NetConId) -> Result<()> {
        self.nc(id)?;
        let nc = &mut self.events.netcons[id.index as usize];
        nc.alive = false;
        nc.generation += 1;
        self.events
            .queue
            .retain(|_, e| *e != Event::NetCon(id.index));
        Ok(())
    }
}

/// Acts on a request a kernel made through the host API.
/// `t` is the time the requesting kernel ran at (a `net_send` delay counts from it).
pub(crate) fn handle_request(m: &mut Model, r: HostRequest, t: f64) -> Result<()> {
    match r {
        HostRequest::NetSend {
            mech,
            instance,
            delay,
            flag,
        } => {
            let Some(point) = m.point_of_instance(mech as usize, instance) else {
                return Err(Error::Structure {
                    reason: "net_send from a density mechanism".into(),
                });
            };
            if !(delay >= 0.0) {
                return Err(Error::Kernel {
                    mechanism: m.mech_name(mech as usize).into(),
                    phase: "net_send",
                    instance,
                    status: crate::abi::STATUS_MECHANISM_ERROR,
                });
            }
            let weights_of = m.events.current;
            m.events.push(
                t + delay,
                Event::SelfEvent {
                    point,
                    flag,
                    weights_of,
                },
            );
        }
        HostRequest::NetMove {
            mech,
            instance,
            t: tm,
        } => {
            let Some(point) = m.point_of_instance(mech as usize, instance) else {
                return Ok(());
            };
            let key = m.events.queue.iter().find(|(_, e)| matches!(e, Event::SelfEvent { point: p, flag, .. } if *p == point && *flag == 1.0)).map(|(k, _)| *k);
            if let Some(k) = key {
                let e = m.events.queue.remove(&k).expect("present");
                m.events.push(tm, e);
            }
        }
        HostRequest::NetEvent {
            mech,
            instance,
            t: te,
        } => {
            let Some(point) = m.point_of_instance(mech as usize, instance) else {
                return Ok(());
            };
            if let Some(p) = m
                .events
                .presyns
                .iter()
                .position(|p| p.alive && p.key == SourceKey::Point(point))
            {
                send(m, p, te);
            }
        }
    }
    Ok(())
}

fn send(m: &mut Model, presyn: usize, t: f64) {
    m.events.presyns[presyn].spikes.push(t);
    let targets: Vec<(u32, f64)> = m
        .events
        .netcons
        .iter()
        .enumerate()
        .filter(|(_, nc)| nc.alive && nc.presyn == Some(presyn) && nc.target.is_some())
        .map(|(i, nc)| (i as u32, nc.delay))
        .collect();
    for (i, d) in targets {
        m.events.push(t + d, Event::NetCon(i));
    }
}

/// NET_RECEIVE INITIAL blocks, once per NetCon in creation order (NEURON's
/// `init_events`); without one, weights after the first are zeroed.
pub(crate) fn init_net_events(m: &mut Model) -> Result<()> {
    for i in 0..m.events.netcons.len() {
        let nc = &m.events.netcons[i];
        if !nc.alive {
            continue;
        }
        let Some(target) = nc.target else { continue };
        if !m.point_alive(target) {
            continue;
        }
        let (mech, inst) = m.point_mech_inst(target)?;
        match m.mech_kernels(mech).net_receive_init {
            Some(f) => {
                let mut w = std::mem::take(&mut m.events.netcons[i].weights);
                m.events.current = Some(i as u32);
                let r = m.call_kernel(
                    mech,
                    KernelKind::NetReceive {
                        f,
                        instance: inst,
                        flag: 0.0,
                    },
                    "net_receive_init",
                    &mut w,
                );
                m.events.current = None;
                m.events.netcons[i].weights = w;
                r?;
            }
            None => {
                for w in m.events.netcons[i].weights.iter_mut().skip(1) {
                    *w = 0.0;
                }
            }
        }
    }
    Ok(())
}

/// The start of a fixed step: threshold detection, then delivery of events
/// up to t + dt/2.
pub(crate) fn deliver_net_events(m: &mut Model) -> Result<()> {
    let t = m.t();
    for p in 0..m.events.presyns.len() {
        if !m.events.presyns[p].alive {
            continue;
        }
        let SourceKey::Voltage(s, x) = m.events.presyns[p].key else {
            continue;
        };
        if !m.section_alive(s) {
            m.events.presyns[p].alive = false;
            continue;
        }
        let node = match m.events.presyns[p].node {
            Some(n) => n,
            None => {
                let n = m.section_node(s, x)?;
                m.events.presyns[p].node = Some(n);
                n
            }
        };
        let value = m.v_at_node(node) - m.events.presyns[p].threshold;
        if value > 0.0 {
            if !m.events.presyns[p].flag {
                m.events.presyns[p].flag = true;
                send(m, p, t + 1e-10);
            }
        } else {
            m.events.presyns[p].flag = false;
        }
    }
    deliver_until(m, t + 0.5 * m.dt())
}

/// Delivers every queued event with time ≤ `til`, in time order (ties in
/// the order they were queued). During each delivery t is the event time.
pub(crate) fn deliver_until(m: &mut Model, til: f64) -> Result<()> {
    let tsav = m.t();
    let result = (|| {
        loop {
            let Some((&k, _)) = m.events.queue.iter().next() else {
                break;
            };
            if k.time.0 > til {
                break;
            }
            let e = m.events.queue.remove(&k).expect("present");
            deliver(m, k.time.0, e)?;
        }
        Ok(())
    })();
    m.set_t_internal(tsav);
    result
}

fn deliver(m: &mut Model, te: f64, e: Event) -> Result<()> {
    let (target, flag, nc_index) = match e {
        Event::NetCon(i) => {
            let nc = &m.events.netcons[i as usize];
            if !nc.alive {
                return Ok(());
            }
            match nc.target {
                Some(t) => (t, 0.0, Some(i)),
                None => return Ok(()),
            }
        }
        Event::SelfEvent {
            point,
            flag,
            weights_of,
        } => (crate::model::point_id_of_slot(m, point), flag, weights_of),
    };
    if !m.point_alive(target) {
        return Ok(());
    }
    let (mech, inst) = m.point_mech_inst(target)?;
    let Some(f) = m.mech_kernels(mech).net_receive else {
        return Ok(());
    };
    m.set_t_internal(te);
    let mut w = match nc_index {
        Some(i) => std::mem::take(&mut m.events.netcons[i as usize].weights),
        None => Vec::new(),
    };
    let prev = m.events.current;
    m.events.current = nc_index;
    let r = m.call_kernel(
        mech,
        KernelKind::NetReceive {
            f,
            instance: inst,
            flag,
        },
        "net_receive",
        &mut w,
    );
    m.events.current = prev;
    if let Some(i) = nc_index {
        m.events.netcons[i as usize].weights = w;
    }
    r
}
