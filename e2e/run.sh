#!/usr/bin/env bash
# End-to-end tests against a real control plane (etcd + kube-apiserver, see
# controlplane/README.md): builds the harness (cached), starts it, runs the
# `e2e_*` test binaries of crates/rampart with the kubeconfig exported as
# RAMPART_E2E_KUBECONFIG, and stops it. Fails loudly if the control plane
# cannot be built or started: there is no silent skip.
#
#   e2e/run.sh                    # every e2e test
#   e2e/run.sh e2e_webhook        # one test binary (cargo --test pattern)
#   e2e/run.sh e2e_controller -- leader   # and a test name filter
#
# Environment: KUBECTL (default kubectl), READY_TIMEOUT (s, default 180),
# RAMPART_E2E_CACHE (harness build cache, see controlplane/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

pattern="${1:-e2e_*}"
shift || true
[[ "${1:-}" == "--" ]] && shift
filters=("$@")

export KUBECTL="${KUBECTL:-kubectl}"
command -v "$KUBECTL" >/dev/null || { echo "e2e: FAIL: kubectl ($KUBECTL) not found" >&2; exit 1; }
# Go's default install location, when a non-login shell has not put it on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "e2e: FAIL: go not found (needed to build the control plane)" >&2; exit 1; }

t0=$(date +%s)
echo "== e2e: building the control plane (cached after the first build)"
bin=$(e2e/controlplane/build.sh)
t1=$(date +%s)
echo "e2e: control plane binary $bin ($((t1 - t0)) s)"

echo "== e2e: building the tests"
cargo test -p rampart --locked --test "$pattern" --no-run 2>&1 | tail -n 3
t2=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-e2e.XXXXXX")
mkfifo "$work/stdin"
"$bin" --kubeconfig-out "$work/kubeconfig" <"$work/stdin" >"$work/stdout" 2>"$work/stderr" &
cp_pid=$!
# Keep the control plane's stdin open; closing it (or our death) stops it.
exec 3>"$work/stdin"

stop() {
  local rc=$?
  exec 3>&- || true
  if kill -0 "$cp_pid" 2>/dev/null; then
    kill -TERM "$cp_pid" 2>/dev/null || true
    wait "$cp_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

deadline=$(( $(date +%s) + ${READY_TIMEOUT:-180} ))
until grep -q '^READY ' "$work/stdout"; do
  if ! kill -0 "$cp_pid" 2>/dev/null; then
    echo "e2e: FAIL: the control plane exited before READY; its stderr:" >&2
    tail -n 40 "$work/stderr" >&2
    exit 1
  fi
  if (( $(date +%s) > deadline )); then
    echo "e2e: FAIL: the control plane was not READY within ${READY_TIMEOUT:-180} s; its stderr:" >&2
    tail -n 40 "$work/stderr" >&2
    exit 1
  fi
  sleep 0.2
done
t3=$(date +%s)
echo "e2e: $(grep '^READY ' "$work/stdout") ($((t3 - t2)) s)"

export RAMPART_E2E_KUBECONFIG="$work/kubeconfig"
echo "== e2e: tests"
set +e
cargo test -p rampart --locked --test "$pattern" -- --ignored --test-threads=2 "${filters[@]}"
rc=$?
set -e
t4=$(date +%s)
echo "e2e: harness build $((t1 - t0)) s, test build $((t2 - t1)) s, control plane start $((t3 - t2)) s, tests $((t4 - t3)) s"
if (( rc != 0 )); then
  echo "e2e: FAIL (exit $rc); last lines of the control plane's stderr:" >&2
  tail -n 20 "$work/stderr" >&2
fi
exit "$rc"
