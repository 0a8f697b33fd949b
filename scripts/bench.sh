#!/usr/bin/env bash
# The scale benchmark: for N RedisInstances (default 100, 1000 and 5000) on the real control plane
# and the simulator, prints time to Ready and to deleted, cloud calls per object and per minute in
# steady state, Kubernetes writes per object, operator peak RSS and CPU, an operator restart (SIGKILL)
# with N Ready objects, and the apiserver floor (the same writes from a minimal client), with floors
# and ratios.
#
#   scripts/bench.sh [--n 100,1000,5000] [--steady-secs 180] [--steady-poll-secs 30]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo bench --locked --bench scale -- "$@"
