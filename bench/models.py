"""The benchmark models, written once for NEURON's `h` and used unchanged with
nrnrs's `h` (`from neuron import h` or `from nrnrs import h`), and once for
Arbor 0.12 (`arbor_models.py`).

Every builder returns a `Built` whose `spikes()` gives the soma spike count
of each cell (threshold -20 mV at soma(0.5)); `run_timed` times
finitialize + continuerun only, after an untimed warm-up finitialize that
lets both simulators finish their setup.
"""
import time

DT = 0.025
V_INIT = -65.0
THRESHOLD = -20.0

# hh-cells: soma + one dendrite.
SOMA_L = SOMA_DIAM = 20.0
DEND_L, DEND_DIAM, DEND_NSEG = 1000.0, 1.0, 100
HH_CELL_COMPARTMENTS = 1 + DEND_NSEG
STIM_DELAY, STIM_DUR = 1.0, 100.0
STIM_AMP = {"hh": 0.5, "pas": 0.3}
PAS_G, PAS_E = 1e-4, -65.0
HH_TSTOP = 100.0

# ring: soma (nseg 1) + a short hh dendrite (nseg 5) = 6 compartments.
RING_DEND_L, RING_DEND_DIAM, RING_DEND_NSEG = 50.0, 1.0, 5
RING_CELL_COMPARTMENTS = 1 + RING_DEND_NSEG
SYN_TAU, SYN_E = 2.0, 0.0
RING_TSTOP = 200.0
KICK_START, KICK_DELAY = 1.0, 1.0


class Built:
    """A model built in one simulator: the objects it must keep alive and
    the per-cell spike recorders."""

    def __init__(self, keep, spike_vecs, compartments, tstop):
        self.keep = keep
        self.spike_vecs = spike_vecs
        self.compartments = compartments
        self.tstop = tstop

    def spikes(self):
        return [len(v) for v in self.spike_vecs]


def _soma_detector(h, soma, keep):
    """A NetCon with no target counting soma(0.5) threshold crossings."""
    nc = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
    nc.threshold = THRESHOLD
    vec = h.Vector()
    nc.record(vec)
    keep.append(nc)
    return vec


def _soma_and_dendrite(h, i, dend_l, dend_diam, dend_nseg):
    """Cell i's soma (L = diam = 20 µm, one segment, hh) and its dendrite,
    connected at soma(1), with no mechanism yet."""
    soma = h.Section(name=f"soma_{i}")
    soma.L = SOMA_L
    soma.diam = SOMA_DIAM
    soma.nseg = 1
    soma.insert("hh")
    dend = h.Section(name=f"dend_{i}")
    dend.L = dend_l
    dend.diam = dend_diam
    dend.nseg = dend_nseg
    dend.connect(soma(1))
    return soma, dend


def build_hh_cells(h, n, variant):
    """N independent cells: soma (L = diam = 20 µm, hh) and a dendrite
    (1000 µm, diam 1 µm, nseg 100) at soma(1), hh everywhere (variant "hh")
    or a pas dendrite (variant "pas"); IClamp at soma(0.5)."""
    if variant not in STIM_AMP:
        raise ValueError(f"unknown hh-cells variant {variant!r}")
    keep, vecs = [], []
    for i in range(n):
        soma, dend = _soma_and_dendrite(h, i, DEND_L, DEND_DIAM, DEND_NSEG)
        if variant == "hh":
            dend.insert("hh")
        else:
            dend.insert("pas")
            for seg in dend:
                seg.pas.g = PAS_G
                seg.pas.e = PAS_E
        stim = h.IClamp(soma(0.5))
        stim.delay = STIM_DELAY
        stim.dur = STIM_DUR
        stim.amp = STIM_AMP[variant]
        keep += [soma, dend, stim]
        vecs.append(_soma_detector(h, soma, keep))
    return Built(keep, vecs, n * HH_CELL_COMPARTMENTS, HH_TSTOP)


def build_ring(h, n, net):
    """N cells (soma + short hh dendrite), an ExpSyn at each soma(0.5), the
    connections of `net` (from `ring_network`) and a NetStim kicking cell 0."""
    keep, vecs, cells = [], [], []
    for i in range(n):
        soma, dend = _soma_and_dendrite(
            h, i, RING_DEND_L, RING_DEND_DIAM, RING_DEND_NSEG
        )
        dend.insert("hh")
        syn = h.ExpSyn(soma(0.5))
        syn.tau = SYN_TAU
        syn.e = SYN_E
        keep += [soma, dend, syn]
        cells.append((soma, syn))
        vecs.append(_soma_detector(h, soma, keep))
    for src, tgt, weight, delay in net["connections"]:
        soma = cells[src][0]
        nc = h.NetCon(soma(0.5)._ref_v, cells[tgt][1], sec=soma)
        nc.threshold = THRESHOLD
        nc.delay = delay
        nc.weight[0] = weight
        keep.append(nc)
    stim = h.NetStim()
    stim.number = 1
    stim.start = KICK_START
    stim.noise = 0
    kick = h.NetCon(stim, cells[0][1])
    kick.delay = KICK_DELAY
    kick.weight[0] = net["kick_weight"]
    keep += [stim, kick]
    return Built(keep, vecs, n * RING_CELL_COMPARTMENTS, RING_TSTOP)


def ring_network(n, seed, ring_weight, extra_weight):
    """The ring's connection list, made once by the runner and given to every
    simulator: cell i-1 -> i (delay 1 ms) plus 2 inputs per cell from other
    distinct random cells (delays 1-5 ms on a 0.1 ms grid), as
    (source, target, weight, delay)."""
    import random

    rng = random.Random(seed)
    conns = []
    for i in range(n):
        prev = (i - 1) % n
        conns.append((prev, i, ring_weight, 1.0))
        others = [j for j in range(n) if j not in (i, prev)]
        for src in rng.sample(others, 2):
            conns.append((src, i, extra_weight, round(rng.uniform(1.0, 5.0), 1)))
    return {"connections": conns, "kick_weight": ring_weight, "seed": seed}


def build(h, model, n, net=None):
    """Builds benchmark `model` ("hh", "pas" or "ring") with N cells."""
    if model in ("hh", "pas"):
        return build_hh_cells(h, n, model)
    if model == "ring":
        return build_ring(h, n, net)
    raise ValueError(f"unknown model {model!r}")


def run_timed(h, built, threads, phase_times=False):
    """Sets dt, secondorder and the thread count, warms up with one untimed
    finitialize, then times finitialize(v_init) + continuerun(tstop).
    Returns (seconds, per-phase seconds or None)."""
    h.load_file("stdrun.hoc")
    h.dt = DT
    h.secondorder = 0
    h.ParallelContext().nthread(threads)
    h.finitialize(V_INIT)
    if phase_times:
        h.nrnrs_reset_phase_times()
    t0 = time.perf_counter()
    h.finitialize(V_INIT)
    h.continuerun(built.tstop)
    wall = time.perf_counter() - t0
    return wall, (h.nrnrs_phase_times() if phase_times else None)
