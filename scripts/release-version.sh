#!/usr/bin/env bash
# Prints the one version of this repository after checking that every place names it: Cargo.toml,
# the chart's version and appVersion, the chart's default image tag (empty: the appVersion), the
# Dockerfile's VERSION, and the latest entry of CHANGELOG.md. With --tag vX.Y.Z (the release
# workflow passes the pushed tag), also checks that the tag is that version and that its
# CHANGELOG entry is dated. Exits non-zero, saying what differs, otherwise.
#
#   scripts/release-version.sh                # 0.1.0
#   scripts/release-version.sh --tag v0.1.0   # 0.1.0, or why v0.1.0 cannot be released
set -euo pipefail
cd "$(dirname "$0")/.."

tag=""
case "${1:-}" in
  --tag) tag=${2:?usage: release-version.sh [--tag vX.Y.Z]} ;;
  "") ;;
  *) echo "usage: release-version.sh [--tag vX.Y.Z]" >&2; exit 2 ;;
esac

unquote() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/'; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || { echo "no version in Cargo.toml" >&2; exit 1; }

failed=0
check() { # check WHAT VALUE
  if [ "$2" != "$version" ]; then
    echo "$1 is '$2', Cargo.toml says '$version'" >&2
    failed=1
  fi
}
check "charts/cds-redis-operator/Chart.yaml version" \
  "$(sed -n 's/^version:\(.*\)$/\1/p' charts/cds-redis-operator/Chart.yaml | unquote)"
check "charts/cds-redis-operator/Chart.yaml appVersion" \
  "$(sed -n 's/^appVersion:\(.*\)$/\1/p' charts/cds-redis-operator/Chart.yaml | unquote)"
# image.tag in values.yaml: empty means the appVersion.
image_tag=$(awk '/^image:/ { in_image = 1; next } /^[^[:space:]#]/ { in_image = 0 }
  in_image && /^  tag:/ { sub(/^  tag:/, ""); print; exit }' charts/cds-redis-operator/values.yaml | unquote)
[ -z "$image_tag" ] || check "the chart's default image tag (values.yaml image.tag)" "$image_tag"
check "the Dockerfile's ARG VERSION" "$(sed -n 's/^ARG VERSION=\(.*\)$/\1/p' Dockerfile | head -n1)"
changelog_line=$(grep -m1 -E '^## \[[0-9]' CHANGELOG.md || true)
check "the latest CHANGELOG.md entry" "$(printf '%s' "$changelog_line" | sed -n 's/^## \[\([^]]*\)\].*/\1/p')"

if [ -n "$tag" ]; then
  check "the tag $tag" "${tag#v}"
  [ "${tag#v}" != "$tag" ] || { echo "the tag $tag does not start with v" >&2; failed=1; }
  if ! printf '%s' "$changelog_line" | grep -qE '^## \[[^]]+\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$'; then
    echo "CHANGELOG.md: date the entry of $version before tagging it ('## [$version] - YYYY-MM-DD'," \
      "found '$changelog_line')" >&2
    failed=1
  fi
fi
[ "$failed" -eq 0 ] || exit 1
echo "$version"
