#!/usr/bin/env python3
"""Load-time benchmark: JIT-loading a folder of 20 .mod files with nrnrs, and
building it with nrnivmodl-rs, against building the same folder with NEURON
9.0.2's nrnivmodl, in the same run on the same machine: cold builds, and
incremental builds after one file changed.

    python3 bench/load_time.py [--repeats N] [--nrnivmodl PATH]

The folder is made from 20 VERBATIM-free files of the registry corpus
(scripts/fetch_corpus.py fetches it into .cache/corpus; this script runs it
if needed) and copied to .cache/bench/load20/. Timed:

- nrnrs: `codegen --example jit_load` loads every file into a fresh model
  (parse, resolve, lower, validate, cranelift, register), in process,
  N repetitions; the binary is built first, untimed.
- nrnivmodl-rs: the release binary in a fresh copy of the folder (cold),
  then again after appending a comment line to Kd.mod (incremental,
  comment), then again after changing a constant of Kd.mod's rate
  procedure, `hTau = 1500` to `1501` (incremental, kernel edit), wall clock.
  The comment changes the file's content (and so the fingerprint the
  library records), not its kernels; the kernel edit changes generated code.
- NEURON: `nrnivmodl` in a fresh copy of the folder (cold build: no
  previous output), then after the same two one-file changes, wall clock.

NEURON comes from $NRNIVMODL, or .venv-neuron/bin/nrnivmodl, or a virtual
environment this script creates in .venv-neuron with `pip install
neuron==9.0.2`. Results: bench/results/load_time.json and a Markdown table on
stdout.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / ".cache" / "corpus"
BMTK = "bmtk-1.2.0/bmtk/utils/scripts/bionet/mechanisms/modfiles"
HNN = "hnn-core-0.6.1/hnn_core-0.6.1/hnn_core/mod"
FILES = [f"{BMTK}/{n}.mod" for n in (
    "CaDynamics", "Ca_HVA", "Ca_LVA", "Ih", "Im", "Im_v2", "K_P", "K_T", "Kd",
    "Kv2like", "Kv3_1", "NaTa", "NaTs", "Nap", "SK")] + [
    f"{HNN}/{n}.mod" for n in ("ar", "ca", "cad", "cat", "hh2")]


def nrnivmodl_path(explicit):
    for cand in (explicit, os.environ.get("NRNIVMODL"),
                 ROOT / ".venv-neuron" / "bin" / "nrnivmodl"):
        if cand and Path(cand).exists():
            return Path(cand)
    venv = ROOT / ".venv-neuron"
    print("creating .venv-neuron with neuron==9.0.2 ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "neuron==9.0.2"], check=True)
    return venv / "bin" / "nrnivmodl"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--nrnivmodl")
    args = ap.parse_args()
    if not CORPUS.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_corpus.py")], check=True)
    folder = ROOT / ".cache" / "bench" / "load20"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for f in FILES:
        shutil.copy(CORPUS / f, folder / Path(f).name)
    assert len(list(folder.glob("*.mod"))) == 20

    subprocess.run(["cargo", "build", "-q", "--release", "-p", "codegen", "--example", "jit_load"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "nrnivmodl-rs"], cwd=ROOT, check=True)
    exe = ROOT / "target" / "release" / "examples" / "jit_load"
    ours_exe = ROOT / "target" / "release" / "nrnivmodl-rs"
    nrn = nrnivmodl_path(args.nrnivmodl)

    def timed_build(cmd, work):
        t0 = time.perf_counter()
        r = subprocess.run([str(cmd)], cwd=work, capture_output=True, text=True)
        elapsed = (time.perf_counter() - t0) * 1e3
        if r.returncode != 0:
            sys.exit(f"{cmd} failed:\n{r.stdout}\n{r.stderr}")
        return elapsed

    def cold_and_incremental(cmd):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "mods"
            shutil.copytree(folder, work)
            cold = timed_build(cmd, work)
            with open(work / "Kd.mod", "a") as f:
                f.write("\n: edited\n")
            comment = timed_build(cmd, work)
            kd = (work / "Kd.mod").read_text()
            assert "hTau = 1500" in kd
            (work / "Kd.mod").write_text(kd.replace("hTau = 1500", "hTau = 1501"))
            kernel = timed_build(cmd, work)
            return cold, comment, kernel

    ours, theirs = [], []
    builds = {"nrnivmodl-rs": ([], [], []), "nrnivmodl": ([], [], [])}
    for _ in range(max(1, args.repeats)):
        for name, cmd in (("nrnivmodl-rs", ours_exe), ("nrnivmodl", nrn)):
            for series, ms in zip(builds[name], cold_and_incremental(cmd)):
                series.append(ms)
        # Interleaved: one nrnrs measurement (itself the median of 5 loads),
        # then one cold nrnivmodl build.
        out = subprocess.run([str(exe), str(folder), "5"], capture_output=True, text=True, check=True)
        ours.append(statistics.median(json.loads(out.stdout)["times_ms"]))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "mods"
            shutil.copytree(folder, work)
            t0 = time.perf_counter()
            r = subprocess.run([str(nrn)], cwd=work, capture_output=True, text=True)
            elapsed = (time.perf_counter() - t0) * 1e3
            if r.returncode != 0:
                sys.exit(f"nrnivmodl failed:\n{r.stdout}\n{r.stderr}")
            theirs.append(elapsed)

    result = {
        "files": 20,
        "folder": [Path(f).name for f in FILES],
        "nrnrs_jit_load_ms": {"median": statistics.median(ours), "min": min(ours), "max": max(ours),
                              "samples": ours},
        "nrnivmodl_cold_ms": {"median": statistics.median(theirs), "min": min(theirs),
                              "max": max(theirs), "samples": theirs},
        "speedup": statistics.median(theirs) / statistics.median(ours),
        "builds_ms": {name: {kind: {"median": statistics.median(x), "min": min(x),
                                    "max": max(x), "samples": x}
                             for kind, x in zip(("cold", "comment", "kernel"), series)}
                      for name, series in builds.items()},
        "machine": {"cpus": os.cpu_count()},
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "load_time.json").write_text(json.dumps(result, indent=1) + "\n")
    o, t = result["nrnrs_jit_load_ms"], result["nrnivmodl_cold_ms"]
    print("| 20 mod files | median | min | max |")
    print("|---|---|---|---|")
    print(f"| nrnrs JIT load | {o['median']:.1f} ms | {o['min']:.1f} ms | {o['max']:.1f} ms |")
    print(f"| NEURON 9.0.2 nrnivmodl (cold) | {t['median']:.0f} ms | {t['min']:.0f} ms | {t['max']:.0f} ms |")
    print(f"\nnrnrs is {result['speedup']:.0f}x faster; target: JIT load under 50 ms "
          f"({'met' if o['median'] < 50 else 'NOT met'}).")
    b = result["builds_ms"]
    print("\n| build of 20 mod files (median, min-max) | cold | incremental: comment added to one file "
          "| incremental: one constant of one kernel changed |")
    print("|---|---|---|---|")
    for name in ("nrnivmodl-rs", "nrnivmodl"):
        cells = [f"{b[name][k]['median']:.0f} ms ({b[name][k]['min']:.0f}-{b[name][k]['max']:.0f})"
                 for k in ("cold", "comment", "kernel")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    r = {k: b["nrnivmodl"][k]["median"] / b["nrnivmodl-rs"][k]["median"]
         for k in ("cold", "comment", "kernel")}
    result["build_speedup"] = r
    (out_dir / "load_time.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nnrnivmodl-rs is {r['cold']:.1f}x faster cold, {r['comment']:.1f}x faster after a comment "
          f"edit and {r['kernel']:.1f}x faster after a kernel edit (targets: faster cold, at least 10x "
          f"incrementally: {'met' if r['cold'] > 1 and min(r['comment'], r['kernel']) >= 10 else 'NOT met'}).")


if __name__ == "__main__":
    main()
