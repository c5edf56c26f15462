//! Cell groups: NEURON's threads (`ParallelContext.nthread`). Cells are split
//! into contiguous runs of about equal node counts; each group has its own
//! run of nodes (its roots first, then its sections breadth first), its own
//! run of every mechanism's and ion's instances, and is advanced through
//! `setup_tree_matrix`, the Hines solve, the voltage update and the state
//! phases on a rayon thread of its own.
//!
//! # Why the results do not depend on the thread count
//!
//! - Every node's arithmetic involves only nodes of its own cell, and the
//!   relative order of a cell's nodes, and of the instances at one node, is
//!   the same in every layout: instances are always stored in cell order
//!   (stable, so instances at one node keep their creation order), whatever
//!   the thread count.
//! - Events are not split by group: thresholds are checked, events delivered
//!   and NET_RECEIVE kernels run from one global queue, sequentially, before
//!   and after the parallel part of the step. Host requests (`net_send`,
//!   `net_event`, `net_move`) made by kernels during the parallel part are
//!   collected per group and replayed afterwards in the order one thread
//!   would have made them (phase, then mechanism, then instance), each with
//!   the time its kernel ran at, so queue tie-breaking is identical too.
//!
//! NEURON itself keeps one event queue per thread and hands NetCon events
//! whose target lives in another thread to that thread's inter-thread buffer
//! (`NetCvodeThreadData::interthread_send`), which is moved into the target
//! queue at its next `enqueue`. Our single queue needs no such buffer and no
//! minimum delay between groups: a delay of 0 behaves as with one thread.
//!
//! # Restrictions
//!
//! - If any instance exists of a mechanism that has a parallel-phase kernel
//!   (BEFORE BREAKPOINT, BREAKPOINT, SOLVE, AFTER SOLVE, BEFORE STEP) and is
//!   not flagged `MECH_THREADSAFE`, the model runs as one group (NEURON
//!   refuses to run such mechanisms outside thread 0; one group is the
//!   simplest rule that is always correct).
//! - GLOBALs written by a kernel during the parallel part are per group:
//!   group 0 writes the model's copy, the other groups write private copies
//!   refreshed from it at the start of each step (NEURON's thread data).
//! - The host random generator cannot be used from a parallel phase with
//!   more than one group (its sequence would depend on the thread count);
//!   doing so is an error naming the mechanism. Event-time uses (NetStim's
//!   NET_RECEIVE) are sequential and unaffected.

use std::ops::Range;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::{Model, Phase};
use crate::abi;
use crate::ion;
use crate::mechanism::Owner;
use crate::plugin::{self, HostCtx, HostRequest, IonArgs, KernelArgs, KernelKind};
use crate::{Error, Result};

/// One mechanism's part of a group.
#[derive(Debug, Default, Clone)]
pub(super) struct MechPart {
    /// The first instance (global index) and the number of instances.
    pub start: usize,
    pub count: usize,
    /// Instance → node, local to the group.
    pub node_index: Vec<u32>,
    /// Per ion use: instance → ion instance, local to the group's ion run.
    pub ion_index: Vec<Vec<u32>>,
}

/// One ion's part of a group.
#[derive(Debug, Default, Clone)]
pub(super) struct IonPart {
    pub start: usize,
    pub count: usize,
    /// Ion instance → node, local to the group.
    pub node_index: Vec<u32>,
}

/// The layout of one cell group (NEURON's `NrnThread`).
#[derive(Debug, Default, Clone)]
pub(super) struct GroupLayout {
    /// The group's nodes (global indices); its roots come first.
    pub nodes: Range<usize>,
    pub ncell: usize,
    /// Node → parent node, local.
    pub parent: Vec<u32>,
    /// The non-root nodes in the order triangularisation visits them
    /// (bksub visits them in reverse): see [`solve_order`].
    pub solve_order: Vec<u32>,
    /// Capacitive nodes: (local node, index into the model's `cap_cm`).
    pub cap: Vec<(u32, u32)>,
    pub mechs: Vec<MechPart>,
    pub ions: Vec<IonPart>,
}

