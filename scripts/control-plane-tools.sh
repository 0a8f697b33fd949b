#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kubectl, etcd) and helm from the Go module proxy
# into a per-machine cache, once per version, under a lock. Prints the directory holding the
# binaries on stdout (everything else goes to stderr), so callers can do:
#
#   export KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
#
# If KUBEBUILDER_ASSETS already names a directory with kube-apiserver, kube-controller-manager, etcd
# and kubectl, those are used and only helm is built when it is missing there. (setup-envtest's
# directories lack kube-controller-manager, which the garbage-collection tests need: then
# everything is built here.)
#
# Settings (environment):
#   CDS_TOOLS_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cds-redis-operator)
#   KUBE_VERSION      Kubernetes version (default 1.37.2; falls back to 1.35.4 if it cannot build)
#   ETCD_VERSION      etcd version (default 3.6.16)
#   HELM_VERSION      helm version (default 4.3.1)
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
KUBE_FALLBACK_VERSION=1.35.4
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-4.3.1}
CACHE=${CDS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cds-redis-operator}

log() { printf '[control-plane-tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is required to build the control plane"; exit 1; }
# The Go toolchain must not be swapped behind our back; the wrapper modules pin their own go line.
export GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

has_assets() {
  [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -x "$1/kubectl" ] && [ -x "$1/kube-controller-manager" ]
}

# build_kube VERSION OUTDIR: kube-apiserver, kube-controller-manager (garbage collection, namespace
# deletion) and kubectl from a wrapper module that replaces every
# staging module (required upstream as v0.0.0 => ./staging/...) with its published v0.X.Y.
build_kube() {
  local v=$1 out=$2 minor work mod
  minor=${v#*.}; minor=${minor%%.*}
  work=$(mktemp -d "$CACHE/.build-kube-XXXXXX")
  log "building kube-apiserver, kube-controller-manager and kubectl v$v in $work (a cold build takes 15-25 minutes)"
  mod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -n "$mod" ] && [ -f "$mod" ] || { log "cannot download k8s.io/kubernetes@v$v"; return 1; }
  {
    echo "module cds-redis-operator.local/kubebuild"
    grep -E '^go [0-9]' "$mod"
    sed -n '/^godebug (/,/^)/p; /^godebug [^(]/p' "$mod"
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 v0.'"${v#1.}"'#p' "$mod"
    echo ")"
  } >"$work/go.mod"
  local ldflags="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$work" \
    && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$v" "k8s.io/kubernetes/cmd/kubectl@v$v" \
         "k8s.io/kubernetes/cmd/kube-controller-manager@v$v" >&2 \
    && go build -trimpath -pgo=off -tags selinux,notest -ldflags "$ldflags" -o "$work/bin/" \
         k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
         k8s.io/kubernetes/cmd/kube-controller-manager >&2) || { rm -rf "$work"; return 1; }
  mkdir -p "$out"
  mv "$work/bin/kube-apiserver" "$work/bin/kubectl" "$work/bin/kube-controller-manager" "$out/"
  rm -rf "$work"
}

# build_etcd VERSION OUTDIR: the server module has replace lines, so build it as a tool of a wrapper.
build_etcd() {
  local v=$1 out=$2 work
  work=$(mktemp -d "$CACHE/.build-etcd-XXXXXX")
  log "building etcd v$v"
  printf 'module cds-redis-operator.local/etcdbuild\n\ngo 1.25\n' >"$work/go.mod"
  (cd "$work" \
    && go get -tool "go.etcd.io/etcd/server/v3@v$v" >&2 \
    && go build -trimpath -o "$work/bin/etcd" go.etcd.io/etcd/server/v3 >&2) || { rm -rf "$work"; return 1; }
  mkdir -p "$out"
  mv "$work/bin/etcd" "$out/"
  rm -rf "$work"
}

build_helm() {
  local v=$1 out=$2 major=${1%%.*}
  log "building helm v$v"
  mkdir -p "$out"
  GOBIN="$out" go install -trimpath "helm.sh/helm/v$major/cmd/helm@v$v" >&2
}

BIN="$CACHE/bin"
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && has_assets "$KUBEBUILDER_ASSETS"; then
  assets=$KUBEBUILDER_ASSETS
  log "using KUBEBUILDER_ASSETS=$assets"
else
  kube_dir="$BIN/kube-$KUBE_VERSION"
  if ! [ -x "$kube_dir/kube-apiserver" ] || ! [ -x "$kube_dir/kubectl" ] \
     || ! [ -x "$kube_dir/kube-controller-manager" ]; then
    if ! build_kube "$KUBE_VERSION" "$kube_dir"; then
      log "kube v$KUBE_VERSION did not build; falling back to v$KUBE_FALLBACK_VERSION"
      kube_dir="$BIN/kube-$KUBE_FALLBACK_VERSION"
      [ -x "$kube_dir/kube-apiserver" ] || build_kube "$KUBE_FALLBACK_VERSION" "$kube_dir"
    fi
  fi
  etcd_dir="$BIN/etcd-$ETCD_VERSION"
  [ -x "$etcd_dir/etcd" ] || build_etcd "$ETCD_VERSION" "$etcd_dir"
  # One directory of symlinks per combination, in the KUBEBUILDER_ASSETS layout.
  assets="$BIN/assets-$(basename "$kube_dir")-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
  mkdir -p "$assets"
  ln -sfn "$kube_dir/kube-apiserver" "$assets/kube-apiserver"
  ln -sfn "$kube_dir/kubectl" "$assets/kubectl"
  ln -sfn "$kube_dir/kube-controller-manager" "$assets/kube-controller-manager"
  ln -sfn "$etcd_dir/etcd" "$assets/etcd"
fi

if ! [ -x "$assets/helm" ]; then
  helm_dir="$BIN/helm-$HELM_VERSION"
  [ -x "$helm_dir/helm" ] || build_helm "$HELM_VERSION" "$helm_dir"
  if [ -w "$assets" ]; then ln -sfn "$helm_dir/helm" "$assets/helm"; fi
fi
has_assets "$assets" || { log "the control plane binaries are incomplete in $assets"; exit 1; }
echo "$assets"
