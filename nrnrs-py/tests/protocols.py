"""Protocol bodies for the differential suite: each function builds and runs a
model through the `h` it is given (NEURON's or nrnrs's) and returns
``(traces, spikes)``, two dicts of name -> Vector (or list of floats).

The same function runs once under ``from neuron import h`` and once under
``from nrnrs import h`` (see protocol_runner.py); test_differential.py
compares every vector. Bodies use only the public NEURON Python API.
"""


def _rec(h, refs):
    return {name: h.Vector().record(ref) for name, ref in refs.items()}


def hh_axon_secondorder2(h):
    """An hh axon, nseg 101, IClamp at x = 0, Crank-Nicolson with ionic correction, no tables."""
    h.secondorder = 2
    h.usetable_hh = 0
    axon = h.Section(name="axon")
    axon.L = 1000
    axon.diam = 1
    axon.nseg = 101
    axon.Ra = 35.4
    axon.insert("hh")
    stim = h.IClamp(axon(0))
    stim.delay, stim.dur, stim.amp = 1, 0.5, 0.5
    vecs = _rec(h, {
        "t": h._ref_t,
        "axon(0).v": axon(0)._ref_v,
        "axon(0.5).v": axon(0.5)._ref_v,
        "axon(1).v": axon(1)._ref_v,
        "axon(0.5).ina": axon(0.5)._ref_ina,
        "axon(0.25).hh.m": axon(0.25).hh._ref_m,
        "stim.i": stim._ref_i,
    })
    nc = h.NetCon(axon(0.9)._ref_v, None, sec=axon)
    spikes = h.Vector()
    nc.record(spikes)
    h.finitialize(-65)
    h.continuerun(10)
    return vecs, {"axon(0.9)": spikes}


def branched_tree(h):
    """A soma with hh and three passive dendrites attached with every connect() form."""
    h.celsius = 16.3
    soma = h.Section(name="soma")
    soma.L = soma.diam = 20
    soma.insert(h.hh)
    dends = [h.Section(name=f"dend{i}") for i in range(3)]
    for d in dends:
        d.L = 200
        d.diam = 1.5
        d.nseg = 5
        d.Ra = 120
        d.cm = 1.2
    h.pas.insert(dends)
    for d in dends:
        for seg in d:
            seg.pas.g = 2e-4
            seg.e_pas = -70
    dends[0].connect(soma(1))
    dends[1].connect(soma, 0.5)
    dends[2].connect(dends[0](0.7), 1)
    soma.gnabar_hh = 0.15
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 2, 1, 0.3
    syn = h.ExpSyn(dends[2](0.2))
    syn.tau = 2
    refs = {"t": h._ref_t, "soma(0.5).v": soma(0.5)._ref_v}
    for d in dends:
        for seg in d.allseg():
            refs[f"{d.name()}({seg.x:.3f}).v"] = seg._ref_v
    refs["syn.i"] = syn._ref_i
    vecs = _rec(h, refs)
    nc = h.NetCon(soma(0.5)._ref_v, syn, 0, 2, 0.002, sec=soma)
    spikes = h.Vector()
    nc.record(spikes)
    h.finitialize(-65)
    h.continuerun(25)
    geometry = {
        "areas": [seg.area() for sec in [soma] + dends for seg in sec.allseg()],
        "ri": [seg.ri() for sec in dends for seg in sec],
    }
    vecs.update(geometry)
    return vecs, {"soma(0.5)": spikes}


