#!/usr/bin/env bash
# The shards benchmark: N RedisInstances (default 5000) brought to Ready and deleted by one
# operator process, then by three (the default process and shards a and b, objects split evenly
# by the cds.capitalonline.net/shard label), on the real control plane and the simulator; prints
# time to Ready and to deleted, and per process the time its part took, peak RSS and CPU.
#
#   scripts/bench-shards.sh [--n 5000] [--processes 1,3]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo bench --locked --bench shards -- "$@"