/// Time spent in each part of the fixed step since the model was created or
/// [`Model::reset_phase_times`] was called. With several groups, each
/// parallel part counts the slowest group of each step (the critical path).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    /// BEFORE BREAKPOINT, ion current reset and reversal potentials, and
    /// every mechanism's BREAKPOINT currents.
    pub currents: Duration,
    /// Zeroing rhs and d, capacitance and axial terms of the tree matrix.
    pub matrix_setup: Duration,
    /// The Hines solve and the voltage update.
    pub solve: Duration,
    /// SOLVE (states), AFTER SOLVE and BEFORE STEP.
    pub states: Duration,
    /// Threshold detection, event delivery (NET_RECEIVE) and host requests.
    pub events: Duration,
    /// The number of `fadvance` steps counted.
    pub steps: u64,
}

/// How many cells' elimination chains [`solve_order`] interleaves.
const SOLVE_BATCH: usize = 8;

/// The order in which the Hines triangularisation visits the non-root nodes
/// `ncell..parent.len()` of a group (back substitution uses the reverse).
///
/// NEURON visits them from last to first; along one cell that is a chain of
/// dependent divisions, so a single cell runs at the latency of the chain.
/// Here the per-cell subsequences of that order are kept as they are and
/// only interleaved, round robin over batches of [`SOLVE_BATCH`] consecutive
/// cells, so the processor overlaps independent chains. Every node still sees
/// its children in NEURON's order and no two cells share a node, so the
/// arithmetic, and every result, is bit for bit that of NEURON's order.
/// Nodes whose parent does not precede them (never the case for layouts the
/// model builds) make it fall back to NEURON's order.
pub(super) fn solve_order(parent: &[u32], ncell: usize) -> Vec<u32> {
    let n = parent.len();
    let plain = || (ncell..n).rev().map(|i| i as u32).collect::<Vec<u32>>();
    let mut cell_of: Vec<u32> = (0..n as u32).collect();
    for i in ncell..n {
        let p = parent[i] as usize;
        if p >= i {
            return plain();
        }
        cell_of[i] = cell_of[p];
    }
    let mut per_cell: Vec<Vec<u32>> = vec![Vec::new(); ncell];
    for i in (ncell..n).rev() {
        per_cell[cell_of[i] as usize].push(i as u32);
    }
    let mut order = Vec::with_capacity(n - ncell);
    for batch in per_cell.chunks(SOLVE_BATCH) {
        let longest = batch.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..longest {
            order.extend(batch.iter().filter_map(|c| c.get(k)));
        }
    }
    order
}

/// Splits `cells` (weights per cell) into at most `n` contiguous runs of about
/// equal total weight; never returns an empty run.
pub(super) fn partition(weights: &[usize], n: usize) -> Vec<Range<usize>> {
    let ncell = weights.len();
    let n = n.clamp(1, ncell.max(1));
    if ncell == 0 {
        return Vec::new();
    }
    let total: usize = weights.iter().sum();
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    let mut acc = 0;
    for g in 0..n {
        if g == n - 1 {
            out.push(start..ncell);
            break;
        }
        let target = total * (g + 1) / n;
        let mut end = start;
        // Leave at least one cell for each remaining group.
        while end < ncell - (n - 1 - g) && (end == start || acc + weights[end] <= target) {
            acc += weights[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Splits `s` at the given ascending start offsets (the first is the start
/// of the first part); the last part runs to the end of `s`.
fn split_mut<'a>(mut s: &'a mut [f64], starts: &[usize]) -> Parts<&'a mut [f64]> {
    let mut out = Parts::new();
    let mut pos = starts.first().copied().unwrap_or(0);
    let skip = pos.min(s.len());
    s = &mut std::mem::take(&mut s)[skip..];
    for k in 0..starts.len() {
        if k + 1 == starts.len() {
            out.push(std::mem::take(&mut s));
        } else {
            let (head, tail) = std::mem::take(&mut s).split_at_mut(starts[k + 1] - pos);
            out.push(head);
            s = tail;
            pos = starts[k + 1];
        }
    }
    out
}

/// One item per cell group, without a heap allocation for the usual one or
/// two groups (the step builds these every time).
type Parts<T> = SmallVec<[T; 4]>;

fn split_ref<'a>(s: &'a [f64], ranges: &[Range<usize>]) -> Parts<&'a [f64]> {
    ranges.iter().map(|r| &s[r.clone()]).collect()
}

/// What a group runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    /// `finitialize`'s tail: the tree matrix at t and BEFORE STEP.
    Init,
    /// One step from t + dt/2: matrix, solve, update, states.
    Step,
}

