"""Issue 4 reference data: demo, synapses, clamps, artificial cells, hh axons.

All at dt 0.025 ms, celsius 6.3, v_init -65, secondorder 0, usetable_hh 1
(NEURON's default) unless the protocol name says `notable`. Writes one JSON
file per protocol into tests/data/neuron/. Run with the NEURON 9.0.2 venv's
python (see README.md).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Model, rel_script  # noqa: E402
from hh_tests import hh_axon  # noqa: E402


def hh_soma(m, name="soma"):
    """An hh soma, L = diam = 10 um, nseg 1, other settings NEURON's defaults."""
    m.section(name, nseg=1, L=10, diam=10)
    m.insert(name, "hh")


def rec_hh(m, name="soma"):
    m.rec_v(name, 0.5)
    for var in ("m", "h", "n"):
        m.rec_mech(name, 0.5, "hh", var)


def pas_soma(m, name="soma"):
    """A pas soma, L = diam = 10 um, nseg 1, pas with its defaults (g 0.001, e -70)."""
    m.section(name, nseg=1, L=10, diam=10)
    m.insert(name, "pas")


def demo():
    """NEURON's default section (L 100, diam 500, nseg 1) with hh and four 50 nA IClamps."""
    m = Model("demo", __file__, tstop=49.5)
    m.section("soma")  # default geometry on purpose
    m.insert("soma", "hh")
    for i, delay in enumerate((2, 13, 27, 40)):
        m.point(f"stim{i}", "IClamp", "soma", 0.5, delay=delay, dur=0.5, amp=50)
    rec_hh(m)
    m.spikes("soma(0.5)")  # NetCon default threshold (10 mV)
    m.run()
    return m


def hh_soma_iclamp(protocol, usetable_hh):
    m = Model(protocol, __file__, tstop=10, usetable_hh=usetable_hh)
    hh_soma(m)
    m.point("stim", "IClamp", "soma", 0.5, delay=2, dur=0.1, amp=1)
    rec_hh(m)
    m.rec_seg("soma", 0.5, "ina")
    m.rec_seg("soma", 0.5, "ik")
    m.rec_point("stim", "i")
    m.spikes("soma(0.5)")
    m.run()
    return m


def two_cells_expsyn():
    """Cell 1 fires from an IClamp; its NetCon (delay 1, weight 5 uS) drives an ExpSyn on cell 2."""
    m = Model("two_cells_expsyn", __file__, tstop=20)
    hh_soma(m, "soma1")
    hh_soma(m, "soma2")
    m.point("stim", "IClamp", "soma1", 0.5, delay=1, dur=0.1, amp=1)
    m.point("syn", "ExpSyn", "soma2", 0.5, e=0)
    m.netcon("nc", "soma1(0.5)", "syn", delay=1, weight=[5])
    m.rec_v("soma1", 0.5)
    m.rec_v("soma2", 0.5)
    m.rec_point("syn", "g")
    m.rec_point("syn", "i")
    m.rec_point("stim", "i")
    m.spikes("soma1(0.5)")
    m.spikes("soma2(0.5)")
    m.run()
    return m


def pas_alphasynapse():
    m = Model("pas_alphasynapse", __file__, tstop=40,
              notes=["AlphaSynapse's g is not a RANGE variable in NEURON 9.0.2 (only onset, tau, gmax, e, i), "
                     "so only syn.i is recorded."])
    pas_soma(m)
    m.point("syn", "AlphaSynapse", "soma", 0.5, onset=20, gmax=1)
    m.rec_v("soma", 0.5)
    m.rec_mech("soma", 0.5, "pas", "i")
    m.rec_point("syn", "i")
    m.run()
    return m


def netstim_expsyn():
    m = Model("netstim_expsyn", __file__, tstop=40)
    hh_soma(m)
    m.artcell("ns", "NetStim", interval=5, number=5, start=2, noise=0)
    m.point("syn", "ExpSyn", "soma", 0.5, tau=5)
    m.netcon("nc", "ns", "syn", delay=1, weight=[0.01])
    rec_hh(m)
    m.rec_point("syn", "g")
    m.rec_point("syn", "i")
    m.spikes("ns")
    m.spikes("soma(0.5)")
    m.run()
    return m


def seclamp_hh():
    m = Model("seclamp_hh", __file__, tstop=10)
    hh_soma(m)
    m.point("clamp", "SEClamp", "soma", 0.5, dur1=2, amp1=-65, dur2=5, amp2=0, dur3=3, amp3=-65)
    rec_hh(m)
    m.rec_seg("soma", 0.5, "ina")
    m.rec_seg("soma", 0.5, "ik")
    m.rec_point("clamp", "i")
    m.rec_point("clamp", "vc")
    m.run()
    return m


