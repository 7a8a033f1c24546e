#!/usr/bin/env bash
# Runs .ci/run as a new machine would: on a fresh `git clone` of HEAD, with
# empty Go, cargo and control-plane caches, so nothing a warm cache holds can
# hide a broken install or build step (a relative re-exec in build.sh once
# passed on every warm machine and failed on every new one).
#
#   e2e/from-zero.sh [DIR]     # default: a new temporary directory
#
# Keeps DIR (the clone, the caches and ci.log) for inspection; prints the
# wall time and exit code of .ci/run. Needs network access to the package
# registries (crates.io, the Go module proxy) and ~6 GB of disk.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$(mktemp -d "${TMPDIR:-/tmp}/rampart-from-zero.XXXXXX")}"
mkdir -p "$dir"/{e2e-cache,gocache,gomodcache,cargo-home}
[[ -e "$dir/rampart" ]] && { echo "from-zero: $dir/rampart exists; give an empty directory" >&2; exit 2; }
git clone -q "$repo" "$dir/rampart"
echo "from-zero: clone of $(git -C "$dir/rampart" log --oneline -1) in $dir/rampart" >&2
start=$(date +%s)
set +e
(
  cd "$dir/rampart"
  CI=true \
    RAMPART_E2E_CACHE="$dir/e2e-cache" \
    GOCACHE="$dir/gocache" \
    GOMODCACHE="$dir/gomodcache" \
    CARGO_HOME="$dir/cargo-home" \
    bash .ci/run </dev/null >"$dir/ci.log" 2>&1
)
rc=$?
set -e
echo "from-zero: .ci/run exited $rc after $(($(date +%s) - start)) s; log: $dir/ci.log" >&2
tail -n 5 "$dir/ci.log" >&2
exit "$rc"