/// Read-only data shared by all groups during one parallel part.
struct Shared<'a> {
    groups: &'a [GroupLayout],
    /// Where each mechanism's columns start in [`GroupJob::cols`].
    col_start: Vec<usize>,
    kernels: Vec<abi::NrnKernels>,
    names: Vec<&'a str>,
    ion_type: Vec<&'a [usize]>,
    pointers: &'a [plugin::PointerTable],
    ion_style: Vec<&'a [u32]>,
    ion_valence: Vec<f64>,
    cap_cm: &'a [f64],
    a: &'a [f64],
    b: &'a [f64],
    t: f64,
    dt: f64,
    celsius: f64,
    secondorder: i32,
}

/// One group's mutable view for one parallel part.
struct GroupJob<'a> {
    g: usize,
    v: &'a mut [f64],
    rhs: &'a mut [f64],
    d: &'a mut [f64],
    area: &'a [f64],
    diam: &'a [f64],
    /// Every mechanism's columns, mechanism after mechanism (mechanism `m`
    /// has `cols[Shared::col_start[m]..Shared::col_start[m + 1]]`).
    cols: Vec<&'a mut [f64]>,
    globals: Vec<&'a mut [f64]>,
    /// [ion][erev, ci, co, cur, dcurdv]
    ions: Vec<[&'a mut [f64]; 5]>,
    host: &'a mut HostCtx,
    /// (phase number, mechanism, time, request with a global instance).
    requests: Vec<(u32, usize, f64, HostRequest)>,
    /// currents, matrix setup, solve, states.
    times: [Duration; 4],
    result: Result<()>,
    random_by: Option<usize>,
}

/// Whether a mechanism has a kernel that runs in the parallel part of a step.
fn has_parallel_kernel(k: &abi::NrnKernels) -> bool {
    k.cur.is_some()
        || k.state.is_some()
        || k.before_breakpoint.is_some()
        || k.after_solve.is_some()
        || k.before_step.is_some()
}

fn phase_no(p: Phase) -> u32 {
    match p {
        Phase::BeforeBreakpoint => 0,
        Phase::Cur => 1,
        Phase::State => 2,
        Phase::AfterSolve => 3,
        _ => 4,
    }
}

fn call(sh: &Shared, job: &mut GroupJob, m: usize, phase: Phase, t: f64) -> Result<()> {
    let Some(k) = phase.kernel(&sh.kernels[m]) else {
        return Ok(());
    };
    let part = &sh.groups[job.g].mechs[m];
    if part.count == 0 {
        return Ok(());
    }
    let mut slots: smallvec::SmallVec<[Option<&mut [&mut [f64]; 5]>; 8]> =
        job.ions.iter_mut().map(Some).collect();
    let mut ions = smallvec::SmallVec::new();
    for (u, &it) in sh.ion_type[m].iter().enumerate() {
        let cols = slots[it].take().expect("distinct ions");
        let [e, ci, co, cur, dcur] = cols;
        ions.push(IonArgs {
            index: &part.ion_index[u],
            cols: [&mut **e, &mut **ci, &mut **co, &mut **cur, &mut **dcur],
            count: sh.groups[job.g].ions[it].count,
            valence: sh.ion_valence[it],
        });
    }
    let args = KernelArgs {
        mech_id: m as u32,
        count: part.count,
        t,
        dt: sh.dt,
        celsius: sh.celsius,
        secondorder: sh.secondorder,
        node_index: &part.node_index,
        v: &mut *job.v,
        rhs: &mut *job.rhs,
        d: &mut *job.d,
        area: job.area,
        diam: job.diam,
        fields: job.cols[sh.col_start[m]..sh.col_start[m + 1]]
            .iter_mut()
            .map(|c| &mut **c)
            .collect(),
        globals: &mut *job.globals[m],
        ions,
        pointers: sh.pointers[m]
            .0
            .iter()
            .map(|c| &c[part.start..part.start + part.count])
            .collect(),
        host: &mut *job.host,
    };
    let (status, inst) = plugin::invoke(args, KernelKind::Phase(k), &mut [])?;
    if job.host.random_in_parallel && job.random_by.is_none() {
        job.random_by = Some(m);
    }
    let no = phase_no(phase);
    for r in job.host.requests.drain(..) {
        let r = match r {
            HostRequest::NetSend {
                mech,
                instance,
                delay,
                flag,
            } => HostRequest::NetSend {
                mech,
                instance: instance + part.start as u32,
                delay,
                flag,
            },
            HostRequest::NetEvent { mech, instance, t } => HostRequest::NetEvent {
                mech,
                instance: instance + part.start as u32,
                t,
            },
            HostRequest::NetMove { mech, instance, t } => HostRequest::NetMove {
                mech,
                instance: instance + part.start as u32,
                t,
            },
        };
        job.requests.push((no, m, t, r));
    }
    if status != abi::STATUS_OK {
        return Err(Error::Kernel {
            mechanism: sh.names[m].to_string(),
            phase: phase.name(),
            instance: inst + part.start as u32,
            status,
        });
    }
    Ok(())
}

