#!/usr/bin/env bash
# The account-isolation benchmark: account B's N objects (default 200) brought to Ready alone,
# next to N objects of an account A the simulator throttles (429 on every call), and next to N
# objects of an account A whose every call is slow; prints B's time to Ready in each case and
# A's calls.
#
#   scripts/bench-accounts.sh [--n 200] [--slow-ms 3000]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo bench --locked --bench accounts -- "$@"
