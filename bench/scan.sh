#!/usr/bin/env bash
# Throughput of `rampart scan` on a generated corpus, side by side with
# parsing alone (Rampart's own loader) and with Checkov's Kubernetes framework.
#
# usage: bench/scan.sh [DOCUMENTS]   (default 10000)
# env:   CHECKOV=path/to/checkov     (default: installed into target/bench/venv from PyPI)
#        SKIP_CHECKOV=1              (only when comparing Rampart builds)
set -euo pipefail
cd "$(dirname "$0")/.."

docs=${1:-10000}
work=target/bench/scan
corpus=$work/corpus-$docs
mkdir -p "$work"

if [ ! -d "$corpus" ]; then
  python3 bench/gen_corpus.py "$corpus" "$docs" 20 >&2
fi
bytes=$(du -sb "$corpus" | cut -f1)

echo "building release binaries..." >&2
cargo build --release --quiet -p rampart --bin rampart
cargo build --release --quiet -p rampart-manifest --example parse-only
rampart=target/release/rampart
parse_only=target/release/examples/parse-only

# Runs a command N times; prints "best-wall-seconds peak-rss-MiB".
measure() {
  local n=$1; shift
  local best="" rss=0 out
  for _ in $(seq "$n"); do
    out=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1)
    local t=${out% *} kib=${out#* }
    if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
    if [ "$kib" -gt "$rss" ]; then rss=$kib; fi
  done
  echo "$best $(echo "$rss / 1024" | bc -l)"
}

row() {
  local name=$1; shift
  local m seconds rss
  m=$(measure "$@")
  seconds=${m% *}; rss=${m#* }
  printf '%-34s %9.2f s %12.0f docs/s %9.1f MiB\n' "$name" "$seconds" "$(echo "$docs / $seconds" | bc -l)" "$rss"
}

command -v bc >/dev/null || { echo "bench/scan.sh needs bc (apt-get install bc)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/scan.sh needs GNU time (apt-get install time)" >&2; exit 1; }

echo "corpus: $docs documents, $(ls "$corpus" | wc -l) files, $((bytes / 1024)) KiB; $(nproc) cores"
printf '%-34s %11s %19s %13s\n' tool "wall" throughput "peak RSS"

row "parse only (rampart-manifest)" 5 "$parse_only" "$corpus"
row "rampart scan -o json" 5 "$rampart" scan -o json "$corpus"
row "rampart scan -o sarif" 5 "$rampart" scan -o sarif "$corpus"
row "rampart scan (1 thread)" 5 env RAYON_NUM_THREADS=1 "$rampart" scan -o json "$corpus"

if [ "${SKIP_CHECKOV:-}" != 1 ]; then
  checkov=${CHECKOV:-}
  if [ -z "$checkov" ]; then
    venv=target/bench/venv
    if [ ! -x "$venv/bin/checkov" ]; then
      echo "installing checkov into $venv..." >&2
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet checkov >&2
    fi
    checkov=$venv/bin/checkov
  fi
  echo "checkov $("$checkov" --version 2>/dev/null)" >&2
  # One run: Checkov takes minutes on this corpus.
  row "checkov --framework kubernetes" 1 "$checkov" -d "$corpus" --framework kubernetes --quiet --compact -o json
fi