fn phase_all(sh: &Shared, job: &mut GroupJob, phase: Phase, t: f64) -> Result<()> {
    for m in 0..sh.kernels.len() {
        call(sh, job, m, phase, t)?;
    }
    Ok(())
}

/// One group's share of the step (NEURON's `nrn_fixed_step_thread` without
/// the event parts).
fn run_group(sh: &Shared, job: &mut GroupJob, what: Job) -> Result<()> {
    let lay = &sh.groups[job.g];
    let t_mid = sh.t;
    let t0 = Instant::now();
    // setup_tree_matrix.
    job.rhs.fill(0.0);
    job.d.fill(0.0);
    let t1 = Instant::now();
    phase_all(sh, job, Phase::BeforeBreakpoint, t_mid)?;
    for (it, part) in lay.ions.iter().enumerate() {
        let [e, ci, co, cur, dcur] = &mut job.ions[it];
        let style = &sh.ion_style[it][part.start..part.start + part.count];
        let z = sh.ion_valence[it];
        dcur[..part.count].fill(0.0);
        cur[..part.count].fill(0.0);
        for (i, st) in style.iter().enumerate() {
            if st & ion::STYLE_EADVANCE != 0 {
                e[i] = ion::nernst(ci[i], co[i], z, sh.celsius);
            }
        }
    }
    phase_all(sh, job, Phase::Cur, t_mid)?;
    let t2 = Instant::now();
    let cj = if sh.secondorder != 0 {
        2.0 / sh.dt
    } else {
        1.0 / sh.dt
    };
    let cfac = 0.001 * cj;
    for &(nd, k) in &lay.cap {
        job.d[nd as usize] += cfac * sh.cap_cm[k as usize];
    }
    let (a, b) = (&sh.a[lay.nodes.clone()], &sh.b[lay.nodes.clone()]);
    let n = lay.nodes.len();
    let (v, rhs, d) = (&mut *job.v, &mut *job.rhs, &mut *job.d);
    // NEURON's two passes (rhs, then d) in one: each array still sees its
    // updates in NEURON's order.
    for i in lay.ncell..n {
        let pi = lay.parent[i] as usize;
        let dv = v[pi] - v[i];
        rhs[i] -= b[i] * dv;
        rhs[pi] += a[i] * dv;
        d[i] -= b[i];
        d[pi] -= a[i];
    }
    let t3 = Instant::now();
    job.times[0] += t2 - t1;
    job.times[1] += (t1 - t0) + (t3 - t2);
    if what == Job::Init {
        return phase_all(sh, job, Phase::BeforeStep, t_mid);
    }
    // triang and bksub.
    for &i in &lay.solve_order {
        let i = i as usize;
        let p = a[i] / d[i];
        let pi = lay.parent[i] as usize;
        d[pi] -= p * b[i];
        rhs[pi] -= p * rhs[i];
    }
    for i in 0..lay.ncell {
        rhs[i] /= d[i];
    }
    for &i in lay.solve_order.iter().rev() {
        let i = i as usize;
        let pi = lay.parent[i] as usize;
        rhs[i] -= b[i] * rhs[pi];
        rhs[i] /= d[i];
    }
    if sh.secondorder == 2 {
        for (it, part) in lay.ions.iter().enumerate() {
            let [_, _, _, cur, dcur] = &mut job.ions[it];
            for i in 0..part.count {
                cur[i] += dcur[i] * rhs[part.node_index[i] as usize];
            }
        }
    }
    if sh.secondorder != 0 {
        for (v, r) in v.iter_mut().zip(rhs.iter()) {
            *v += 2.0 * r;
        }
    } else {
        for (v, r) in v.iter_mut().zip(rhs.iter()) {
            *v += r;
        }
    }
    let t4 = Instant::now();
    let t_end = t_mid + 0.5 * sh.dt;
    phase_all(sh, job, Phase::State, t_end)?;
    phase_all(sh, job, Phase::AfterSolve, t_end)?;
    phase_all(sh, job, Phase::BeforeStep, t_end)?;
    job.times[2] += t4 - t3;
    job.times[3] += t4.elapsed();
    Ok(())
}

