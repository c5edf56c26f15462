"""One benchmark measurement in a fresh process: builds one model in one
simulator, runs it once, and prints one JSON line on stdout.

    python worker.py SIM MODEL N THREADS [NET_JSON]

SIM is neuron, nrnrs (the built-in mechanisms JIT-compiled: run.py sets
NRNRS_BUILTINS=jit), nrnrs-aot (the built-ins compiled ahead of time, the
package's default) or arbor; MODEL is hh, pas or ring (ring needs
NET_JSON, the connection list written by run.py). run.py starts one of
these per (simulator, model, N, threads, repeat).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import models as M  # noqa: E402


def main():
    sim, model, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    net = None
    if model == "ring":
        with open(sys.argv[5]) as f:
            net = json.load(f)
    out = {"sim": sim, "model": model, "n": n, "threads": threads}
    if sim == "arbor":
        import arbor_models

        wall, counts, ncv = arbor_models.run(model, n, threads, net)
        out.update(wall=wall, spikes=counts, compartments=n * ncv, phases=None)
    else:
        if sim == "neuron":
            from neuron import h
        elif sim in ("nrnrs", "nrnrs-aot"):
            from nrnrs import h
        else:
            raise SystemExit(f"unknown simulator {sim!r}")
        if sim.startswith("nrnrs"):
            import nrnrs

            want = "aot" if sim == "nrnrs-aot" else "jit"
            if nrnrs.builtin_backend()[0] != want:
                raise SystemExit(f"{sim}: the built-ins are {nrnrs.builtin_backend()}")
        built = M.build(h, model, n, net)
        wall, phases = M.run_timed(h, built, threads, phase_times=sim.startswith("nrnrs"))
        out.update(wall=wall, spikes=built.spikes(), compartments=built.compartments, phases=phases)
    tstop = M.RING_TSTOP if model == "ring" else M.HH_TSTOP
    out["steps"] = round(tstop / M.DT)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
