"""Runs one protocol of protocols.py under one engine and prints its vectors
as JSON on the last line of stdout.

    python protocol_runner.py neuron|nrnrs <protocol>
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import protocols  # noqa: E402


def main():
    engine, name = sys.argv[1], sys.argv[2]
    if engine == "neuron":
        from neuron import h
    elif engine == "nrnrs":
        from nrnrs import h
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    h.load_file("stdrun.hoc")
    body = protocols.PROTOCOLS[name]
    traces, spikes = body(h)
    out = {
        "traces": {k: [float(x) for x in v] for k, v in traces.items()},
        "spikes": {k: [float(x) for x in v] for k, v in spikes.items()},
        "dt": float(h.dt),
    }
    sys.stdout.write("\n" + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
