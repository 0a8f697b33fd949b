#!/usr/bin/env bash
# Prints the plain manifests (namespace cds-system, default values, CRD included) rendered from
# the chart with the given helm binary. Used by scripts/generate.sh and by the staleness test.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM=${1:?usage: render-manifests.sh HELM}
cat <<'HEADER'
# Plain manifests for `kubectl apply --server-side -f`, rendered from charts/cds-redis-operator
# with its default values by scripts/generate.sh (do not edit; a test fails when stale).
# Give the operator credentials with:
#   kubectl -n cds-system create secret generic cds-credentials \
#     --from-literal=accessKeyId=... --from-literal=accessKeySecret=...
# and rendered with credentials.existingSecret=cds-credentials below.
---
apiVersion: v1
kind: Namespace
metadata:
  name: cds-system
HEADER
"$HELM" template cds-redis-operator charts/cds-redis-operator --namespace cds-system --include-crds \
  --kube-version 1.37.2 --set credentials.existingSecret=cds-credentials
