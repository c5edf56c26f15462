#!/usr/bin/env python3
"""Benchmarks nrnrs against NEURON 9.0.2 and Arbor 0.12.2, interleaved, in
one run on one machine (issue 7).

    python3 bench/run.py [--quick] [--only NAME] [--skip-setup] [--repeats R]
                         [--sims neuron,nrnrs,nrnrs-aot,arbor] [--load-time]

1. Setup (timed separately, never part of a measurement): creates
   bench/.venv, pip-installs neuron==9.0.2, arbor==0.12.2, maturin and
   numpy, builds nrnrs-py as a wheel (`maturin build --release`, target
   dir $CARGO_TARGET_DIR or target/bench) installed into that venv. Its
   built-in mechanisms are compiled ahead of time by the build (the
   `mechanisms` crate's build script), which setup checks.
2. Runs every benchmark: one fresh process (bench/worker.py) per
   (simulator, model, N, threads, repeat), interleaved (for each repeat:
   NEURON, nrnrs JIT, nrnrs AOT, Arbor). Only the run is timed:
   finitialize + continuerun for NEURON and nrnrs (same Python code,
   bench/models.py; nrnrs AOT is the package as it is, nrnrs JIT the same
   with NRNRS_BUILTINS=jit), `sim.run` for Arbor (bench/arbor_models.py).
3. Reports median/min/max wall time, ns per compartment-step, the speedup
   of nrnrs over NEURON and over Arbor, spike counts (nrnrs must equal
   NEURON cell by cell: MISMATCH and exit status 1 otherwise) and nrnrs's
   per-phase times. Writes bench/results/bench.json and bench/results/bench.md.

--quick: small N, one repeat (a smoke test). --only NAME: only benchmarks
whose id contains NAME (ids: hh-N-tT, pas-N-tT, ring-N-tT; e.g.
`--only hh-1000-t1`, `--only ring`). --load-time also runs
bench/load_time.py (JIT load of 20 mod files vs nrnivmodl; it builds with
cargo into target/release).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
PY = VENV / "bin" / "python"
RESULTS = BENCH / "results"
SIMS = ("neuron", "nrnrs", "nrnrs-aot", "arbor")
LABEL = {"neuron": "NEURON 9.0.2", "nrnrs": "nrnrs (JIT)", "nrnrs-aot": "nrnrs (AOT, default)",
         "arbor": "Arbor 0.12.2"}
OURS = ("nrnrs", "nrnrs-aot")
PHASES = ("currents", "matrix_setup", "solve", "states", "events")

# The ring's network, made here once and given to every simulator.
RING_SEED, RING_WEIGHT, RING_EXTRA_WEIGHT = 20261123, 0.01, 0.0005

sys.path.insert(0, str(BENCH))
import models as M  # noqa: E402


def benchmarks(quick):
    """(id, model, N, threads, repeats) in the order they run."""
    if quick:
        return [("hh-1-t1", "hh", 1, 1, 1), ("hh-10-t1", "hh", 10, 1, 1),
                ("pas-10-t1", "pas", 10, 1, 1), ("hh-10-t2", "hh", 10, 2, 1),
                ("ring-100-t1", "ring", 100, 1, 1)]
    out = []
    for model in ("hh", "pas"):
        for n in (1, 10, 100, 1000):
            out.append((f"{model}-{n}-t1", model, n, 1, 2 if n == 1000 else 3))
        out.append((f"{model}-1000-t2", model, 1000, 2, 2))
    for n in (100, 1000):
        out.append((f"ring-{n}-t1", "ring", n, 1, 3))
    out.append(("ring-1000-t2", "ring", 1000, 2, 3))
    return out


def describe(model, n, threads):
    what = {"hh": "hh-cells, hh everywhere", "pas": "hh-cells, pas dendrite", "ring": "ring"}[model]
    return f"{what}, N = {n}, {threads} thread{'s' if threads > 1 else ''}"


# ---------------------------------------------------------------- setup


def timed(label, times, fn):
    t0 = time.perf_counter()
    print(f"setup: {label} ...", flush=True)
    r = fn()
    times[label] = round(time.perf_counter() - t0, 2)
    return r


def run_checked(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"setup failed: {' '.join(map(str, cmd))}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def check_aot():
    """Why the installed nrnrs does not run its built-ins compiled ahead of
    time (its default), or None."""
    env = {k: v for k, v in os.environ.items() if k != "NRNRS_BUILTINS"}
    r = subprocess.run([str(PY), "-c", "import nrnrs; print(nrnrs.builtin_backend())"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return f"cannot import nrnrs: {r.stderr[-1500:]}"
    if r.stdout.strip() != "('aot', None)":
        return f"the installed nrnrs's built-ins are {r.stdout.strip()}"
    return None


def setup(skip):
    """Makes bench/.venv with NEURON, Arbor and nrnrs. Returns (seconds per
    step, why Arbor is unavailable or None, why the AOT built-ins are
    unavailable or None)."""
    times = {}
    if skip:
        if not PY.exists():
            sys.exit("--skip-setup: bench/.venv does not exist; run once without it")
    else:
        if not PY.exists():
            timed("create venv", times, lambda: run_checked([sys.executable, "-m", "venv", VENV]))
        timed("pip install neuron, maturin, numpy", times, lambda: run_checked(
            [PY, "-m", "pip", "install", "-q", "neuron==9.0.2", "maturin>=1.5,<2", "numpy"]))
        r = timed("pip install arbor", times, lambda: subprocess.run(
            [str(PY), "-m", "pip", "install", "-q", "arbor==0.12.2"], capture_output=True, text=True))
        if r.returncode != 0:
            print(f"setup: arbor==0.12.2 could not be installed for Python "
                  f"{platform.python_version()}; Arbor is skipped:\n{r.stderr[-2000:]}", flush=True)
        # A wheel rather than `maturin develop`, which would write the
        # extension into nrnrs-py/python/nrnrs/, shared with other venvs.
        env = dict(os.environ)
        env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target" / "bench"))
        with tempfile.TemporaryDirectory() as wheels:
            timed("build nrnrs (maturin build --release)", times, lambda: run_checked(
                [VENV / "bin" / "maturin", "build", "--release", "--locked", "-q", "-i", PY, "-o", wheels],
                cwd=ROOT / "nrnrs-py", env=env))
            wheel = next(Path(wheels).glob("nrnrs-*.whl"))
            timed("pip install nrnrs wheel", times, lambda: run_checked(
                [PY, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", wheel]))
    r = subprocess.run([str(PY), "-c", "import arbor; print(arbor.__version__)"],
                       capture_output=True, text=True)
    arbor_missing = None
    if r.returncode != 0 or r.stdout.strip() != "0.12.2":
        arbor_missing = (f"Arbor 0.12.2 is not importable in bench/.venv (Python "
                         f"{platform.python_version()}): {(r.stderr or r.stdout).strip()[-300:]}")
    return times, arbor_missing, check_aot()


# ---------------------------------------------------------------- measuring


def measure(sim, model, n, threads, net_file, cwd):
    """One worker process; returns its JSON result or an error dict."""
    cmd = [str(PY), str(BENCH / "worker.py"), sim, model, str(n), str(threads)]
    if net_file:
        cmd.append(str(net_file))
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(BENCH))
    env.pop("NRNRS_BUILTINS", None)
    if sim == "nrnrs":
        env["NRNRS_BUILTINS"] = "jit"
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=1800)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        return {"error": (r.stderr or r.stdout).strip()[-1500:] or f"exit status {r.returncode}"}
    return json.loads(lines[-1])


def median_phases(samples):
    ph = [s["phases"] for s in samples if s.get("phases")]
    if not ph:
        return None
    return {k: statistics.median(p[k] for p in ph) for k in PHASES}


def summarise(bid, model, n, threads, runs, sims):
    """Statistics of one benchmark from its raw samples per simulator."""
    out = {"id": bid, "model": model, "n": n, "threads": threads,
           "description": describe(model, n, threads), "sims": {}, "problems": []}
    steps = round((M.RING_TSTOP if model == "ring" else M.HH_TSTOP) / M.DT)
    out["steps"] = steps
    for sim in sims:
        ok = [s for s in runs[sim] if "error" not in s]
        errs = [s["error"] for s in runs[sim] if "error" in s]
        entry = {"errors": errs}
        if ok:
            walls = [s["wall"] for s in ok]
            comps = ok[0]["compartments"]
            med = statistics.median(walls)
            spikes = ok[0]["spikes"]
            entry.update(
                wall_s={"median": med, "min": min(walls), "max": max(walls), "samples": walls},
                compartments=comps,
                ns_per_compartment_step=med / (comps * steps) * 1e9,
                spikes_total=sum(spikes),
                spikes_per_cell=spikes,
                spikes_stable=all(s["spikes"] == spikes for s in ok),
            )
            ph = median_phases(ok)
            if ph:
                entry["phases_s"] = ph
                entry["phases_ns_per_compartment_step"] = {
                    k: v / (comps * steps) * 1e9 for k, v in ph.items()}
        out["sims"][sim] = entry
    s = out["sims"]
    ref = s.get("neuron", {})
    for mine in OURS:
        ours = s.get(mine, {}).get("wall_s")
        # Speedup of nrnrs (JIT or AOT) over each other simulator.
        for other in ("neuron", "arbor"):
            theirs = s.get(other, {}).get("wall_s")
            if ours and theirs:
                s[mine][f"speedup_vs_{other}"] = theirs["median"] / ours["median"]
        got = s.get(mine, {})
        if "spikes_per_cell" in ref and "spikes_per_cell" in got:
            bad = [i for i, (a, b) in enumerate(zip(ref["spikes_per_cell"], got["spikes_per_cell"]))
                   if a != b]
            got["spikes_match_neuron"] = not bad and got["spikes_stable"] and ref["spikes_stable"]
            if not got["spikes_match_neuron"]:
                out["problems"].append(
                    f"MISMATCH: {LABEL[mine]} spike counts differ from NEURON in {len(bad)} of {n} "
                    f"cells (first: cell {bad[0] if bad else '-'}; totals NEURON "
                    f"{ref['spikes_total']}, {LABEL[mine]} {got['spikes_total']}; the same in every "
                    f"repeat: NEURON {ref['spikes_stable']}, {LABEL[mine]} {got['spikes_stable']})")
    for k in ("neuron", "arbor"):
        if f"speedup_vs_{k}" in s.get("nrnrs", {}):
            out[f"speedup_vs_{k}"] = s["nrnrs"][f"speedup_vs_{k}"]
    if "nrnrs" in s and "spikes_match_neuron" in s["nrnrs"]:
        out["nrnrs_spikes_match_neuron"] = s["nrnrs"]["spikes_match_neuron"]
    if "spikes_per_cell" in ref and "spikes_per_cell" in s.get("arbor", {}):
        a = s["arbor"]["spikes_per_cell"]
        s["arbor"]["cells_differing_from_neuron"] = sum(x != y for x, y in zip(a, ref["spikes_per_cell"]))
    for sim in sims:
        for e in s[sim]["errors"]:
            out["problems"].append(f"{LABEL[sim]} failed: {e}")
    return out


# ---------------------------------------------------------------- output


def fmt_x(v):
    return "—" if v is None else f"{v:.2f}×"


def markdown(res):
    sims = res["sims"]
    L = []
    L.append(f"Measured {res['date']} on {res['machine']['cpu']} ({res['machine']['cpus']} cores, "
             f"shared with other work), Python {res['machine']['python']}; {res['mode']} run. "
             "Wall time of finitialize + continuerun (Arbor: `sim.run`), median (min–max) over "
             "fresh processes, interleaved; ns/c·s = ns per compartment-step. The last two "
             "columns are how many times faster nrnrs (that row's JIT or AOT) is than NEURON "
             "and than Arbor: the other's median / nrnrs's median.")
    for key, what in (("arbor_missing", "Arbor skipped"), ("aot_missing", "nrnrs AOT skipped")):
        if res.get(key):
            L.append(f"\n**{what}:** {res[key]}")
    L.append("")
    L.append("| benchmark | simulator | wall time, s | ns/c·s | spikes | vs NEURON | vs Arbor |")
    L.append("|---|---|---|---|---|---|---|")
    for b in res["benchmarks"]:
        first = True
        for sim in sims:
            e = b["sims"][sim]
            name = f"{b['description']} ({e.get('compartments', '?')} compartments × {b['steps']} steps)" \
                if first else ""
            first = False
            if "wall_s" not in e:
                L.append(f"| {name} | {LABEL[sim]} | failed | — | — | | |")
                continue
            w = e["wall_s"]
            spikes = str(e["spikes_total"])
            if e.get("spikes_match_neuron") is False:
                spikes += " **MISMATCH**"
            elif e.get("cells_differing_from_neuron"):
                spikes += f" ({e['cells_differing_from_neuron']} cells ≠ NEURON)"
            vs = [fmt_x(e.get("speedup_vs_neuron")) if sim in OURS else "",
                  fmt_x(e.get("speedup_vs_arbor")) if sim in OURS else ""]
            L.append(f"| {name} | {LABEL[sim]} | {w['median']:.3g} ({w['min']:.3g}–{w['max']:.3g}) | "
                     f"{e['ns_per_compartment_step']:.1f} | {spikes} | {vs[0]} | {vs[1]} |")
    for sim in OURS:
        if sim not in sims:
            continue
        L.append(f"\n{LABEL[sim]} per-phase time, ns per compartment-step (median over repeats; "
                 "with 2 threads each parallel phase counts its slowest thread of each step; "
                 "other = wall − phases: finitialize, Python, step bookkeeping):\n")
        L.append("| benchmark | currents | matrix setup | solve | states | events | other | total |")
        L.append("|---|---|---|---|---|---|---|---|")
        for b in res["benchmarks"]:
            e = b["sims"][sim]
            p = e.get("phases_ns_per_compartment_step")
            if not p:
                continue
            tot = e["ns_per_compartment_step"]
            other = tot - sum(p.values())
            L.append(f"| {b['description']} | " + " | ".join(f"{p[k]:.1f}" for k in PHASES) +
                     f" | {other:.1f} | {tot:.1f} |")
    acc = res.get("acceptance")
    if acc:
        L.append("\nIssue 7 acceptance bars (this run):\n")
        for a in acc:
            L.append(f"- {a}")
    if res.get("setup_s"):
        L.append("\nSetup (not part of any measurement): " +
                 ", ".join(f"{k} {v:.1f} s" for k, v in res["setup_s"].items()) + ".")
    if res.get("load_time"):
        L.append("\nLoad time (bench/load_time.py):\n")
        L.append(res["load_time"].strip())
    return "\n".join(L) + "\n"


def acceptance(res):
    """Issue 7's bars, for each nrnrs path measured (AOT: the built-in
    mechanisms as the package is built, compiled ahead of time, the default;
    JIT: the same compiled at startup by cranelift, NRNRS_BUILTINS=jit)."""
    by = {b["id"]: b for b in res["benchmarks"]}
    out = []

    def per_path(bid, bar, what, value):
        parts = []
        for mine in OURS:
            v = value(by.get(bid), mine)
            if v is not None:
                parts.append(f"{LABEL[mine]} {v:.2f}× — {'met' if v >= bar else 'NOT met'}")
        if parts:
            out.append(f"{what} (bar {bar}×): " + "; ".join(parts))

    def vs(other):
        return lambda b, mine: (b or {}).get("sims", {}).get(mine, {}).get(f"speedup_vs_{other}")

    def threads(b, mine):
        t1, t2 = by.get("hh-1000-t1"), by.get("hh-1000-t2")
        w1 = (t1 or {}).get("sims", {}).get(mine, {}).get("wall_s")
        w2 = (t2 or {}).get("sims", {}).get(mine, {}).get("wall_s")
        return w1["median"] / w2["median"] if w1 and w2 else None

    per_path("hh-1000-t1", 2.0, "hh everywhere, N = 1000, 1 thread, vs NEURON", vs("neuron"))
    for mine in OURS:
        v = vs("arbor")(by.get("hh-1000-t1"), mine)
        if v is not None:
            out.append(f"hh everywhere, N = 1000, 1 thread, {LABEL[mine]} vs Arbor: {v:.2f}×")
    per_path("pas-1000-t1", 1.5, "pas dendrite, N = 1000, 1 thread, vs NEURON", vs("neuron"))
    per_path("hh-1000-t2", 1.8, "2 threads vs 1 thread, hh N = 1000", threads)
    r = by.get("ring-1000-t1")
    for mine in OURS:
        e = (r or {}).get("sims", {}).get(mine, {})
        v = e.get("speedup_vs_neuron")
        if v is not None:
            same = e.get("spikes_match_neuron")
            ok = v >= 1.0 and same
            out.append(f"ring N = 1000 vs NEURON, {LABEL[mine]}: {v:.2f}× (bar 1×), spike counts "
                       f"{'identical' if same else 'DIFFERENT'} — {'met' if ok else 'NOT met'}")
    return out


def machine():
    cpu = platform.processor() or "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N, one repeat (smoke test)")
    ap.add_argument("--only", help="run only benchmarks whose id contains this")
    ap.add_argument("--repeats", type=int, help="override the repeats of every benchmark")
    ap.add_argument("--sims", default=",".join(SIMS), help="comma-separated subset of neuron,nrnrs,nrnrs-aot,arbor")
    ap.add_argument("--skip-setup", action="store_true", help="reuse bench/.venv as it is")
    ap.add_argument("--load-time", action="store_true", help="also run bench/load_time.py")
    ap.add_argument("--out", default=str(RESULTS / "bench"),
                    help="results path without extension (default bench/results/bench)")
    args = ap.parse_args()

    t_setup = time.perf_counter()
    setup_s, arbor_missing, aot_missing = setup(args.skip_setup)
    if setup_s:
        setup_s["total"] = round(time.perf_counter() - t_setup, 2)
    sims = [s for s in args.sims.split(",") if s]
    for s in sims:
        if s not in SIMS:
            sys.exit(f"--sims: unknown simulator {s!r} (known: {', '.join(SIMS)})")
    if arbor_missing and "arbor" in sims:
        print(f"SKIPPING ARBOR: {arbor_missing}", flush=True)
        sims.remove("arbor")
    if aot_missing and "nrnrs-aot" in sims:
        print(f"SKIPPING nrnrs AOT: {aot_missing}", flush=True)
        sims.remove("nrnrs-aot")

    todo = benchmarks(args.quick)
    if args.only:
        todo = [b for b in todo if args.only in b[0]]
        if not todo:
            sys.exit(f"--only {args.only}: no benchmark id contains it "
                     f"(ids: {', '.join(b[0] for b in benchmarks(False))})")
    results = []
    failed = False
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # Workers run in an empty folder: no x86_64/libnrnmech.so is picked up.
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        for bid, model, n, threads, repeats in todo:
            repeats = args.repeats or repeats
            net_file = None
            if model == "ring":
                net_file = Path(tmp) / f"ring-{n}.json"
                net_file.write_text(json.dumps(M.ring_network(n, RING_SEED, RING_WEIGHT, RING_EXTRA_WEIGHT)))
            runs = {s: [] for s in sims}
            print(f"\n== {bid}: {describe(model, n, threads)}, {repeats} repeat(s)", flush=True)
            for r in range(repeats):
                for sim in sims:
                    res = measure(sim, model, n, threads, net_file, cwd)
                    runs[sim].append(res)
                    if "error" in res:
                        print(f"  [{r + 1}/{repeats}] {LABEL[sim]:13} FAILED: {res['error'][-300:]}", flush=True)
                    else:
                        print(f"  [{r + 1}/{repeats}] {LABEL[sim]:13} {res['wall']:8.3f} s  "
                              f"spikes {sum(res['spikes'])}", flush=True)
            b = summarise(bid, model, n, threads, runs, sims)
            for mine in OURS:
                for k in ("neuron", "arbor"):
                    v = b["sims"].get(mine, {}).get(f"speedup_vs_{k}")
                    if v is not None:
                        print(f"  speedup of {LABEL[mine]} over {LABEL[k]}: {v:.2f}x")
            for p in b["problems"]:
                print(f"  !!! {p}", flush=True)
                failed = True
            results.append(b)

    res = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mode": "quick" if args.quick else ("partial (--only)" if args.only else "full"),
        "machine": machine(),
        "versions": {"neuron": "9.0.2", "arbor": None if arbor_missing else "0.12.2"},
        "arbor_missing": arbor_missing,
        "aot_missing": aot_missing,
        "sims": sims,
        "setup_s": setup_s,
        "benchmarks_wall_s": round(time.perf_counter() - t_all, 1),
        "ring_network": {"seed": RING_SEED, "ring_weight_uS": RING_WEIGHT,
                         "extra_weight_uS": RING_EXTRA_WEIGHT},
        "benchmarks": results,
    }
    res["acceptance"] = acceptance(res)
    if args.load_time:
        # load_time.py builds with cargo into target/release and reads its
        # binaries from there, so it runs without our CARGO_TARGET_DIR.
        env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
        nrnivmodl = VENV / "bin" / "nrnivmodl"
        r = subprocess.run([sys.executable, str(BENCH / "load_time.py"), "--repeats", "2",
                            "--nrnivmodl", str(nrnivmodl)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            res["load_time"] = f"load_time.py failed: {r.stderr[-1000:]}"
            failed = True
        else:
            res["load_time"] = r.stdout
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    out.with_suffix(".md").write_text(md)
    print("\n" + md)
    print(f"results: {out.with_suffix('.json')}, {out.with_suffix('.md')}")
    if failed:
        print("\n!!! SOME CHECKS FAILED (see MISMATCH / failed above)", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
