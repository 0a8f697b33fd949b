#!/usr/bin/env bash
# Builds the conformance tools, the other people's code that computes what GitOps users see, from
# the Go module proxy into the per-machine cache of scripts/control-plane-tools.sh, once per
# version and source, under a lock. Prints the directory holding the binaries on stdout
# (everything else goes to stderr):
#
#   export CDS_CONFORMANCE_TOOLS=$(scripts/conformance-tools.sh)
#
#   kstatus        tools/kstatus/main.go on sigs.k8s.io/cli-utils/pkg/kstatus/status (Flux, kpt,
#                  cli-utils' appliers): an object as JSON on stdin -> its status and message.
#   argocd-health  tools/argocd-health/main.go on Argo CD's own util/lua and gitops-engine's
#                  pkg/health: runs a check's health_test.yaml, or evaluates a check on an object.
#
# Argo CD's go.mod replaces the k8s staging modules and its own gitops-engine (./gitops-engine),
# so `go install` cannot build it: a throwaway wrapper module requires argo-cd/v3, points
# gitops-engine/v3 at its published module of the same version and copies Argo CD's other
# replace lines. Argo CD 3.6 declares `go 1.27.0`; when the local toolchain is older (GOTOOLCHAIN
# stays local: no toolchain is downloaded) the build uses copies of the two modules whose go
# directive is lowered to the local version, and rewrites the one Go 1.27 construct on the import
# path of util/lua (see backport_go127; it is not on the Lua path). Nothing else changes, and the
# script says so on stderr. With Go >= 1.27 the modules are built as published.
#
# Settings (environment):
#   CDS_TOOLS_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cds-redis-operator)
#   CLI_UTILS_VERSION sigs.k8s.io/cli-utils version (default 0.37.2)
#   ARGOCD_VERSION    github.com/argoproj/argo-cd/v3 version (default 3.6.1)
set -euo pipefail

CLI_UTILS_VERSION=${CLI_UTILS_VERSION:-0.37.2}
ARGOCD_VERSION=${ARGOCD_VERSION:-3.6.1}
CACHE=${CDS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cds-redis-operator}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { printf '[conformance-tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is required to build the conformance tools"; exit 1; }
export GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}
GO_LOCAL=$(go env GOVERSION | sed -n 's/^go\([0-9]*\.[0-9]*\).*/\1/p')

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# A source change rebuilds: the directory name carries the version and a hash of the program.
src_hash() { sha256sum "$ROOT/tools/$1/main.go" | cut -c1-12; }

