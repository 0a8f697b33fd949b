#!/usr/bin/env bash
# Builds actionlint (github.com/rhysd/actionlint) from the Go module proxy into the same per-machine
# cache as the control plane tools, once per version, under a lock; prints the binary's path on
# stdout (everything else goes to stderr). The test suite runs it over .github/workflows/:
#
#   "$(scripts/actionlint.sh)" .github/workflows/*.yml
#
# actionlint also runs shellcheck on `run:` scripts when shellcheck is on PATH (it is on GitHub's
# runners; apt-get install shellcheck elsewhere).
#
# Settings (environment):
#   CDS_TOOLS_CACHE      cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cds-redis-operator)
#   ACTIONLINT_VERSION   actionlint version (default 1.7.12)
set -euo pipefail

ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-1.7.12}
CACHE=${CDS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cds-redis-operator}
out="$CACHE/bin/actionlint-$ACTIONLINT_VERSION"

log() { printf '[actionlint] %s\n' "$*" >&2; }

if ! [ -x "$out/actionlint" ]; then
  command -v go >/dev/null || { log "go is required to build actionlint"; exit 1; }
  export GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock-actionlint"
  flock 9
  if ! [ -x "$out/actionlint" ]; then
    log "building actionlint v$ACTIONLINT_VERSION (about a minute)"
    work=$(mktemp -d "$CACHE/.build-actionlint-XXXXXX")
    GOBIN="$work" go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION" >&2 \
      || { rm -rf "$work"; exit 1; }
    mkdir -p "$out"
    mv "$work/actionlint" "$out/"
    rm -rf "$work"
  fi
fi
echo "$out/actionlint"
