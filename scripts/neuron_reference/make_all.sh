#!/usr/bin/env bash
# Regenerate every NEURON 9.0.2 reference file under tests/data/neuron/.
# Creates the venv .venv-neuron (neuron==9.0.2, numpy) if it is missing.
# Usage: scripts/neuron_reference/make_all.sh [--no-corpus]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${NEURON_VENV:-$repo/.venv-neuron}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import neuron, numpy" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install "neuron==9.0.2" numpy
fi
py="$venv/bin/python"
version="$("$py" -c 'from neuron import h; print(h.nrnversion())' 2>/dev/null)"
case "$version" in
    *"VERSION 9.0.2 "*) ;;
    *) echo "need NEURON 9.0.2, found: $version" >&2; exit 1 ;;
esac
cd "$repo"
"$py" "$here/geometry.py"
"$py" "$here/hh_tests.py"
"$py" "$here/issue4.py"
"$py" "$here/check.py"
if [ "${1:-}" != "--no-corpus" ]; then
    python3 scripts/fetch_corpus.py
    "$py" "$here/corpus.py"
fi
