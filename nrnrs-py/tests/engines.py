"""Running scripts and protocols under NEURON and under nrnrs, each in its own
process (one simulator per process, as with NEURON's `h`), and comparing
their vectors."""
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REFERENCE = REPO / "tests" / "data" / "neuron"
TUTORIALS = HERE / "tutorials"

# |ΔV| ≤ 1e-6 mV (issue 6); the same absolute bound for every other variable.
ATOL = 1e-6


def neuron_python():
    """The interpreter that has NEURON: $NRNRS_NEURON_PYTHON, else this one."""
    return os.environ.get("NRNRS_NEURON_PYTHON", sys.executable)


@functools.lru_cache(maxsize=None)
def neuron_version():
    """NEURON's version string in neuron_python(), or None if it cannot import neuron."""
    r = subprocess.run(
        [neuron_python(), "-c", "import neuron; print(neuron.__version__)"],
        capture_output=True, text=True,
    )
    return r.stdout.strip() if r.returncode == 0 else None


def as_nrnrs(text):
    """A NEURON script with only its import lines changed to nrnrs."""
    text = re.sub(r"^from neuron import h$", "from nrnrs import h", text, flags=re.M)
    return re.sub(r"^from neuron\.units import", "from nrnrs.units import", text, flags=re.M)


def _last_json(proc, what):
    if proc.returncode != 0:
        raise AssertionError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    return json.loads(lines[-1])


def run_script(path, engine, tmp_path):
    """Runs a tutorial script (written for NEURON) under `engine`; returns its JSON output."""
    text = Path(path).read_text()
    if engine == "nrnrs":
        script = tmp_path / f"{Path(path).stem}_nrnrs.py"
        script.write_text(as_nrnrs(text))
        python = sys.executable
    else:
        script = Path(path)
        python = neuron_python()
    proc = subprocess.run([python, str(script)], capture_output=True, text=True, cwd=tmp_path)
    return _last_json(proc, f"{Path(path).name} under {engine}")


def run_protocol(name, engine):
    """Runs protocols.PROTOCOLS[name] under `engine` in a fresh process."""
    python = sys.executable if engine == "nrnrs" else neuron_python()
    proc = subprocess.run(
        [python, str(HERE / "protocol_runner.py"), engine, name],
        capture_output=True, text=True,
    )
    return _last_json(proc, f"protocol {name} under {engine}")


def compare(ours, theirs, dt):
    """Asserts every trace and spike train of `theirs` (NEURON) is matched by `ours`.

    Traces: same length, |Δ| ≤ ATOL everywhere. Spikes: same count, each time
    on the same step (|Δt| < dt/2).
    """
    problems = []
    assert set(ours["traces"]) == set(theirs["traces"]), "different traces recorded"
    for name, ref in theirs["traces"].items():
        got = ours["traces"][name]
        if len(got) != len(ref):
            problems.append(f"{name}: {len(got)} samples, NEURON has {len(ref)}")
            continue
        worst = max(range(len(ref)), key=lambda i: abs(got[i] - ref[i]), default=None)
        if worst is not None and not abs(got[worst] - ref[worst]) <= ATOL:
            problems.append(
                f"{name}: |Δ| = {abs(got[worst] - ref[worst]):.3g} at index {worst} "
                f"(nrnrs {got[worst]!r}, NEURON {ref[worst]!r})"
            )
    assert set(ours["spikes"]) == set(theirs["spikes"]), "different spike sources"
    for name, ref in theirs["spikes"].items():
        got = ours["spikes"][name]
        if len(got) != len(ref) or any(abs(a - b) >= dt / 2 for a, b in zip(got, ref)):
            problems.append(f"spikes {name}: nrnrs {got}, NEURON {ref}")
    assert not problems, "\n".join(problems)
