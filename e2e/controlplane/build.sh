#!/usr/bin/env bash
# Builds the control-plane binary (embedded etcd + kube-apiserver) once per
# source hash and prints its path on stdout. Later runs with the same sources
# print the cached path without building.
#
#   bin=$(e2e/controlplane/build.sh)
#
# Cache dir: ${RAMPART_E2E_CACHE:-$HOME/.cache/rampart-e2e}. The hash covers the
# Go toolchain version, this script, go.mod, go.sum and every *.go file here.
# The first build compiles kube-apiserver: several minutes and ~1 GiB of module
# cache plus ~1.5 GiB of Go build cache (see README.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
cd "$here"
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { echo "build.sh: ERROR: no Go toolchain found (need Go >= 1.26)" >&2; exit 1; }

cache="${RAMPART_E2E_CACHE:-$HOME/.cache/rampart-e2e}"
mkdir -p "$cache"
# Serialise concurrent builds (parallel test processes): the second one waits
# and then finds the binary. The lock is taken on every run, cached or not, so
# that the re-exec below is exercised by every run and cannot hide behind a
# warm cache (it once re-executed a relative $0 after the cd above).
if [[ -z "${_RAMPART_E2E_LOCKED:-}" ]]; then
  command -v flock >/dev/null 2>&1 || { echo "build.sh: ERROR: flock not found (Debian package util-linux)" >&2; exit 1; }
  export _RAMPART_E2E_LOCKED=1
  exec flock "$cache/.build.lock" "$self" "$@"
fi
unset _RAMPART_E2E_LOCKED

hash=$(
  {
    go version
    for f in build.sh go.mod go.sum $(LC_ALL=C ls -- *.go); do
      printf '== %s\n' "$f"
      cat -- "$f"
    done
  } | sha256sum | cut -c1-16
)
out="$cache/controlplane-$hash"

if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi

# Stamp the Kubernetes version into the binary the way release builds do, so
# /version reports e.g. v1.37.2 instead of v0.0.0-master.
k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
if [[ ! "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
  echo "build.sh: ERROR: unexpected k8s.io/kubernetes version '$k8s_version' in go.mod" >&2
  exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

echo "build.sh: building $out (kube-apiserver $k8s_version; the first build takes several minutes)" >&2
start=$(date +%s)
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
GOFLAGS="-trimpath -mod=readonly ${GOFLAGS:-}" go build -ldflags="$ldflags" -o "$tmp" .
mv -f "$tmp" "$out"
trap - EXIT
echo "build.sh: built in $(($(date +%s) - start))s, $(du -h "$out" | cut -f1)" >&2

# Keep the three newest binaries; older ones belong to previous pins/sources.
# shellcheck disable=SC2012
ls -1t "$cache"/controlplane-* 2>/dev/null | grep -v '\.tmp\.' | tail -n +4 | while read -r old; do
  rm -f -- "$old"
done
echo "$out"
