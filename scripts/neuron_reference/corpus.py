"""Corpus reference data: each third-party mechanism alone on one compartment under NEURON 9.0.2.

Needs the corpus extracted first (`python3 scripts/fetch_corpus.py`, which
writes .cache/corpus/<package>/...; those .mod files are never committed).
Each folder holding .mod files is built with nrnivmodl in a temporary
directory; then, in a fresh NEURON process per folder (so that equal names in
different folders never meet), every mechanism of the folder is simulated:

* density mechanism (SUFFIX): soma L = diam = 20 um, nseg 1, the mechanism
  inserted alone, plus pas (g 1e-4, e -65) unless the mechanism itself has a
  leak NONSPECIFIC_CURRENT (named il, ileak, i_leak, il_*); ion
  concentrations at NEURON's defaults; IClamp 0.2 nA from 5 to 105 ms;
* POINT_PROCESS: the same soma with pas, the point process at soma(0.5) with
  default parameters, driven through a NetCon (delay 1, every weight 0.01) by
  a NetStim (interval 10, number 5, start 10, noise 0) when it has a
  NET_RECEIVE block, and no IClamp;
* ARTIFICIAL_CELL: the cell alone, driven the same way when it has a
  NET_RECEIVE block, its output spikes recorded.

All runs: 150 ms, dt 0.025, celsius 6.3, v_init -65, secondorder 0. Every
STATE, v, and the ion currents / inside concentrations present are recorded
each step and every 40th value (t = 0, 1, ..., 150 ms) is kept. Mechanisms
that need POINTERs, Vector play or similar set-up, that fail to build or
load, or give non-finite values get a file whose "status" says why.

Writes tests/data/neuron/corpus/<path of the .mod under .cache/corpus, without
.mod>.json (plus `__<mechanism>` before .json if a file defines several
mechanisms); the full path is needed because file stems repeat across folders.

A mechanism whose name is already built into NEURON cannot be loaded from a
library; if its file is byte-identical to NEURON's own source of that built-in
(share/nrn/modfile in the neuron wheel), the built-in is simulated (with a
note), else the file gets a failure status. A folder that does not build as a
whole is built file by file.

Usage: corpus.py [--corpus DIR]              (build and run everything)
       corpus.py --run LIB|- MOD... [--note]  (internal: fresh process per library)
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = REPO / "tests" / "data" / "neuron" / "corpus"
SAMPLE_EVERY = 40
LEAK_NAMES = re.compile(r"^(il|ileak|i_leak|il_\w+)$")


def strip_comments(text):
    """Drop NMODL comments (`: ...`, `? ...`, COMMENT ... ENDCOMMENT) and VERBATIM blocks."""
    text = re.sub(r"\bCOMMENT\b.*?\bENDCOMMENT\b", "", text, flags=re.S)
    text = re.sub(r"\bVERBATIM\b.*?\bENDVERBATIM\b", "", text, flags=re.S)
    return "\n".join(re.split(r"[:?]", line, maxsplit=1)[0] for line in text.splitlines())


def neuron_block(text):
    m = re.search(r"\bNEURON\s*\{(.*?)\}", text, flags=re.S)
    return m.group(1) if m else ""


def scan_mod(path):
    """What the runner needs to know about one .mod file, read from its NEURON block."""
    raw = path.read_text(errors="replace")
    text = strip_comments(raw)
    nb = neuron_block(text)
    info = {"mechs": [], "pointer": False, "net_receive": bool(re.search(r"\bNET_RECEIVE\b", text)),
            "nonspecific": [], "verbatim": "VERBATIM" in raw}
    for kind, word in (("density", "SUFFIX"), ("point_process", "POINT_PROCESS"),
                       ("artificial_cell", "ARTIFICIAL_CELL")):
        for m in re.finditer(rf"\b{word}\s+(\w+)", nb):
            info["mechs"].append((kind, m.group(1)))
    info["pointer"] = bool(re.search(r"\b(POINTER|BBCOREPOINTER)\b", nb))
    for m in re.finditer(r"\bNONSPECIFIC_CURRENT\s+([\w\s,]+)", nb):
        info["nonspecific"] += [n for n in re.split(r"[\s,]+", m.group(1).split("\n")[0]) if n]
    return info


def folders(corpus):
    """Folders that hold .mod files, as (package, folder) sorted by path."""
    out = {}
    for mod in sorted(corpus.rglob("*.mod")):
        rel = mod.relative_to(corpus)
        out.setdefault(mod.parent, rel.parts[0])
    return [(pkg, folder) for folder, pkg in sorted(out.items())]


def build(mods, workdir):
    """nrnivmodl in workdir on copies of the given .mod files (and their folder's .inc); returns (libpath or None, log)."""
    for mod in mods:
        shutil.copy(mod, workdir / mod.name)
        for inc in sorted(mod.parent.glob("*.inc")):
            shutil.copy(inc, workdir / inc.name)
    nrnivmodl = Path(sys.executable).parent / "nrnivmodl"
    names = sorted(p.name for p in workdir.glob("*.mod"))
    proc = subprocess.run([str(nrnivmodl)] + names, cwd=workdir, capture_output=True, text=True)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    libs = sorted(workdir.glob("*/libnrnmech.so")) + sorted(workdir.glob("*/.libs/libnrnmech.so"))
    if proc.returncode != 0 or not libs:
        return None, log
    return libs[0], log


def first_error(log):
    """The first compiler/nocmodl error line of a build log, for the status sentence."""
    for line in log.splitlines():
        if "error" in line.lower() and "CalledProcessError" not in line:
            return line.strip()[:300]
    return log.strip().splitlines()[-1][:300] if log.strip() else "(no output)"


def out_path(rel_mod, mech, multi):
    """tests/data/neuron/corpus/<mod path relative to .cache/corpus without .mod>[__<mech>].json."""
    rel = Path(rel_mod)
    name = f"{rel.stem}__{mech}" if multi else rel.stem
    return OUT / rel.parent / f"{name}.json"


def write_failure(corpus, package, mod, kind, mech, multi, status):
    from common import write_json  # noqa: E402  (needs NEURON only for its import of h)
    write_json(out_path(mod.relative_to(corpus), mech, multi), {
        "format_version": 1, "protocol": "corpus/" + mod.relative_to(corpus).with_suffix("").as_posix(), "script": "scripts/neuron_reference/corpus.py",
        "mod_file": mod.relative_to(corpus).as_posix(), "mechanism": mech, "kind": kind,
        "status": status, "traces": {}, "spikes": {},
    })


def run_one(corpus, package, mod, kind, mech, info, multi, note=None):
    """Simulate one mechanism and write its file; failures become a status sentence."""
    from common import Model, mech_var_names
    from neuron import h
    if info["pointer"]:
        return write_failure(corpus, package, mod, kind, mech, multi,
                             "not simulated: the mechanism declares a POINTER/BBCOREPOINTER that needs set-up")
    if kind == "artificial_cell" and mech in ("VecStim", "PatternStim"):
        return write_failure(corpus, package, mod, kind, mech, multi,
                             "not simulated: the cell needs a Vector to play (set-up beyond default parameters)")
    m = Model("corpus/" + mod.relative_to(corpus).with_suffix("").as_posix(), __file__, tstop=150)
    m.extra.update({"mod_file": mod.relative_to(corpus).as_posix(), "mechanism": mech, "kind": kind,
                    "sample_every": SAMPLE_EVERY})
    if note:
        m.notes.append(note)
    states = [(n, s) for n, s in mech_var_names(mech, 3)]
    skipped = [n for n, s in states if s != 1]
    states = [n for n, s in states if s == 1]
    if skipped:
        m.notes.append(f"array STATEs not recorded: {skipped}")
    if kind == "density":
        m.section("soma", nseg=1, L=20, diam=20)
        m.insert("soma", mech)
        leak = any(LEAK_NAMES.match(n) for n in info["nonspecific"])
        if not leak and mech != "pas":
            m.insert("soma", "pas", g=1e-4, e=-65)
        m.extra["with_pas"] = not leak and mech != "pas"
        m.point("stim", "IClamp", "soma", 0.5, delay=5, dur=100, amp=0.2)
        m.rec_v("soma", 0.5)
        for st in states:
            m.rec_mech("soma", 0.5, mech, strip(st, mech))
        m.rec_point("stim", "i")
        m.spikes("soma(0.5)")
    elif kind == "point_process":
        m.section("soma", nseg=1, L=20, diam=20)
        m.insert("soma", "pas", g=1e-4, e=-65)
        m.extra["with_pas"] = True
        m.point("pp", mech, "soma", 0.5)
        if info["net_receive"]:
            m.artcell("ns", "NetStim", interval=10, number=5, start=10, noise=0)
            nc = m.netcon("nc", "ns", "pp", delay=1)
            for i in range(int(nc.wcnt())):
                nc.weight[i] = 0.01
            m.spikes("ns")
        m.rec_v("soma", 0.5)
        for st in states:
            m.rec_point("pp", st)
        m.spikes("soma(0.5)")
    else:
        m.artcell("cell", mech)
        if info["net_receive"]:
            m.artcell("ns", "NetStim", interval=10, number=5, start=10, noise=0)
            nc = m.netcon("nc", "ns", "cell", delay=1)
            for i in range(int(nc.wcnt())):
                nc.weight[i] = 0.01
            m.spikes("ns")
        for st in states:
            m.rec_point("cell", st)
        m.spikes("cell")
    if kind != "artificial_cell":
        for ion in sorted(ionnames(h, m.sections["soma"])):
            for var in (f"i{ion}", f"{ion}i"):
                try:
                    m.rec_seg("soma", 0.5, var)
                except (AttributeError, NameError, TypeError):
                    pass
    m.run()
    try:
        res = m.result()
        res["status"] = "ok"
    except ValueError as e:
        res = m.result_unchecked()
        res["status"] = f"not usable: {e}"
        res["traces"] = {}
    for k, v in list(res["traces"].items()):
        res["traces"][k] = v[::SAMPLE_EVERY]
    from common import write_json
    write_json(out_path(mod.relative_to(corpus), mech, multi), res)


def strip(name, suffix):
    tail = "_" + suffix
    return name[: -len(tail)] if name.endswith(tail) else name


def ionnames(h, sec):
    from common import mech_names
    return [n[:-4] for n in mech_names(0) if n.endswith("_ion") and h.ismembrane(n, sec=sec)]


def run_mods(lib, mods, corpus, note=None):
    """In a fresh process: load lib (unless "-") and simulate every mechanism of the given .mod files."""
    sys.path.insert(0, str(HERE))
    from neuron import h
    if lib != "-":
        h.nrn_load_dll(str(lib))
    for mod in mods:
        package = mod.relative_to(corpus).parts[0]
        info = scan_mod(mod)
        multi = len(info["mechs"]) > 1
        if not info["mechs"]:
            write_failure(corpus, package, mod, None, None, False, "no SUFFIX/POINT_PROCESS/ARTIFICIAL_CELL found")
        for kind, mech in info["mechs"]:
            try:
                run_one(corpus, package, mod, kind, mech, info, multi, note)
            except Exception as e:  # a failure of one mechanism must not stop the others
                write_failure(corpus, package, mod, kind, mech, multi,
                              f"NEURON failed: {type(e).__name__}: {str(e).strip()[:300]}")


def spawn(lib, mods, corpus, note=None):
    """Run run_mods in a fresh process; files it did not reach get the crash reason as status."""
    cmd = [sys.executable, __file__, "--corpus", str(corpus), "--run", str(lib)] + [str(m) for m in mods]
    if note:
        cmd += ["--note", note]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    print(proc.stdout.strip())
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        print(f"runner exited {proc.returncode}: {reason}")
        for mod in mods:
            mechs = scan_mod(mod)["mechs"]
            for kind, mech in mechs:
                if not out_path(mod.relative_to(corpus), mech, len(mechs) > 1).exists():
                    write_failure(corpus, mod.relative_to(corpus).parts[0], mod, kind, mech, len(mechs) > 1,
                                  f"NEURON process exited with {proc.returncode}: {reason}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(REPO / ".cache" / "corpus"))
    ap.add_argument("--run", nargs="+", metavar="LIB MOD")
    ap.add_argument("--note")
    args = ap.parse_args()
    corpus = Path(args.corpus).resolve()
    sys.path.insert(0, str(HERE))
    if args.run:
        run_mods(args.run[0], [Path(p) for p in args.run[1:]], corpus, args.note)
        return
    if not corpus.is_dir():
        sys.exit(f"{corpus} missing: run python3 scripts/fetch_corpus.py first")
    from common import mech_names
    builtin = set(mech_names(0)) | set(mech_names(1))
    builtin_src = corpus / "neuron-9.0.2" / "neuron" / ".data" / "share" / "modfile"
    if OUT.exists():
        shutil.rmtree(OUT)
    for package, folder in folders(corpus):
        loadable, same_as_builtin = [], []
        for mod in sorted(folder.glob("*.mod")):
            mechs = scan_mod(mod)["mechs"]
            clash = [m for _, m in mechs if m in builtin]
            if not clash:
                loadable.append(mod)
                continue
            src = builtin_src / mod.name
            if src.exists() and src.read_bytes() == mod.read_bytes():
                same_as_builtin.append(mod)
            else:
                for kind, mech in mechs:
                    write_failure(corpus, package, mod, kind, mech, len(mechs) > 1,
                                  f"not simulated: {', '.join(clash)} is a NEURON built-in name, so NEURON refuses "
                                  "to load this different definition (\"The user defined name already exists\")")
        if same_as_builtin:
            spawn("-", same_as_builtin, corpus,
                  "NEURON 9.0.2's built-in mechanism was simulated: it is compiled from this same file "
                  "(byte-identical to share/nrn/modfile), and a library redefining a built-in name cannot be loaded.")
        if not loadable:
            continue
        with tempfile.TemporaryDirectory(prefix="nrn-corpus-") as tmp:
            lib, log = build(loadable, Path(tmp))
            if lib is not None:
                spawn(lib, loadable, corpus)
                continue
        # the folder does not build as a whole: build and run file by file
        for mod in loadable:
            with tempfile.TemporaryDirectory(prefix="nrn-corpus-") as tmp:
                lib, log = build([mod], Path(tmp))
                if lib is not None:
                    spawn(lib, [mod], corpus)
                    continue
                mechs = scan_mod(mod)["mechs"] or [(None, None)]
                for kind, mech in mechs:
                    write_failure(corpus, package, mod, kind, mech, len(mechs) > 1,
                                  "nrnivmodl (NEURON 9.0.2) failed: " + first_error(log))


if __name__ == "__main__":
    main()