impl Model {
    /// The number of cell groups the next compile makes for `ncell` cells.
    pub(super) fn group_count(&self, ncell: usize) -> usize {
        let unsafe_in_use = self.mechs.iter().any(|m| {
            m.count > 0
                && m.spec.flags & abi::MECH_THREADSAFE == 0
                && has_parallel_kernel(&m.spec.kernels)
        });
        if unsafe_in_use {
            1
        } else {
            self.nthread.min(ncell).max(1)
        }
    }

    /// Reorders every mechanism's and ion's instances by cell (artificial
    /// cells first), keeping the relative order within a cell, and points
    /// sections and point processes at the new indices.
    pub(super) fn sort_instances_by_cell(
        &mut self,
        cell_of: &std::collections::HashMap<u32, usize>,
    ) {
        let key = |model: &Model, o: &Owner| -> i64 {
            let sec = match *o {
                Owner::Segment { sec, .. } => Some(sec),
                Owner::Point { slot } => model.points[slot as usize]
                    .pp
                    .as_ref()
                    .and_then(|p| p.loc.map(|(s, _)| s)),
            };
            sec.map_or(-1, |s| cell_of.get(&s).map_or(-1, |&c| c as i64))
        };
        for m in 0..self.mechs.len() {
            let keys: Vec<i64> = self.mechs[m].owners.iter().map(|o| key(self, o)).collect();
            if keys.windows(2).all(|w| w[0] <= w[1]) {
                continue;
            }
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by_key(|&i| keys[i]);
            self.mechs[m].permute(&order);
            for i in 0..self.mechs[m].count {
                let o = self.mechs[m].owners[i];
                self.retarget_mech_owner(m, o, i as u32);
            }
        }
        for ion in 0..self.ions.len() {
            let keys: Vec<i64> = self.ions[ion].owners.iter().map(|o| key(self, o)).collect();
            if keys.windows(2).all(|w| w[0] <= w[1]) {
                continue;
            }
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by_key(|&i| keys[i]);
            self.ions[ion].permute(&order);
            for i in 0..self.ions[ion].count {
                if let Owner::Segment { sec, seg } = self.ions[ion].owners[i] {
                    if let Some(s) = self.slots[sec as usize].sec.as_mut() {
                        if let Some((_, v)) = s.ions.iter_mut().find(|(ii, _)| *ii == ion) {
                            v[seg as usize] = i as u32;
                        }
                    }
                }
            }
        }
    }

