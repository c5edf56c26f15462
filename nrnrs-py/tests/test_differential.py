"""The differential suite: every protocol body (protocols.py, and the tutorial
scripts) runs once in a process with NEURON 9.0.2 and once with nrnrs; every
recorded vector must agree (|Δ| ≤ 1e-6, spikes on the same step).

Skipped only when NEURON cannot be imported (set NRNRS_NEURON_PYTHON to an
interpreter that has neuron==9.0.2; scripts/python_test installs it)."""
import pytest

import protocols
from engines import (
    ATOL, TUTORIALS, compare, neuron_python, neuron_version, run_protocol, run_script,
)

@pytest.fixture(scope="module")
def neuron_ok():
    v = neuron_version()
    if v is None:
        pytest.skip(f"NEURON is not importable by {neuron_python()}: pip install neuron==9.0.2 "
                    "(or set NRNRS_NEURON_PYTHON)")
    assert v.startswith("9.0.2"), f"the differential suite needs NEURON 9.0.2, found {v}"


@pytest.mark.parametrize("name", sorted(protocols.PROTOCOLS))
def test_protocol_agrees_with_neuron(name, neuron_ok):
    theirs = run_protocol(name, "neuron")
    ours = run_protocol(name, "nrnrs")
    assert ours["dt"] == theirs["dt"]
    compare(ours, theirs, theirs["dt"])


@pytest.mark.parametrize("script", sorted(p.name for p in TUTORIALS.glob("*.py")))
def test_tutorial_agrees_with_neuron(script, neuron_ok, tmp_path):
    theirs = run_script(TUTORIALS / script, "neuron", tmp_path)
    ours = run_script(TUTORIALS / script, "nrnrs", tmp_path)
    compare(ours, theirs, 0.025)
