#!/usr/bin/env bash
# Benchmark of `rampart serve`: a release server with the full Pod Security
# Standards (restricted, enforce+warn+audit), every best-practice rule (warn),
# image rules, exec protection and all mutations, driven by the hyper+rustls
# load generator (crates/rampart-webhook/examples/loadgen.rs) over TLS with
# keep-alive, at 1, 10 and 100 connections. A fresh server per level, so
# peak RSS (VmHWM) is per level. Server-side latency comes from the server's
# own histogram (rampart_admission_request_duration_seconds).
#
#   bench/admission.sh                    # 10 s per level
#   DURATION=30s LEVELS="1 10 100 200" bench/admission.sh
#   SERVE_ARGS="--no-decision-log" bench/admission.sh   # extra `rampart serve` flags
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
LEVELS=${LEVELS:-"1 10 100"}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
SERVER_THREADS=${SERVER_THREADS:-2}
PORT=${PORT:-18443}
METRICS_PORT=${METRICS_PORT:-19090}

cargo build --release -q -p rampart
cargo build --release -q -p rampart-webhook --features test-support --example loadgen
RAMPART=target/release/rampart
LOADGEN=target/release/examples/loadgen

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$LOADGEN" pki "$work"

cat > "$work/config.yaml" <<'YAML'
bestPractices: {mode: warn}
rules: {image-tag-latest: warn}
images:
  allowedRegistries: [ghcr.io/acme, docker.io]
  requireDigestIn: [team-a]
mutations:
  alwaysPullImages: true
  securityContext: true
  defaultResources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
  defaultTolerationSeconds: 300
  podNodeSelector: true
  untrustedRuntimeClass: kata
YAML

cat > "$work/namespaces.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: team-a
    labels:
      pod-security.kubernetes.io/enforce: restricted
      pod-security.kubernetes.io/warn: restricted
      pod-security.kubernetes.io/audit: restricted
- apiVersion: v1
  kind: Namespace
  metadata:
    name: team-b
    labels: {pod-security.kubernetes.io/warn: baseline, pod-security.kubernetes.io/audit: restricted}
    annotations: {scheduler.alpha.kubernetes.io/node-selector: "pool=general"}
- apiVersion: v1
  kind: Namespace
  metadata: {name: team-c, labels: {rampart.dev/enforce: baseline, rampart.dev/untrusted: "true"}}
YAML

cat > "$work/pods.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: api-0, namespace: team-a}, spec: {containers: [{name: app, image: ghcr.io/acme/api:1}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: priv-0, namespace: team-a}, spec: {containers: [{name: app, image: ghcr.io/acme/api:1, securityContext: {privileged: true}}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: debug, namespace: team-b}, spec: {hostPID: true, containers: [{name: app, image: busybox:1}]}}
YAML

printf '%-6s %10s %9s %9s %9s %11s %11s %11s %10s\n' conns reviews/s p50_us p99_us p99.9_us srv_p50_us srv_p99_us srv_p99.9_us rss_MiB
for c in $LEVELS; do
  "$RAMPART" serve --addr "127.0.0.1:$PORT" --metrics-addr "127.0.0.1:$METRICS_PORT" \
    --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    --config "$work/config.yaml" --namespaces "$work/namespaces.yaml" --pods "$work/pods.yaml" \
    --worker-threads "$SERVER_THREADS" --max-connections 4096 ${SERVE_ARGS:-} 2> "$work/server-$c.log" &
  server_pid=$!
  for _ in $(seq 200); do grep -q '"message":"ready"' "$work/server-$c.log" 2>/dev/null && break; sleep 0.05; done
  grep -q '"message":"ready"' "$work/server-$c.log" || { cat "$work/server-$c.log"; exit 1; }
  out=$("$LOADGEN" --addr "127.0.0.1:$PORT" --ca "$work/ca.pem" --metrics "127.0.0.1:$METRICS_PORT" \
    --connections "$c" --duration "$DURATION" --warmup 1s --threads "$LOADGEN_THREADS")
  hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  get() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$out"; }
  printf '%-6s %10s %9s %9s %9s %11s %11s %11s %10.1f\n' "$c" "$(get rps)" "$(get p50_us)" "$(get p99_us)" "$(get p999_us)" \
    "$(get server_p50_us)" "$(get server_p99_us)" "$(get server_p999_us)" "$(echo "$hwm_kb / 1024" | bc -l)"
  decisions=$(grep -c '"target":"rampart::decision"' "$work/server-$c.log" || true)
  echo "       ($out; decision lines logged: $decisions)" >&2
done
echo "machine: $(nproc) cores; server worker threads: $SERVER_THREADS; load generator threads: $LOADGEN_THREADS; $DURATION per level"
