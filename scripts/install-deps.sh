#!/usr/bin/env bash
# Installs the system packages the tests use, if missing (idempotent): redis-server (a real Redis
# behind simulated instances) and shellcheck (actionlint checks the workflows' scripts with it).
# Needs root or sudo.
set -euo pipefail
log() { printf '[install-deps] %s\n' "$*" >&2; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
# actionlint checks the workflows' run: scripts with shellcheck, as GitHub's runners do.
command -v shellcheck >/dev/null || missing+=(shellcheck)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "need root (or sudo) to install: ${missing[*]}"; exit 1; }
  SUDO=sudo
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
