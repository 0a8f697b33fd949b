#!/usr/bin/env bash
# Regenerates the committed generated files: crds/ from the Rust types. A test fails when they
# are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked -- crd > crds/redisinstances.cds.capitalonline.net.yaml
echo "regenerated crds/" >&2
