"""Sanity checks on the generated reference data (run by make_all.sh after generation).

Checks every tests/data/neuron/*.json: NEURON version 9.0.2, every trace has
nsteps + 1 finite values, and the spike counts the protocols are designed
to produce. Exits non-zero with a list of problems.
"""
import json
import math
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "neuron"

# protocol -> {spike source: expected number of spikes}
EXPECTED_SPIKES = {
    "hh_single_so0": {"soma(0.5)": 1}, "hh_single_so2": {"soma(0.5)": 1},
    "hh_soma_iclamp": {"soma(0.5)": 1}, "hh_soma_iclamp_notable": {"soma(0.5)": 1},
    "demo": {"soma(0.5)": 3},
    "two_cells_expsyn": {"soma1(0.5)": 1, "soma2(0.5)": 1},
    "netstim_expsyn": {"ns": 5, "soma(0.5)": 1},
    "netstim_alone": {"ns": 5, "ns2": 10},
    "intfire1_alone": {"ns": 10, "cell": 2},
    "intfire2_alone": {"ns": 10, "cell": 4},
    "expsyn_alone": {"ns": 3}, "exp2syn_alone": {"ns": 3},
}
for p in ("hh_axon_so0", "hh_axon_so2", "hh_axon_ra35", "hh_axon_ra100"):
    EXPECTED_SPIKES[p] = {f"axon({x!r})": 1 for x in (0.005, 0.25, 0.5, 0.75, 0.995)}


def main():
    problems = []
    files = sorted(DATA.glob("*.json"))
    for f in files:
        d = json.loads(f.read_text())
        name = d["protocol"]
        if "VERSION 9.0.2 " not in d["neuron_version"]:
            problems.append(f"{f.name}: neuron_version {d['neuron_version']}")
        n = d["nsteps"] + 1
        for k, v in d["traces"].items():
            if len(v) != n:
                problems.append(f"{f.name}: trace {k} has {len(v)} points, expected {n}")
            if not all(isinstance(x, float) and math.isfinite(x) for x in v):
                problems.append(f"{f.name}: trace {k} has a non-finite value")
        for src, count in EXPECTED_SPIKES.get(name, {}).items():
            got = len(d["spikes"].get(src, []))
            if got != count:
                problems.append(f"{f.name}: {got} spikes from {src}, expected {count}")
        if name != "geometry" and "t" not in d["traces"]:
            problems.append(f"{f.name}: no t trace")
    for p in problems:
        print("PROBLEM:", p)
    print(f"checked {len(files)} files, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
