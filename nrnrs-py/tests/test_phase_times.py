"""h.nrnrs_phase_times(): the runtime's per-phase timers, as seen from Python
(used by bench/run.py)."""

import time

from nrnrs import h

KEYS = {"currents", "matrix_setup", "solve", "states", "events"}


def test_phase_times_count_the_steps_of_a_run_and_reset():
    soma = h.Section(name="pt_soma")
    soma.insert("hh")
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 1, 5, 0.5
    h.dt = 0.025
    h.finitialize(-65)
    assert h.nrnrs_reset_phase_times() == 1.0
    before = h.nrnrs_phase_times()
    assert set(before) == KEYS | {"steps"}
    assert before["steps"] == 0
    assert all(before[k] == 0.0 for k in KEYS)

    t0 = time.perf_counter()
    h.continuerun(10)
    wall = time.perf_counter() - t0
    p = h.nrnrs_phase_times()
    # Every fadvance is counted: from t = 0 that is t / dt of them (400 for
    # continuerun(10) at dt 0.025 with stdrun's one step per 1/steps_per_ms).
    assert h.t >= 10 - h.dt / 2
    assert p["steps"] == round(h.t / h.dt)
    assert isinstance(p["steps"], int)
    assert all(isinstance(p[k], float) and p[k] >= 0.0 for k in KEYS)
    # The parts are measured inside the run, so they cannot exceed it, and
    # an hh section does real work in its currents and states.
    assert 0.0 < sum(p[k] for k in KEYS) <= wall
    assert p["currents"] > 0.0 and p["states"] > 0.0

    # Counters accumulate until reset.
    h.continuerun(11)
    assert h.nrnrs_phase_times()["steps"] == round(h.t / h.dt) > p["steps"]
    h.nrnrs_reset_phase_times()
    after = h.nrnrs_phase_times()
    assert after["steps"] == 0 and all(after[k] == 0.0 for k in KEYS)
