#!/usr/bin/env bash
# Policy evaluation throughput: compile time per policy, and evaluations per
# second of 1, 20 and 200 CEL ClusterPolicies (1-3 validations each) on a
# typical pod, single-threaded, plus a request no policy matches.
#
# usage: bench/policy.sh [SECONDS_PER_CASE]   (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "building the benchmark (release)..." >&2
cargo build --release --quiet -p rampart-policy --example policy-bench
target/release/examples/policy-bench "${1:-2}"