    /// Builds each group's layout from the compiled (global) indices.
    pub(super) fn build_groups(&mut self, group_nodes: &[(Range<usize>, usize)]) -> Result<()> {
        let group_of = |node: u32| {
            group_nodes
                .iter()
                .position(|(r, _)| r.contains(&(node as usize)))
                .unwrap_or(0)
        };
        let internal = |what: &str| Error::Structure {
            reason: format!("internal: cell group layout ({what})"),
        };
        let mut groups: Vec<GroupLayout> = group_nodes
            .iter()
            .map(|(r, ncell)| GroupLayout {
                nodes: r.clone(),
                ncell: *ncell,
                parent: self.comp.parent[r.clone()]
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| if i < *ncell { 0 } else { p - r.start as u32 })
                    .collect(),
                ..GroupLayout::default()
            })
            .collect();
        for grp in &mut groups {
            grp.solve_order = solve_order(&grp.parent, grp.ncell);
        }
        for (k, &nd) in self.comp.cap_nodes.iter().enumerate() {
            let g = group_of(nd);
            let local = nd - groups[g].nodes.start as u32;
            groups[g].cap.push((local, k as u32));
        }
        // Ions: contiguous runs per group.
        for ion in &self.ions {
            let mut next = 0;
            for (g, grp) in groups.iter_mut().enumerate() {
                let start = next;
                while next < ion.count && group_of(ion.node_index[next]) == g {
                    next += 1;
                }
                let base = grp.nodes.start as u32;
                grp.ions.push(IonPart {
                    start,
                    count: next - start,
                    node_index: ion.node_index[start..next]
                        .iter()
                        .map(|&n| n - base)
                        .collect(),
                });
            }
            if next != ion.count {
                return Err(internal("ion instances not in group order"));
            }
        }
        for store in &self.mechs {
            let mut next = 0;
            for (g, grp) in groups.iter_mut().enumerate() {
                let start = next;
                while next < store.count && group_of(store.node_index[next]) == g {
                    next += 1;
                }
                let base = grp.nodes.start as u32;
                let ion_index = store
                    .ion_index
                    .iter()
                    .zip(&store.ion_type)
                    .map(|(idx, &it)| {
                        let off = grp.ions[it].start as u32;
                        idx[start..next].iter().map(|&i| i - off).collect()
                    })
                    .collect();
                grp.mechs.push(MechPart {
                    start,
                    count: next - start,
                    node_index: store.node_index[start..next]
                        .iter()
                        .map(|&n| n - base)
                        .collect(),
                    ion_index,
                });
            }
            if next != store.count {
                return Err(internal("mechanism instances not in group order"));
            }
        }
        self.comp.groups = groups;
        self.group_hosts = (0..self.comp.groups.len())
            .map(|_| {
                let mut h = HostCtx::new();
                h.parallel = true;
                h
            })
            .collect();
        self.group_globals = vec![Vec::new(); self.comp.groups.len()];
        Ok(())
    }

    /// With several groups, a POINTER read or written during the parallel
    /// part must not reach into another group (another thread's data).
    pub(super) fn check_pointer_group(
        &self,
        m: usize,
        p: usize,
        i: usize,
        place: super::Place,
    ) -> Result<()> {
        let groups = &self.comp.groups;
        if groups.len() < 2 || !has_parallel_kernel(&self.mechs[m].spec.kernels) {
            return Ok(());
        }
        let in_run = |start: usize, count: usize, k: usize| (start..start + count).contains(&k);
        let own = groups
            .iter()
            .position(|g| in_run(g.mechs[m].start, g.mechs[m].count, i));
        let target = match place {
            super::Place::Node(n) => groups.iter().position(|g| g.nodes.contains(&n)),
            super::Place::Mech { mech, inst, .. } => groups
                .iter()
                .position(|g| in_run(g.mechs[mech].start, g.mechs[mech].count, inst)),
            super::Place::Ion { ion, inst, .. } => groups
                .iter()
                .position(|g| in_run(g.ions[ion].start, g.ions[ion].count, inst)),
            _ => None,
        };
        match (own, target) {
            (Some(a), Some(b)) if a != b => Err(Error::Structure {
                reason: format!(
                    "POINTER {} of {} (instance {i}) in cell group {a} points into cell group \
                     {b}: with several threads a POINTER must stay within its own cell \
                     (use set_nthread(1))",
                    self.mechs[m].spec.pointers[p], self.mechs[m].spec.name
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Runs `what` over every cell group (in parallel when there are
    /// several), then replays the host requests in one-thread order.
    pub(super) fn run_groups(&mut self, what: Job) -> Result<()> {
        let ng = self.comp.groups.len();
        if ng == 0 {
            return Ok(());
        }
        let Model {
            comp,
            mechs,
            ions,
            host,
            group_hosts,
            group_globals,
            pool,
            t,
            dt,
            celsius,
            secondorder,
            ..
        } = self;
        let ranges: Parts<Range<usize>> = comp.groups.iter().map(|g| g.nodes.clone()).collect();
        let starts: Parts<usize> = ranges.iter().map(|r| r.start).collect();
        let mut vs = split_mut(&mut comp.v, &starts).into_iter();
        let mut rhss = split_mut(&mut comp.rhs, &starts).into_iter();
        let mut ds = split_mut(&mut comp.d, &starts).into_iter();
        let areas = split_ref(&comp.area, &ranges);
        let diams = split_ref(&comp.diam, &ranges);
        let mut col_start = Vec::with_capacity(mechs.len() + 1);
        col_start.push(0);
        // Mechanisms without instances run no kernel: their columns are
        // left out.
        let used_cols = |store: &crate::mechanism::MechStore| {
            if store.count == 0 {
                0
            } else {
                store.cols.len()
            }
        };
        for store in mechs.iter() {
            col_start.push(col_start.last().copied().unwrap_or(0) + used_cols(store));
        }
        let n_cols = col_start.last().copied().unwrap_or(0);
        let mut cols: Vec<Vec<&mut [f64]>> = (0..ng).map(|_| Vec::with_capacity(n_cols)).collect();
        let mut globals: Vec<Vec<&mut [f64]>> = (0..ng).map(|_| Vec::new()).collect();
        // Private GLOBAL copies for groups 1.., refreshed from the model's.
        for buf in group_globals.iter_mut().skip(1) {
            buf.resize(mechs.len(), Vec::new());
            for (copy, store) in buf.iter_mut().zip(mechs.iter()) {
                copy.clear();
                copy.extend_from_slice(&store.globals);
            }
        }
        let mut other_globals: Vec<std::slice::IterMut<Vec<f64>>> = group_globals
            .iter_mut()
            .skip(1)
            .map(|buf| buf.iter_mut())
            .collect();
        let mut kernels = Vec::with_capacity(mechs.len());
        let mut names = Vec::with_capacity(mechs.len());
        let mut ion_types = Vec::with_capacity(mechs.len());
        for (m, store) in mechs.iter_mut().enumerate() {
            let n_used = used_cols(store);
            let crate::mechanism::MechStore {
                spec,
                cols: store_cols,
                globals: store_globals,
                ion_type,
                ..
            } = store;
            kernels.push(spec.kernels);
            names.push(spec.name.as_str());
            ion_types.push(ion_type.as_slice());
            let st: Parts<usize> = comp.groups.iter().map(|g| g.mechs[m].start).collect();
            for col in store_cols.iter_mut().take(n_used) {
                for (g, part) in split_mut(plugin::column_slice(col), &st)
                    .into_iter()
                    .enumerate()
                {
                    cols[g].push(part);
                }
            }
            globals[0].push(store_globals.as_mut_slice());
            for (g, it) in other_globals.iter_mut().enumerate() {
                globals[g + 1].push(it.next().expect("one copy per mechanism").as_mut_slice());
            }
        }
        let mut ion_cols: Vec<Vec<[&mut [f64]; 5]>> = (0..ng).map(|_| Vec::new()).collect();
        let mut ion_style = Vec::new();
        let mut ion_valence = Vec::new();
        for (it, store) in ions.iter_mut().enumerate() {
            let st: Parts<usize> = comp.groups.iter().map(|g| g.ions[it].start).collect();
            ion_valence.push(store.valence.unwrap_or(f64::NAN));
            let crate::ion::IonStore {
                erev,
                ci,
                co,
                cur,
                dcurdv,
                style,
                ..
            } = store;
            let mut parts = [erev, ci, co, cur, dcurdv]
                .map(|c| split_mut(plugin::column_slice(c), &st).into_iter());
            for cols in ion_cols.iter_mut() {
                let [e, ci, co, cur, dcur] = &mut parts;
                cols.push([e, ci, co, cur, dcur].map(|p| p.next().expect("one part per group")));
            }
            ion_style.push(style.as_slice());
        }
        let shared = Shared {
            groups: &comp.groups,
            col_start,
            kernels,
            names,
            ion_type: ion_types,
            pointers: &comp.pointers,
            ion_style,
            ion_valence,
            cap_cm: &comp.cap_cm,
            a: &comp.a,
            b: &comp.b,
            t: *t,
            dt: *dt,
            celsius: *celsius,
            secondorder: *secondorder,
        };
        let mut hosts: Vec<&mut HostCtx> = if ng == 1 {
            vec![host]
        } else {
            group_hosts.iter_mut().collect()
        };
        let mut jobs: Vec<GroupJob> = Vec::with_capacity(ng);
        let mut cols = cols.into_iter();
        let mut globals = globals.into_iter();
        let mut ion_cols = ion_cols.into_iter();
        for g in 0..ng {
            let h = hosts.remove(0);
            h.random_in_parallel = false;
            jobs.push(GroupJob {
                g,
                v: vs.next().expect("part"),
                rhs: rhss.next().expect("part"),
                d: ds.next().expect("part"),
                area: areas[g],
                diam: diams[g],
                cols: cols.next().expect("part"),
                globals: globals.next().expect("part"),
                ions: ion_cols.next().expect("part"),
                host: h,
                requests: Vec::new(),
                times: [Duration::ZERO; 4],
                result: Ok(()),
                random_by: None,
            });
        }
        let work = |job: &mut GroupJob| {
            job.result = run_group(&shared, job, what);
        };
        match pool {
            // As NEURON's main thread runs thread 0: the calling thread runs
            // group 0 while the pool's n − 1 workers run the others.
            Some(pool) if ng > 1 => {
                let (first, rest) = jobs.split_at_mut(1);
                pool.in_place_scope(|scope| {
                    for job in rest.iter_mut() {
                        scope.spawn(|_| work(job));
                    }
                    work(&mut first[0]);
                });
            }
            _ => jobs.iter_mut().for_each(work),
        }
        // Collect what the groups produced, in group order.
        let mut first_err = None;
        let mut requests = Vec::new();
        let mut times = [Duration::ZERO; 4];
        let mut random_by = None;
        for job in jobs {
            if first_err.is_none() {
                if let Err(e) = job.result {
                    first_err = Some(e);
                }
            }
            random_by = random_by.or(job.random_by);
            for (k, t) in job.times.iter().enumerate() {
                times[k] = times[k].max(*t);
            }
            requests.extend(job.requests);
        }
        drop(shared);
        drop((areas, diams, vs, rhss, ds));
        self.phase_times.currents += times[0];
        self.phase_times.matrix_setup += times[1];
        self.phase_times.solve += times[2];
        self.phase_times.states += times[3];
        if let Some(e) = first_err {
            return Err(e);
        }
        if let Some(m) = random_by {
            return Err(Error::Structure {
                reason: format!(
                    "mechanism {} used the random number generator during a parallel \
                     phase; its numbers would depend on the thread count (use set_nthread(1))",
                    self.mechs[m].spec.name
                ),
            });
        }
        if !requests.is_empty() {
            let t0 = Instant::now();
            requests.sort_by_key(|&(no, m, _, _)| (no, m));
            for (_, _, t, r) in requests {
                crate::events::handle_request(self, r, t)?;
            }
            self.phase_times.events += t0.elapsed();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interleaved solve order visits every non-root node once and keeps
    /// each cell's nodes in NEURON's (descending) order, so each node still
    /// sees its children in NEURON's order.
    #[test]
    fn solve_order_interleaves_cells_and_keeps_each_cells_order() {
        // 11 cells (roots 0..11) of different shapes, sections appended
        // cell after cell, some branched: parent[i] < i.
        let ncell = 11;
        let mut parent: Vec<u32> = (0..ncell as u32).map(|_| 0).collect();
        let mut cell_of: Vec<usize> = (0..ncell).collect();
        for c in 0..ncell {
            let first = parent.len() as u32;
            for k in 0..(3 + 2 * c) {
                let p = match k {
                    0 => c as u32,
                    _ if k % 4 == 3 => first,
                    _ => parent.len() as u32 - 1,
                };
                parent.push(p);
                cell_of.push(c);
            }
        }
        let order = solve_order(&parent, ncell);
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (ncell as u32..parent.len() as u32).collect::<Vec<_>>()
        );
        for c in 0..ncell {
            let mine: Vec<u32> = order
                .iter()
                .copied()
                .filter(|&i| cell_of[i as usize] == c)
                .collect();
            let neuron: Vec<u32> = (ncell..parent.len())
                .rev()
                .filter(|&i| cell_of[i] == c)
                .map(|i| i as u32)
                .collect();
            assert_eq!(mine, neuron, "cell {c}");
        }
        // Interleaved: the first SOLVE_BATCH entries come from different cells.
        let firsts: std::collections::HashSet<usize> = order[..SOLVE_BATCH]
            .iter()
            .map(|&i| cell_of[i as usize])
            .collect();
        assert_eq!(firsts.len(), SOLVE_BATCH);
        // A parent after its child falls back to NEURON's order.
        assert_eq!(solve_order(&[0, 2, 1], 1), vec![2, 1]);
    }

    #[test]
    fn partition_is_contiguous_balanced_and_never_empty() {
        assert_eq!(partition(&[5, 5, 5, 5], 2), vec![0..2, 2..4]);
        assert_eq!(partition(&[5, 5, 5], 3), vec![0..1, 1..2, 2..3]);
        assert_eq!(partition(&[5, 5], 4), vec![0..1, 1..2]);
        assert_eq!(partition(&[100, 1, 1, 1], 2), vec![0..1, 1..4]);
        assert_eq!(partition(&[], 3), Vec::<Range<usize>>::new());
        assert_eq!(partition(&[3, 3, 3], 1), vec![0..3]);
    }
}