def pt3d_cell(h):
    """Sections from 3-d points with tapering diameters."""
    soma = h.Section(name="soma")
    for x, d in ((0, 12), (6, 15), (12, 11)):
        soma.pt3dadd(x, 0, 0, d)
    dend = h.Section(name="dend")
    dend.nseg = 7
    h.pt3dclear(sec=dend)
    for x, y, d in ((12, 0, 3), (40, 10, 2.5), (90, 30, 1.2), (150, 35, 0.8)):
        h.pt3dadd(x, y, 0, d, sec=dend)
    dend.connect(soma(1))
    for sec in (soma, dend):
        sec.insert("hh")
    dend.gnabar_hh = 0.05
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 1, 2, 0.2
    refs = {"t": h._ref_t}
    for sec in (soma, dend):
        for seg in sec.allseg():
            refs[f"{sec.name()}({seg.x:.4f}).v"] = seg._ref_v
    vecs = _rec(h, refs)
    h.finitialize(-65)
    h.continuerun(8)
    vecs["L"] = [soma.L, dend.L]
    vecs["diam"] = [seg.diam for sec in (soma, dend) for seg in sec]
    vecs["areas"] = [seg.area() for sec in (soma, dend) for seg in sec.allseg()]
    vecs["n3d"] = [soma.n3d(), dend.n3d(), dend.x3d(2), dend.diam3d(3), dend.arc3d(3)]
    return vecs, {}


def exp2syn_netstim(h):
    """A NetStim drives an Exp2Syn on a passive soma; sampled every 0.1 ms too."""
    soma = h.Section(name="soma")
    soma.L = soma.diam = 15
    soma.insert("pas")
    syn = h.Exp2Syn(soma(0.5))
    syn.tau1, syn.tau2, syn.e = 0.5, 5, 0
    ns = h.NetStim()
    ns.start, ns.interval, ns.number = 3, 4, 6
    nc = h.NetCon(ns, syn)
    nc.delay = 1.5
    nc.weight[0] = 0.004
    vecs = _rec(h, {"t": h._ref_t, "v": soma(0.5)._ref_v, "g": syn._ref_g, "i": syn._ref_i})
    vecs["v every 0.1 ms"] = h.Vector().record(soma(0.5)._ref_v, 0.1)
    times = h.Vector()
    rec = h.NetCon(ns, None)
    rec.record(times)
    h.finitialize(-65)
    h.continuerun(35)
    return vecs, {"ns": times}


def intfire_cells(h):
    """IntFire1 and IntFire2 driven by one NetStim (with a section, so t can be recorded)."""
    soma = h.Section(name="soma")
    ns = h.NetStim()
    ns.start, ns.interval, ns.number = 5, 10, 5
    c1 = h.IntFire1()
    c2 = h.IntFire2()
    ncs = [h.NetCon(ns, c, 10, 1, 0.5) for c in (c1, c2)]
    spikes = {}
    recs = []
    for name, c in (("cell1", c1), ("cell2", c2)):
        spikes[name] = h.Vector()
        r = h.NetCon(c, None)
        r.record(spikes[name])
        recs.append(r)
    vecs = _rec(h, {"t": h._ref_t, "v": soma(0.5)._ref_v})
    h.finitialize(-65)
    h.continuerun(60)
    _ = ncs
    return vecs, spikes


def stdrun_run(h):
    """h.run() with tstop, v_init and a dt that stdrun's setdt changes."""
    h.load_file("stdrun.hoc")
    soma = h.Section(name="soma")
    soma.L = soma.diam = 10
    soma.insert("hh")
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 1, 0.5, 0.4
    vecs = _rec(h, {"t": h._ref_t, "v": soma(0.5)._ref_v})
    h.tstop = 12
    h.v_init = -70
    h.dt = 0.01
    h.run()
    vecs["dt and t"] = [h.dt, h.t]
    return vecs, {}


def threads(h):
    """Four cells split over two threads; results must not depend on the split."""
    pc = h.ParallelContext()
    pc.nthread(2)
    cells, stims = [], []
    for i in range(4):
        s = h.Section(name=f"cell{i}")
        s.L, s.diam, s.nseg = 100, 2, 3
        s.insert("hh")
        st = h.IClamp(s(0.5))
        st.delay, st.dur, st.amp = 1 + i, 0.5, 0.05 + 0.02 * i
        cells.append(s)
        stims.append(st)
    syn = h.ExpSyn(cells[3](0.5))
    nc = h.NetCon(cells[0](0.5)._ref_v, syn, sec=cells[0])
    nc.weight[0] = 0.01
    vecs = _rec(h, {f"cell{i}(0.5).v": c(0.5)._ref_v for i, c in enumerate(cells)})
    h.finitialize(-65)
    h.continuerun(15)
    pc.nthread(1)
    return vecs, {}


