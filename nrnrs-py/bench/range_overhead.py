"""Overhead benchmark (issue 6): set a range variable from Python on 100,000
segments, under NEURON and under nrnrs, in the same run.

    python bench/range_overhead.py            # needs neuron==9.0.2 and nrnrs

Each engine runs in its own process (both are one-simulator-per-process);
the time is the best of 5 passes over all segments, for three spellings:
``seg.hh.gnabar = x``, ``seg.gnabar_hh = x`` and reading ``seg.v``.
"""
import json
import subprocess
import sys

BODY = r"""
import json, sys, time
if sys.argv[1] == "neuron":
    from neuron import h
else:
    from nrnrs import h
secs = []
for i in range(10):
    s = h.Section(name=f"s{i}")
    s.nseg = 10000
    s.insert("hh")
    secs.append(s)
assert sum(s.nseg for s in secs) == 100000
def best(f):
    out = []
    for _ in range(5):
        t0 = time.perf_counter(); f(); out.append(time.perf_counter() - t0)
    return min(out)
def mech_form():
    for s in secs:
        for seg in s:
            seg.hh.gnabar = 0.1
def suffix_form():
    for s in secs:
        for seg in s:
            seg.gnabar_hh = 0.1
def read_v():
    x = 0.0
    for s in secs:
        for seg in s:
            x += seg.v
h.finitialize(-65)
print(json.dumps({"seg.hh.gnabar = x": best(mech_form), "seg.gnabar_hh = x": best(suffix_form),
                  "x = seg.v": best(read_v)}))
"""


def run(engine):
    p = subprocess.run([sys.executable, "-c", BODY, engine], capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[-1]
    return json.loads(p.stdout.strip().splitlines()[-1]), None


def main():
    results = {}
    for engine in ("neuron", "nrnrs"):
        r, err = run(engine)
        if r is None:
            print(f"{engine}: not run ({err})")
        results[engine] = r
    print(f"{'100,000 segments':<22}{'NEURON 9.0.2':>14}{'nrnrs':>14}{'ratio':>9}")
    for key in ("seg.hh.gnabar = x", "seg.gnabar_hh = x", "x = seg.v"):
        n = results["neuron"] and results["neuron"][key]
        r = results["nrnrs"] and results["nrnrs"][key]
        fmt = lambda v: f"{v * 1e3:11.1f} ms" if v is not None else f"{'-':>14}"
        ratio = f"{r / n:8.2f}x" if n and r else f"{'-':>9}"
        print(f"{key:<22}{fmt(n)}{fmt(r)}{ratio}")


if __name__ == "__main__":
    main()