# module_dir MODULE@VERSION: the module's directory in the module cache, downloading it. A module
# whose go directive is above the local toolchain is still downloaded, but `go mod download`
# then reports an error and no Dir: fall back to the cache's path.
module_dir() {
  local dir
  dir=$(cd "$CACHE" && go mod download -json "$1" 2>/dev/null | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
  if [ -z "$dir" ]; then
    dir="$(go env GOMODCACHE)/${1%@*}@${1#*@}"
  fi
  [ -f "$dir/go.mod" ] || { log "cannot download $1"; return 1; }
  echo "$dir"
}

# local_copy DIR DEST NAME: a writable copy of module NAME whose go directive does not exceed
# the local toolchain (lowered, and said so, when it does).
local_copy() {
  local from=$1 to=$2 name=$3 want
  cp -r "$from" "$to"
  chmod -R u+w "$to"
  want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$to/go.mod")
  if [ "$(printf '%s\n%s\n' "$want" "$GO_LOCAL" | sort -V | tail -1)" != "$GO_LOCAL" ]; then
    log "$name: go directive $want lowered to $GO_LOCAL (the local toolchain)"
    sed -i "s/^go $want\$/go $GO_LOCAL/; /^toolchain /d" "$to/go.mod"
  fi
}

build_kstatus() {
  local out=$1 work
  work=$(mktemp -d "$CACHE/.build-kstatus-XXXXXX")
  log "building kstatus on sigs.k8s.io/cli-utils v$CLI_UTILS_VERSION"
  printf 'module cds-redis-operator.local/kstatus\n\ngo %s\n' "$GO_LOCAL" >"$work/go.mod"
  cp "$ROOT/tools/kstatus/main.go" "$work/"
  (cd "$work" \
    && go get "sigs.k8s.io/cli-utils@v$CLI_UTILS_VERSION" >&2 \
    && go mod tidy >&2 \
    && go build -trimpath -o "$work/bin/kstatus" . >&2) || { rm -rf "$work"; return 1; }
  mkdir -p "$out"
  mv "$work/bin/kstatus" "$out/"
  rm -rf "$work"
}

# backport_go127 DIR: Go 1.27 lets a composite literal set the fields of an embedded struct
# (`corev1.Secret{Name: ...}`); Argo CD 3.6 does it once on util/lua's import path, in
# util/kube/util.go (a helper that creates or updates a Secret). Rewrite that literal to the
# explicit `ObjectMeta: metav1.ObjectMeta{...}` form, which means the same; fail when the text is
# not as expected (another version: look again).
backport_go127() {
  local f=$1/util/kube/util.go
  perl -0pi -e 's/&corev1\.Secret\{\n(\s*Name:\s+name,\n\s*Namespace:\s+ns,\n\s*Labels:\s+ku\.labels,\n\s*Annotations:\s+ku\.annotations,\n)(\s*)\}/&corev1.Secret{ObjectMeta: metav1.ObjectMeta{\n$1$2}}/' "$f"
  grep -q '&corev1.Secret{ObjectMeta: metav1.ObjectMeta{' "$f" \
    || { log "$f: the Go 1.27 literal to backport is not where expected"; return 1; }
  log "argo-cd util/kube/util.go: one Go 1.27 struct literal (embedded fields) written in Go $GO_LOCAL syntax"
}

build_argocd_health() {
  local out=$1 work argo engine
  work=$(mktemp -d "$CACHE/.build-argocd-XXXXXX")
  log "building argocd-health on github.com/argoproj/argo-cd/v3 v$ARGOCD_VERSION (util/lua); a cold build takes 10-20 minutes"
  argo=$(module_dir "github.com/argoproj/argo-cd/v3@v$ARGOCD_VERSION") \
    && engine=$(module_dir "github.com/argoproj/argo-cd/gitops-engine/v3@v$ARGOCD_VERSION") \
    || { rm -rf "$work"; return 1; }
  local_copy "$argo" "$work/argo-cd" "argo-cd/v3@v$ARGOCD_VERSION"
  local_copy "$engine" "$work/gitops-engine" "argo-cd/gitops-engine/v3@v$ARGOCD_VERSION"
  if [ "$(printf '%s\n1.27\n' "$GO_LOCAL" | sort -V | head -1)" != 1.27 ]; then
    backport_go127 "$work/argo-cd" || { rm -rf "$work"; return 1; }
  fi
  {
    echo "module cds-redis-operator.local/argocdhealth"
    echo
    echo "go $GO_LOCAL"
    echo
    echo "require github.com/argoproj/argo-cd/v3 v$ARGOCD_VERSION"
    echo
    echo "replace github.com/argoproj/argo-cd/v3 => ./argo-cd"
    echo "replace github.com/argoproj/argo-cd/gitops-engine/v3 => ./gitops-engine"
    # Argo CD's own replace lines (the k8s staging modules and a few pins), less its local ones.
    echo "replace ("
    sed -n '/^replace (/,/^)/{/=>/p}' "$work/argo-cd/go.mod" | grep -v '=> \./'
    echo ")"
  } >"$work/go.mod"
  cp "$ROOT/tools/argocd-health/main.go" "$work/"
  (cd "$work" \
    && go mod tidy >&2 \
    && go build -trimpath -o "$work/bin/argocd-health" . >&2) || { rm -rf "$work"; return 1; }
  mkdir -p "$out"
  mv "$work/bin/argocd-health" "$out/"
  rm -rf "$work"
}

BIN="$CACHE/bin"
kstatus_dir="$BIN/kstatus-cli-utils-$CLI_UTILS_VERSION-$(src_hash kstatus)"
[ -x "$kstatus_dir/kstatus" ] || build_kstatus "$kstatus_dir"
argocd_dir="$BIN/argocd-health-$ARGOCD_VERSION-$(src_hash argocd-health)"
[ -x "$argocd_dir/argocd-health" ] || build_argocd_health "$argocd_dir"

# One directory of symlinks per combination.
tools="$BIN/conformance-$(basename "$kstatus_dir")-$(basename "$argocd_dir")"
mkdir -p "$tools"
ln -sfn "$kstatus_dir/kstatus" "$tools/kstatus"
ln -sfn "$argocd_dir/argocd-health" "$tools/argocd-health"
echo "$tools"
