#!/usr/bin/env bash
# Smoke test of the e2e control plane: build (cached), start, use it with
# kubectl, stop it with SIGTERM, then start a second one and stop it by closing
# its stdin. Exits non-zero with a "smoke: FAIL: ..." message on any failure.
#
#   e2e/controlplane/smoke.sh            (needs kubectl on PATH, or KUBECTL=...)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KUBECTL=${KUBECTL:-kubectl}
READY_TIMEOUT=${READY_TIMEOUT:-120}

work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-smoke.XXXXXX")
pid=""
cp_dir=""

passed=0
say() { echo "smoke: $*" >&2; }
ok() { say "ok: $*"; passed=$((passed + 1)); }
fail() {
  echo "smoke: FAIL: $*" >&2
  if [[ -s "$work/stderr" ]]; then
    echo "smoke: --- control plane stderr (last 40 lines) ---" >&2
    tail -n 40 "$work/stderr" | sed 's/^/  | /' >&2
  fi
  exit 1
}
cleanup() {
  local rc=$?
  exec 3>&- 2>/dev/null || true
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

command -v "$KUBECTL" >/dev/null 2>&1 || fail "kubectl not found (set KUBECTL=/path/to/kubectl)"

say "building (cached)"
bin=$("$here/build.sh") || fail "build.sh failed"
[[ -x "$bin" ]] || fail "build.sh printed '$bin', which is not an executable"

# start NAME: starts the control plane with a FIFO on stdin that this shell
# holds open as fd 3; sets pid, cp_dir, kubeconfig; waits for READY.
start() {
  local name=$1
  rm -f "$work/stdin" "$work/stdout" "$work/stderr"
  mkfifo "$work/stdin"
  kubeconfig="$work/$name.kubeconfig"
  "$bin" --kubeconfig-out "$kubeconfig" <"$work/stdin" >"$work/stdout" 2>"$work/stderr" &
  pid=$!
  exec 3>"$work/stdin"
  local t0=$SECONDS ready=""
  while ((SECONDS - t0 < READY_TIMEOUT)); do
    ready=$(grep -m1 '^READY ' "$work/stdout" || true)
    [[ -n "$ready" ]] && break
    kill -0 "$pid" 2>/dev/null || { wait "$pid" && rc=0 || rc=$?; pid=""; fail "$name: control plane exited (status $rc) before READY"; }
    sleep 0.2
  done
  [[ -n "$ready" ]] || fail "$name: no READY line within ${READY_TIMEOUT}s"
  ok "$name: $ready"
  [[ $(wc -l <"$work/stdout") -eq 1 ]] || fail "$name: stdout has more than the READY line: $(cat "$work/stdout")"
  cp_dir=$(sed -n 's/.* dir=\([^ ]*\).*/\1/p' <<<"$ready")
  local kc
  kc=$(sed -n 's/.* kubeconfig=\([^ ]*\).*/\1/p' <<<"$ready")
  [[ "$kc" == "$kubeconfig" && -s "$kubeconfig" ]] || fail "$name: READY line names kubeconfig '$kc', expected non-empty $kubeconfig"
  [[ -d "$cp_dir" ]] || fail "$name: work dir '$cp_dir' from the READY line does not exist"
}

# wait_exit NAME: waits up to 60s for the control plane to exit; it must exit 0
# and remove its work dir.
wait_exit() {
  local name=$1 rc
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$name: control plane still running 60s after being told to stop"
  wait "$pid" && rc=0 || rc=$?
  pid=""
  [[ $rc -eq 0 ]] || fail "$name: control plane exited with status $rc (expected 0)"
  grep -q 'stopped cleanly' "$work/stderr" || fail "$name: no 'stopped cleanly' in its stderr"
  [[ ! -e "$cp_dir" ]] || fail "$name: work dir $cp_dir was not removed"
  ok "$name: exited 0, work dir removed"
}

k() { "$KUBECTL" --kubeconfig "$kubeconfig" --request-timeout=30s "$@"; }

# --- 1: SIGTERM -------------------------------------------------------------
start first

k get ns >"$work/ns.txt" || fail "kubectl get ns"
grep -q '^default ' "$work/ns.txt" || fail "kubectl get ns: no 'default' namespace: $(cat "$work/ns.txt")"
grep -q '^kube-system ' "$work/ns.txt" || fail "kubectl get ns: no 'kube-system' namespace"
ok "kubectl get ns ($(($(wc -l <"$work/ns.txt") - 1)) namespaces)"

k create namespace smoke >/dev/null || fail "kubectl create namespace smoke"
ok "kubectl create namespace smoke"

cat >"$work/pod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: smoke
  namespace: smoke
spec:
  containers:
  - name: pause
    image: registry.k8s.io/pause:3.10
    securityContext:
      privileged: true
EOF
k apply -f "$work/pod.yaml" >/dev/null || fail "kubectl apply pod"
phase=$(k -n smoke get pod smoke -o jsonpath='{.status.phase}') || fail "kubectl get pod"
[[ "$phase" == "Pending" ]] || fail "pod phase is '$phase', expected Pending (no nodes)"
ok "kubectl apply pod (phase $phase; privileged allowed)"

can=$(k auth can-i '*' '*') || fail "kubectl auth can-i '*' '*' answered '$can'"
[[ "$can" == "yes" ]] || fail "kubectl auth can-i '*' '*' answered '$can'"
ok "kubectl auth can-i '*' '*': $can"

# Admission policy machinery is on (ValidatingAdmissionPolicy admission plugin
# and API): a policy denying ConfigMaps labelled smoke=deny must take effect.
cat >"$work/vap.yaml" <<'EOF'
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: smoke-deny
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: "!has(object.metadata.labels) || !('smoke' in object.metadata.labels) || object.metadata.labels['smoke'] != 'deny'"
    message: "denied by smoke-deny"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: smoke-deny
spec:
  policyName: smoke-deny
  validationActions: [Deny]
EOF
k apply -f "$work/vap.yaml" >/dev/null || fail "kubectl apply ValidatingAdmissionPolicy"
cat >"$work/cm-deny.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: vap-deny
  namespace: smoke
  labels: {smoke: deny}
EOF
# The policy is enforced once the apiserver's policy informer has synced it.
denied=""
for _ in $(seq 1 100); do
  if out=$(k create --dry-run=server -f "$work/cm-deny.yaml" 2>&1); then
    sleep 0.2
    continue
  fi
  grep -q 'denied by smoke-deny' <<<"$out" || fail "ValidatingAdmissionPolicy: unexpected error: $out"
  denied=yes
  break
done
[[ -n "$denied" ]] || fail "ValidatingAdmissionPolicy was not enforced within 20s"
k -n smoke create configmap vap-allow --from-literal=a=b >/dev/null || fail "ValidatingAdmissionPolicy denied an unlabelled ConfigMap"
ok "ValidatingAdmissionPolicy enforced"

kill -TERM "$pid"
wait_exit first

# --- 2: stdin EOF (what happens when a parent test process dies) -------------
start second
k get ns default >/dev/null || fail "second: kubectl get ns default"
ok "second: kubectl get ns default"
exec 3>&-
wait_exit second

echo "smoke: $passed passed, 0 failed"