def range_edits(h):
    """Range variables set through every spelling, nseg changed after, usetable and celsius."""
    h.celsius = 22
    h.usetable_hh = 1
    sec = h.Section(name="cable")
    sec.L, sec.diam = 300, 2
    sec.nseg = 3
    sec.insert("hh")
    sec.insert("pas")
    sec(0.1).hh.gnabar = 0.2
    sec(0.5).gkbar_hh = 0.03
    for seg in sec:
        seg.pas.g = 1e-5 * (1 + seg.x)
    sec.el_hh = -60
    sec.nseg = 9
    sec(0.9).diam = 3
    sec.cm = 1.5
    stim = h.IClamp(sec(0.05))
    stim.delay, stim.dur, stim.amp = 1, 3, 0.15
    refs = {"t": h._ref_t}
    for seg in sec:
        refs[f"v({seg.x:.4f})"] = seg._ref_v
    refs["gna(0.5)"] = sec(0.5).hh._ref_gna
    refs["ek(0.5)"] = sec(0.5)._ref_ek
    vecs = _rec(h, refs)
    h.finitialize(-64)
    h.continuerun(12)
    vecs["gnabar per segment"] = [seg.hh.gnabar for seg in sec]
    vecs["g_pas per segment"] = [seg.g_pas for seg in sec]
    return vecs, {}


def netcon_edits(h):
    """Thresholds, delays and weights changed after creation; two targets, shared source."""
    pre = h.Section(name="pre")
    pre.L = pre.diam = 10
    pre.insert("hh")
    post = h.Section(name="post")
    post.L = post.diam = 10
    post.insert("pas")
    stim = h.IClamp(pre(0.5))
    stim.delay, stim.dur, stim.amp = 1, 6, 0.3
    s1 = h.ExpSyn(post(0.5))
    s2 = h.ExpSyn(post(0.5))
    s2.tau = 4
    n1 = h.NetCon(pre(0.5)._ref_v, s1, sec=pre)
    n2 = h.NetCon(pre(0.5)._ref_v, s2, sec=pre)
    n1.weight[0] = 0.003
    n2.weight[0] = 0.001
    n2.delay = 2.5
    n1.threshold = -20
    spikes = h.Vector()
    n2.record(spikes)
    vecs = _rec(h, {"t": h._ref_t, "post": post(0.5)._ref_v, "g1": s1._ref_g, "g2": s2._ref_g})
    h.finitialize(-65)
    h.continuerun(10)
    n1.weight[0] = 0.006
    h.continuerun(20)
    vecs["threshold, delay"] = [n1.threshold, n2.threshold, n1.delay, n2.delay]
    return vecs, {"pre": spikes}


def set_t(h):
    """h.t set after finitialize: the run goes on from there (IClamp times are absolute)."""
    soma = h.Section(name="soma")
    soma.L = soma.diam = 10
    soma.insert("hh")
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 6, 1, 0.3
    vecs = _rec(h, {"t": h._ref_t, "v": soma(0.5)._ref_v, "stim.i": stim._ref_i})
    h.finitialize(-65)
    h.t = 5
    h.continuerun(12)
    vecs["t at end"] = [h.t]
    return vecs, {}


