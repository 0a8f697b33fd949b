#!/usr/bin/env bash
# The soak: M rounds (default 50, at most --minutes 30) of creating a batch of RedisInstances,
# injecting random simulator faults (5xx, 409, throttling, lost responses, visibility lag,
# latency), SIGKILLing the operator at a random moment and restarting it, and deleting some
# objects; then checks the invariants (exactly one cloud instance per live object, no instance
# without an object unless Retain, no stuck finalizer, every object Ready or failed with a
# reason) and prints rounds, kills, faults and violations. Exits 1 on any violation.
#
#   scripts/soak.sh [--rounds 50] [--minutes 30] [--batch 4] [--seed 7]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo bench --locked --bench soak -- "$@"
