#!/usr/bin/env python3
"""Check our mechanisms/mod/*.mod against NEURON's built-in mechanisms.

Our .mod files are written from the published equations, with NEURON's names
and defaults. This script compiles them with NEURON 9.0.2's nrnivmodl under
renamed mechanism names (an `x` appended, so they don't clash with the
built-ins), runs protocols that use every mechanism, and prints the largest
difference between the built-in and our version for each mechanism.

Usage: <venv with neuron==9.0.2>/bin/python mechanisms/scripts/compare_with_neuron.py
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "mod"


def build(tmp):
    for f in HERE.glob("*.mod"):
        text = f.read_text()
        text = re.sub(r"SUFFIX (\w+)", r"SUFFIX \1x", text)
        text = re.sub(r"(POINT_PROCESS|ARTIFICIAL_CELL) (\w+)", r"\1 \2x", text)
        (tmp / f.name).write_text(text)
    nrnivmodl = Path(sys.executable).parent / "nrnivmodl"
    subprocess.run([str(nrnivmodl), "."], cwd=tmp, check=True, capture_output=True)


def main():
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        build(tmp)
        os.chdir(tmp)  # NEURON auto-loads x86_64/ from the working directory
        import numpy as np
        from neuron import h
        h.load_file("stdrun.hoc")

        def cell(swap, usetable):
            h.usetable_hh = usetable
            if hasattr(h, "usetable_hhx"):
                h.usetable_hhx = usetable
            S = lambda n: n + ("x" if n == swap else "")
            soma = h.Section(name="soma"); soma.L = soma.diam = 10
            soma.insert(S("hh"))
            dend = h.Section(name="d"); dend.connect(soma(1)); dend.insert(S("pas")); dend.nseg = 5
            st = getattr(h, S("IClamp"))(soma(0.5)); st.dur = 0.5; st.amp = 0.3; setattr(st, "del", 2)
            syn = getattr(h, S("ExpSyn"))(dend(0.5)); syn.tau = 3
            syn2 = getattr(h, S("Exp2Syn"))(dend(0.9)); syn2.tau1 = 0.5; syn2.tau2 = 5
            al = getattr(h, S("AlphaSynapse"))(soma(0.5)); al.onset = 20; al.gmax = 0.002; al.tau = 1
            ns = getattr(h, S("NetStim"))(); ns.start = 5; ns.interval = 4; ns.number = 6
            ncs = [h.NetCon(ns, syn), h.NetCon(ns, syn2)]
            ncs[0].weight[0] = 0.01; ncs[0].delay = 1; ncs[1].weight[0] = 0.01; ncs[1].delay = 2
            se = getattr(h, S("SEClamp"))(dend(0.1))
            se.dur1 = 30; se.amp1 = -65; se.dur2 = 3; se.amp2 = -20; se.dur3 = 2; se.amp3 = -60; se.rs = 50
            f1 = getattr(h, S("IntFire1"))(); f1.tau = 5; f1.refrac = 3
            ncs.append(h.NetCon(ns, f1)); ncs[-1].weight[0] = 0.6
            fs = h.Vector(); ncs.append(h.NetCon(f1, None)); ncs[-1].record(fs)
            recs = [h.Vector().record(r) for r in (soma(0.5)._ref_v, dend(0.5)._ref_v, se._ref_i, syn._ref_g)]
            h.finitialize(-65); h.continuerun(40)
            return np.concatenate([np.array(r) for r in recs] + [np.array(fs)])

        def intfire2(sfx, ib, w, interval):
            ns = h.NetStim(); ns.start = 5; ns.interval = interval; ns.number = 20
            f = getattr(h, "IntFire2" + sfx)(); f.ib = ib
            nc = h.NetCon(ns, f); nc.weight[0] = w
            fs = h.Vector(); nc2 = h.NetCon(f, None); nc2.record(fs)
            h.finitialize(-65); h.continuerun(200)
            return np.array(fs)

        worst = 0.0
        for usetable in (1, 0):
            base = cell(None, usetable)
            for name in ["hh", "pas", "IClamp", "ExpSyn", "Exp2Syn", "AlphaSynapse", "NetStim", "SEClamp", "IntFire1"]:
                d = float(np.max(np.abs(cell(name, usetable) - base)))
                worst = max(worst, d)
                print(f"usetable_hh={usetable} {name:13s} max |diff| = {d:.3g}")
        for case in [(0, 0.5, 3), (1.2, 0.1, 10), (0.5, 0.3, 2), (0, 1.9, 20), (0, 2.1, 20), (3, 0.5, 7)]:
            a, b = intfire2("", *case), intfire2("x", *case)
            d = float(np.max(np.abs(a - b))) if len(a) == len(b) else float("inf")
            print(f"IntFire2 ib={case[0]} w={case[1]} interval={case[2]}: {len(a)} spikes, max |dt| = {d:.3g} ms")
        print(f"worst trace difference: {worst:.3g}")


if __name__ == "__main__":
    main()