def deleted_while_recorded(h):
    """Sections and point processes deleted while Vectors record them: those
    recordings stop and keep their samples, and the rest of the model runs on."""
    a = h.Section(name="a")
    a.insert("hh")
    b = h.Section(name="b")
    c = h.Section(name="c")
    for sec in (b, c):
        sec.insert("pas")
    b.connect(a(1))
    c.connect(b(1))
    st = h.IClamp(a(0.5))
    st.delay, st.dur, st.amp = 0.5, 0.5, 0.5
    syn = h.ExpSyn(b(0.5))
    ns = h.NetStim()
    ns.start, ns.number = 0.2, 1
    nc = h.NetCon(ns, syn, 0, 0.1, 0.01)
    vecs = _rec(h, {"t": h._ref_t, "a": a(0.5)._ref_v, "b": b(0.5)._ref_v,
                    "c": c(0.5)._ref_v, "syn.g": syn._ref_g})
    vecs["st.i every 0.35 ms"] = h.Vector().record(st._ref_i, 0.35)
    h.finitialize(-65)
    h.continuerun(2)
    del syn, nc
    del b  # the last reference: the section goes, c becomes a root
    h.finitialize(-65)
    h.continuerun(3)
    del st
    h.finitialize(-65)
    h.continuerun(1)
    vecs["sections left"] = [len(list(h.allsec()))]
    return vecs, {}


def netcon_shared_threshold(h):
    """A new NetCon on a source keeps the source's threshold unless given one
    (then every NetCon on it gets the new one); delays changed while spikes are
    in flight; a threshold on a NetCon without a source."""
    pre = h.Section(name="pre")
    pre.L = pre.diam = 10
    pre.insert("hh")
    post = h.Section(name="post")
    post.L = post.diam = 10
    post.insert("pas")
    stim = h.IClamp(pre(0.5))
    stim.delay, stim.dur, stim.amp = 1, 40, 0.05
    s1, s2 = h.ExpSyn(post(0.5)), h.ExpSyn(post(0.5))
    n1 = h.NetCon(pre(0.5)._ref_v, s1, sec=pre)
    n1.threshold = -30
    n2 = h.NetCon(pre(0.5)._ref_v, s2, sec=pre)  # keeps -30
    n2.delay = 3
    n1.weight[0], n2.weight[0] = 0.002, 0.001
    ns = h.NetStim()
    ns.start, ns.interval, ns.number = 1, 2, 20
    m1 = h.NetCon(ns, s1, 5, 1, 0.0005)
    m1.threshold = 7
    m2 = h.NetCon(ns, None)  # keeps 7
    free = h.NetCon(None, s2)
    free.threshold = 3
    pre_spikes, ns_spikes = h.Vector(), h.Vector()
    n2.record(pre_spikes)
    m2.record(ns_spikes)
    vecs = _rec(h, {"t": h._ref_t, "post": post(0.5)._ref_v, "g1": s1._ref_g, "g2": s2._ref_g})
    thresholds = [n1.threshold, n2.threshold, m1.threshold, m2.threshold, free.threshold]
    h.finitialize(-65)
    h.continuerun(5)
    n2.delay = 0.5  # spikes in flight keep their delivery times
    m1.delay = 4
    h.continuerun(15)
    n3 = h.NetCon(pre(0.5)._ref_v, None, 20, 1, 0, sec=pre)  # every NetCon on pre gets 20
    h.continuerun(30)
    thresholds += [n1.threshold, n2.threshold, n3.threshold, n2.delay, m1.delay]
    vecs["thresholds and delays"] = thresholds
    return vecs, {"pre": pre_spikes, "ns": ns_spikes}


def interval_recording_edges(h):
    """Vector.record(ref, Dt) where NEURON's record events land on a run's
    last step, and with Dt < dt (several events, so samples, per step)."""
    soma = h.Section(name="soma")
    soma.insert("hh")
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 0.5, 1, 0.5
    vecs = {}
    for dt_rec in (0.1, 0.25, 0.01):
        vecs[f"v every {dt_rec} ms"] = h.Vector().record(soma(0.5)._ref_v, dt_rec)
    h.finitialize(-65)
    h.continuerun(3)
    return vecs, {}


PROTOCOLS = {
    f.__name__: f
    for f in (
        hh_axon_secondorder2,
        branched_tree,
        pt3d_cell,
        exp2syn_netstim,
        intfire_cells,
        stdrun_run,
        threads,
        range_edits,
        netcon_edits,
        set_t,
        deleted_while_recorded,
        netcon_shared_threshold,
        interval_recording_edges,
    )
}
