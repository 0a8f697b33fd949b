#!/usr/bin/env bash
# Runs every test, on a fresh machine too: installs missing system packages, builds (or reuses
# the cached) control plane binaries, then runs the unit and integration tests, including those
# on the real kube-apiserver.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
echo "[test] control plane binaries: $KUBEBUILDER_ASSETS ($(( $(date +%s) - started ))s)" >&2

# Every test target; the benchmarks are separate commands (scripts/bench.sh, scripts/soak.sh).
cargo test --locked --lib --bins --tests --examples "$@"
echo "[test] all tests done in $(( $(date +%s) - started ))s" >&2
