"""The benchmark models of `models.py` as Arbor 0.12 cable cells (default
catalogue hh, pas, expsyn; NEURON's cable defaults: Ra 35.4 Ω·cm,
cm 1 µF/cm², 6.3 °C, NEURON's reversal potentials).

Morphology: the soma is one 20 µm cylinder of radius 10 µm and each
dendrite compartment one segment of its own; `cv_policy_every_segment`
then gives one control volume per NEURON segment. Arbor places the CV
nodes at segment boundaries (NEURON at segment centres), so the
discretisations are equally fine but not identical, and spike counts may
differ slightly from NEURON's.
"""
import time

import arbor
from arbor import units as U

import models as M


def _cell(dend_l, dend_diam, dend_nseg, dend_mech, iclamp_amp=None, synapse=False):
    tree = arbor.segment_tree()
    r = M.SOMA_DIAM / 2
    soma = tree.append(arbor.mnpos, arbor.mpoint(0, 0, 0, r), arbor.mpoint(M.SOMA_L, 0, 0, r), tag=1)
    parent, step, rd = soma, dend_l / dend_nseg, dend_diam / 2
    for k in range(dend_nseg):
        x0 = M.SOMA_L + k * step
        parent = tree.append(parent, arbor.mpoint(x0, 0, 0, rd), arbor.mpoint(x0 + step, 0, 0, rd), tag=3)
    labels = arbor.label_dict({"soma": "(tag 1)", "dend": "(tag 3)",
                               "mid": '(on-components 0.5 (region "soma"))'})
    decor = arbor.decor()
    decor.set_property(Vm=M.V_INIT * U.mV)
    decor.paint('"soma"', arbor.density("hh"))
    decor.paint('"dend"', dend_mech)
    if iclamp_amp is not None:
        decor.place('"mid"', arbor.i_clamp(M.STIM_DELAY * U.ms, M.STIM_DUR * U.ms, iclamp_amp * U.nA))
    if synapse:
        decor.place('"mid"', arbor.synapse("expsyn", {"tau": M.SYN_TAU, "e": M.SYN_E}), "syn")
    decor.place('"mid"', arbor.threshold_detector(M.THRESHOLD * U.mV), "det")
    return arbor.cable_cell(tree, decor, labels, arbor.cv_policy_every_segment())


class Recipe(arbor.recipe):
    def __init__(self, model, n, net):
        super().__init__()
        self.model, self.n = model, n
        self.props = arbor.neuron_cable_properties()
        self.incoming = [[] for _ in range(n)]
        if model == "ring":
            for src, tgt, w, d in net["connections"]:
                self.incoming[tgt].append(arbor.connection((src, "det"), "syn", w, d * U.ms))
            self.kick_weight = net["kick_weight"]
        if model == "hh":
            self.proto = _cell(M.DEND_L, M.DEND_DIAM, M.DEND_NSEG, arbor.density("hh"), M.STIM_AMP["hh"])
        elif model == "pas":
            pas = arbor.density(f"pas/e={M.PAS_E}", {"g": M.PAS_G})
            self.proto = _cell(M.DEND_L, M.DEND_DIAM, M.DEND_NSEG, pas, M.STIM_AMP["pas"])
        elif model == "ring":
            self.proto = _cell(M.RING_DEND_L, M.RING_DEND_DIAM, M.RING_DEND_NSEG, arbor.density("hh"),
                               synapse=True)
        else:
            raise ValueError(f"unknown model {model!r}")

    def num_cells(self):
        return self.n

    def cell_kind(self, gid):
        return arbor.cell_kind.cable

    def cell_description(self, gid):
        return self.proto

    def connections_on(self, gid):
        return self.incoming[gid]

    def event_generators(self, gid):
        if self.model == "ring" and gid == 0:
            sched = arbor.explicit_schedule([(M.KICK_START + M.KICK_DELAY) * U.ms])
            return [arbor.event_generator("syn", self.kick_weight, sched)]
        return []

    def global_properties(self, kind):
        return self.props


def run(model, n, threads, net):
    """Builds the simulation (untimed), then times `sim.run`. Returns
    (seconds, per-cell spike counts, compartments per cell)."""
    recipe = Recipe(model, n, net)
    ctx = arbor.context(threads=threads)
    sim = arbor.simulation(recipe, ctx)
    sim.record(arbor.spike_recording.local)
    ncv = arbor.cv_data(recipe.proto).num_cv
    tstop = M.RING_TSTOP if model == "ring" else M.HH_TSTOP
    t0 = time.perf_counter()
    sim.run(tstop * U.ms, M.DT * U.ms)
    wall = time.perf_counter() - t0
    counts = [0] * n
    for (gid, _), _t in sim.spikes():
        counts[gid] += 1
    return wall, counts, ncv
