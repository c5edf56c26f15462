"""Reference data for the code-generation fixtures (codegen/tests/fixtures/mod/*.mod).

The fixtures are our own small mechanisms, each exercising one part of the
lowering: WATCH + net_event (wdet), derivimplicit (kdi), cnexp on a
nonlinear equation (nlg: nocmodl keeps cnexp with a state-dependent rate),
the cnexp → derivimplicit fallback when the state is inside exp() (nlr), euler + arrays +
FROM loops + a FUNCTION TABLE (chain), KINETIC sparse with a LINEAR initial
state (c3), KINETIC with COMPARTMENT, CONSERVE and a flux into cai
(cabuf, with the cachan calcium current), POINTERs (gap: two cells
joined by a gap junction made of two Gap point processes).

The folder is built with NEURON 9.0.2's nrnivmodl in a temporary directory
and loaded; every protocol writes tests/data/neuron/codegen/<protocol>.json
in the format of tests/data/neuron/README.md. dt 0.025, celsius 6.3,
v_init -65, secondorder 0.

Run with the NEURON venv's python:  .venv-neuron/bin/python scripts/neuron_reference/codegen_fixtures.py
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = REPO / "codegen" / "tests" / "fixtures" / "mod"

sys.path.insert(0, str(HERE))


def build():
    tmp = Path(tempfile.mkdtemp(prefix="nrnrs-fixtures-"))
    for f in sorted(FIXTURES.glob("*.mod")):
        shutil.copy(f, tmp / f.name)
    nrnivmodl = Path(sys.executable).parent / "nrnivmodl"
    subprocess.run([str(nrnivmodl)], cwd=tmp, check=True, capture_output=True)
    return tmp


def soma(m, diam=20.0):
    m.section("soma", nseg=1, L=diam, diam=diam)


def main():
    lib_dir = build()
    from neuron import h  # noqa: E402  (after the build, before loading)
    h.nrn_load_dll(str(lib_dir / "x86_64" / "libnrnmech.so"))
    from common import Model  # noqa: E402

    # WATCH: an hh soma driven to spike repeatedly, WDet counts crossings.
    m = Model("fixture_wdet", __file__, tstop=40)
    m.section("soma", nseg=1, L=10, diam=10)
    m.insert("soma", "hh")
    m.point("stim", "IClamp", "soma", 0.5, dur=30, amp=0.3, **{"del": 2})
    m.point("wd", "WDet", "soma", 0.5)
    m.rec_v("soma", 0.5)
    m.rec_point("wd", "n")
    m.rec_point("wd", "tlast")
    m.spikes("wd")
    m.run()
    m.write("codegen/fixture_wdet.json")
    del m  # its point processes must go before the next protocol resets NEURON

    # POINTER: cell 1 (hh, stimulated) and cell 2 (pas) joined by two Gaps.
    m = Model("fixture_gap", __file__, tstop=30)
    m.section("soma1", nseg=1, L=10, diam=10)
    m.insert("soma1", "hh")
    m.section("soma2", nseg=1, L=10, diam=10)
    m.insert("soma2", "pas", g=1e-4, e=-65)
    m.point("stim", "IClamp", "soma1", 0.5, dur=1, amp=0.5, **{"del": 2})
    g1 = m.point("gap1", "Gap", "soma1", 0.5, g=0.005)
    g2 = m.point("gap2", "Gap", "soma2", 0.5, g=0.005)
    h.setpointer(m.sections["soma2"](0.5)._ref_v, "vgap", g1)
    h.setpointer(m.sections["soma1"](0.5)._ref_v, "vgap", g2)
    m.extra["pointers"] = [
        {"point": "gap1", "pointer": "vgap", "target": "soma2(0.5).v"},
        {"point": "gap2", "pointer": "vgap", "target": "soma1(0.5).v"},
    ]
    m.rec_v("soma1", 0.5)
    m.rec_v("soma2", 0.5)
    m.rec_point("gap1", "i")
    m.rec_point("gap2", "i")
    m.run()
    m.write("codegen/fixture_gap.json")
    del m, g1, g2

    def density(name, mech, vars_, amp=0.1, ion_vars=(), extra=()):
        m = Model(name, __file__, tstop=80)
        soma(m)
        m.insert("soma", "pas", g=1e-4, e=-65)
        for e in extra:
            m.insert("soma", e)
        m.insert("soma", mech)
        m.point("stim", "IClamp", "soma", 0.5, dur=50, amp=amp, **{"del": 5})
        m.rec_v("soma", 0.5)
        for v in vars_:
            m.rec_mech("soma", 0.5, mech, v)
        for v in ion_vars:
            m.rec_seg("soma", 0.5, v)
        return m

    m = None
    m = density("fixture_kdi", "kdi", ["n"], amp=0.15, ion_vars=["ik"])
    m.run()
    m.write("codegen/fixture_kdi.json")

    m = None
    m = density("fixture_nlg", "nlg", ["s"], amp=0.1)
    m.run()
    m.write("codegen/fixture_nlg.json")

    m = None
    m = density("fixture_nlr", "nlr", ["r"], amp=0.1)
    m.run()
    m.write("codegen/fixture_nlr.json")

    m = None
    m = density("fixture_chain", "chain", ["x0", "x1", "x2", "x3"], amp=0.2)
    seg = m.sections["soma"](0.5)
    m.record("soma(0.5).chain.w[3]", seg.chain._ref_w[3])
    m.run()
    m.write("codegen/fixture_chain.json")

    m = None
    m = density("fixture_c3", "c3", ["C", "O", "I"], amp=0.05, ion_vars=["ina"])
    m.run()
    m.write("codegen/fixture_c3.json")

    m = None
    m = density("fixture_cabuf", "cabuf", ["B", "CaB"], amp=0.1, ion_vars=["ica", "cai", "eca"],
                extra=["cachan"])
    m.run()
    m.write("codegen/fixture_cabuf.json")


if __name__ == "__main__":
    main()
