#!/usr/bin/env bash
# Simulation speed of AOT kernels (nrnivmodl-rs library) against JIT kernels
# on the hh benchmark, in one process, interleaved.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp mechanisms/mod/*.mod "$work/"
cargo build -q --release -p nrnivmodl-rs -p mechanisms --example aot_vs_jit
(cd "$work" && "$OLDPWD/target/release/nrnivmodl-rs" >/dev/null)
for cells in 100 1000; do
  target/release/examples/aot_vs_jit "$work/x86_64/libnrnmech.so" "$cells"
done
