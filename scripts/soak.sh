#!/usr/bin/env bash
# The soak: M rounds (default 50, at most --minutes 30) of creating a batch of RedisInstances,
# injecting random simulator faults (5xx, 409, throttling, lost responses, visibility lag,
# latency), SIGKILLing the operator at a random moment and restarting it, and deleting some
# objects. The seeded dice mix in (after one round of each kind) rounds with
#   name-collision      two objects with one instance name (one namespace or two), an object
#                       adopting an instance another records, user Secrets with the names of
#                       a connection Secret and of a password record, a create rejected for good;
#   secrets-first       objects with their own account and password Secrets, which are deleted
#                       before the objects;
#   namespace-deletion  a namespace with objects and Secrets deleted (kube-controller-manager
#                       runs with the test control plane, so the namespace really goes);
#   frozen-leader       two replicas on one Lease, the leader SIGSTOPped past its lease while the
#                       other takes over, then SIGCONTed;
#   no-deleting-status  the cloud lists an instance being deleted with its old status.
# Then checks the invariants: no stuck finalizer or namespace, every object Ready or failed with
# its reason, one cloud instance per object, no instance without its object unless Retain, no
# instance recorded by two objects, no foreign Secret modified, no cloud call by a replica that
# lost its lease, deletes per instance <= 1 + lost delete answers (lost by the cloud, or by an
# operator killed in between), at most one create per object
# and generation after a definite rejection. Prints rounds by kind, kills, faults, each
# invariant's checks and violations. Exits 1 on any violation.
#
#   scripts/soak.sh [--rounds 50] [--minutes 30] [--batch 4] [--seed 7] [--converge-seconds 240]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo bench --locked --bench soak -- "$@"