def axon_ra(protocol, Ra):
    m = hh_axon(protocol, 0, Ra=Ra, usetable_hh=1)
    m.script = rel_script(__file__)
    return m


def syn_alone(protocol, ptype, **params):
    """A synapse on a pas soma driven by a NetStim (interval 10, number 3, start 5) through a NetCon (delay 1, weight 0.005 uS)."""
    m = Model(protocol, __file__, tstop=40)
    pas_soma(m)
    m.artcell("ns", "NetStim", interval=10, number=3, start=5, noise=0)
    m.point("syn", ptype, "soma", 0.5, **params)
    m.netcon("nc", "ns", "syn", delay=1, weight=[0.005])
    m.rec_v("soma", 0.5)
    m.rec_point("syn", "g")
    m.rec_point("syn", "i")
    if ptype == "Exp2Syn":
        m.rec_point("syn", "A")
        m.rec_point("syn", "B")
    m.spikes("ns")
    m.run()
    return m


def iclamp_alone():
    m = Model("iclamp_alone", __file__, tstop=30)
    pas_soma(m)
    m.point("stim", "IClamp", "soma", 0.5, delay=5, dur=10, amp=0.02)
    m.rec_v("soma", 0.5)
    m.rec_point("stim", "i")
    m.run()
    return m


def netstim_alone():
    """Two NetStims with noise 0; only their event times (and t) are recorded."""
    m = Model("netstim_alone", __file__, tstop=50)
    m.artcell("ns", "NetStim", interval=5, number=5, start=2, noise=0)
    m.artcell("ns2", "NetStim", interval=3.3, number=10, start=0.7, noise=0)
    m.spikes("ns")
    m.spikes("ns2")
    m.run()
    return m


def seclamp_alone():
    m = Model("seclamp_alone", __file__, tstop=25)
    pas_soma(m)
    m.point("clamp", "SEClamp", "soma", 0.5, dur1=5, amp1=-65, dur2=10, amp2=-20, dur3=5, amp3=-65)
    m.rec_v("soma", 0.5)
    m.rec_point("clamp", "i")
    m.rec_point("clamp", "vc")
    m.run()
    return m


def intfire1_alone():
    """IntFire1 (defaults tau 10, refrac 5) driven by a NetStim every 5 ms with weight 0.5."""
    m = Model("intfire1_alone", __file__, tstop=60,
              notes=["cell.M is IntFire1's M() function sampled after finitialize and after every fadvance; "
                     "cell.m is the stored m (updated only at events)."])
    m.artcell("ns", "NetStim", interval=5, number=10, start=2, noise=0)
    cell = m.artcell("cell", "IntFire1")
    m.netcon("nc", "ns", "cell", delay=1, weight=[0.5])
    m.rec_point("cell", "m")
    m.sample("cell.M", lambda: cell.M())
    m.spikes("ns")
    m.spikes("cell")
    m.run()
    return m


def intfire2_alone():
    """IntFire2 (defaults taus 20, taum 10, ib 0) driven by a NetStim every 5 ms with weight 0.5."""
    m = Model("intfire2_alone", __file__, tstop=60,
              notes=["cell.M and cell.I are IntFire2's M() and I() functions sampled after finitialize and after "
                     "every fadvance; cell.m and cell.i are the stored values (updated only at events)."])
    m.artcell("ns", "NetStim", interval=5, number=10, start=2, noise=0)
    cell = m.artcell("cell", "IntFire2")
    m.netcon("nc", "ns", "cell", delay=1, weight=[0.5])
    m.rec_point("cell", "m")
    m.rec_point("cell", "i")
    m.sample("cell.M", lambda: cell.M())
    m.sample("cell.I", lambda: cell.I())
    m.spikes("ns")
    m.spikes("cell")
    m.run()
    return m


def main():
    demo().write()
    hh_soma_iclamp("hh_soma_iclamp", 1).write()
    hh_soma_iclamp("hh_soma_iclamp_notable", 0).write()
    two_cells_expsyn().write()
    pas_alphasynapse().write()
    netstim_expsyn().write()
    seclamp_hh().write()
    axon_ra("hh_axon_ra35", 35.4).write()
    axon_ra("hh_axon_ra100", 100).write()
    syn_alone("expsyn_alone", "ExpSyn", tau=2).write()
    syn_alone("exp2syn_alone", "Exp2Syn", tau1=0.5, tau2=5).write()
    iclamp_alone().write()
    netstim_alone().write()
    seclamp_alone().write()
    intfire1_alone().write()
    intfire2_alone().write()


if __name__ == "__main__":
    main()
