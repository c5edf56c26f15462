"""Issue 3 reference data: hh and pas at secondorder 0 and 2, usetable_hh = 0.

Writes tests/data/neuron/hh_single_so{0,2}.json, hh_axon_so{0,2}.json and
pas_single.json. Run with the NEURON 9.0.2 venv's python (see README.md).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Model  # noqa: E402

AXON_X = [0.005, 0.25, 0.5, 0.75, 0.995]


def hh_single(so):
    """One hh compartment (L = diam = 10 um) kicked by a 0.1 ms, 1 nA IClamp at 2 ms."""
    m = Model(f"hh_single_so{so}", __file__, tstop=10, secondorder=so, usetable_hh=0)
    m.section("soma", nseg=1, L=10, diam=10)
    m.insert("soma", "hh")
    m.point("stim", "IClamp", "soma", 0.5, delay=2, dur=0.1, amp=1)
    m.rec_v("soma", 0.5)
    for var in ("m", "h", "n", "il"):
        m.rec_mech("soma", 0.5, "hh", var)
    m.rec_seg("soma", 0.5, "ina")
    m.rec_seg("soma", 0.5, "ik")
    m.rec_point("stim", "i")
    m.spikes("soma(0.5)", threshold=10)
    m.run()
    return m


def hh_axon(protocol, so, Ra, usetable_hh, amp=0.5):
    """A 1000 um, 101-segment hh axon (diam 1 um) with a 0.5 ms IClamp at x = 0 from 1 ms.

    The brief's 0.1 nA does not fire this axon (the clamp sits on the zero-area
    x = 0 node); 0.2 nA fires only after a 2 ms delay (close to threshold, so
    sensitive to roundoff), so 0.5 nA is used: a clean spike that travels the axon.
    """
    m = Model(protocol, __file__, tstop=10, secondorder=so, usetable_hh=usetable_hh)
    m.section("axon", nseg=101, L=1000, diam=1, Ra=Ra)
    m.insert("axon", "hh")
    m.point("stim", "IClamp", "axon", 0.0, delay=1, dur=0.5, amp=amp)
    for x in AXON_X:
        m.rec_v("axon", x)
    for var in ("m", "h", "n"):
        m.rec_mech("axon", 0.5, "hh", var)
    m.rec_point("stim", "i")
    for x in AXON_X:
        m.spikes(f"axon({x!r})", threshold=10)
    m.run()
    return m


def pas_single():
    """A passive compartment (g 0.001 S/cm2, e -65 mV) with a 5 ms, 0.05 nA IClamp at 1 ms."""
    m = Model("pas_single", __file__, tstop=10, secondorder=0, usetable_hh=0)
    m.section("soma", nseg=1, L=10, diam=10)
    m.insert("soma", "pas", g=0.001, e=-65)
    m.point("stim", "IClamp", "soma", 0.5, delay=1, dur=5, amp=0.05)
    m.rec_v("soma", 0.5)
    m.rec_mech("soma", 0.5, "pas", "i")
    m.rec_point("stim", "i")
    m.run()
    return m


def main():
    for so in (0, 2):
        hh_single(so).write()
        hh_axon(f"hh_axon_so{so}", so, Ra=35.4, usetable_hh=0).write()
    pas_single().write()


if __name__ == "__main__":
    main()
