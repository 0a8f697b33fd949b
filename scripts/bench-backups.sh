#!/usr/bin/env bash
# The daily-backups benchmark: N RedisInstances (default 1000), each with a RedisBackupSchedule
# firing once a day at a minute a little ahead; prints the backup cloud calls while waiting for
# the slot, the time from the slot until every backup is Completed, calls per backup, calls per
# minute once completed, and the operator's peak RSS.
#
#   scripts/bench-backups.sh [--n 1000] [--steady-secs 120]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo bench --locked --bench backups -- "$@"
