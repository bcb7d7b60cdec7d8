#!/usr/bin/env bash
# resume_bench.sh MEDIAGIT_BINARY [DIR] -- the cost of re-running an `add`
# that was killed (SIGKILL) or interrupted (SIGINT, Ctrl-C) part way, as a
# ratio of one uninterrupted add of the same tree, measured in one run.
# Tree: 7 random 400 MB clips (2.8 GB, incompressible like video) and 200
# small files. Each round: a full add into a fresh repository (time T),
# then a fresh repository whose add is stopped at 30 % / 60 % of T, and the
# re-run timed (R). Prints a markdown table of R/T per stop point.
#   cargo build --release -p mediagit-cli
#   ./scripts/resume_bench.sh target/release/mediagit
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MEDIAGIT_BINARY [DIR]" >&2; exit 2; }
bin=$(realpath "$1")
dir=${2:-/tmp/mediagit-resume}
rounds=${ROUNDS:-3}
mkdir -p "$dir"
cd "$dir"
export MEDIAGIT_AUTHOR_NAME=b MEDIAGIT_AUTHOR_EMAIL=b@example.invalid
if [ ! -d tree ]; then
  mkdir -p tree/video tree/text
  for i in $(seq 1 7); do head -c 400000000 /dev/urandom > "tree/video/clip$i.mov"; done
  for i in $(seq 1 200); do echo "note $i" > "tree/text/n$i.txt"; done
  sleep 2 # older than the racy margin
fi
now() { date +%s.%N; }
fresh() {
  rm -rf r
  mkdir r
  cp -al tree/. r/ # hard links: no copy (they move each file's ctime)
  (cd r && "$bin" init . >/dev/null)
  sleep 1.2 # settle past the racy margin, as files long on disk are
}
# Warm the page cache.
cat tree/video/* > /dev/null
echo "| round | stop | signal | full add T (s) | stopped after (s) | re-run R (s) | R/T | stderr of the stopped run |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  fresh
  sync # no writeback of an earlier run competes with the timed one
  t0=$(now); (cd r && "$bin" add -A); t1=$(now)
  full=$(echo "$t1 - $t0" | bc -l)
  for frac in 0.3 0.6; do
    for sig in KILL INT; do
      fresh
      sync
      stop=$(echo "$full * $frac" | bc -l)
      s0=$(now)
      (cd r && exec "$bin" add -A) 2>stopped.err &
      pid=$!
      sleep "$stop"
      kill -s "$sig" "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      s1=$(now)
      sync
      t0=$(now); (cd r && "$bin" add -A 2>/dev/null); t1=$(now)
      re=$(echo "$t1 - $t0" | bc -l)
      msg=$(grep -m1 "^error" stopped.err | cut -c1-90 || true)
      printf "| %s | %s%% | %s | %.2f | %.2f | %.2f | %.2f | %s |\n" "$round" \
        "$(echo "$frac * 100" | bc -l | cut -d. -f1)" "$sig" "$full" \
        "$(echo "$s1 - $s0" | bc -l)" "$re" "$(echo "$re / $full" | bc -l)" "$msg"
    done
  done
done
