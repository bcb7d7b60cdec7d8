#!/usr/bin/env bash
# scale_bench.sh MEDIAGIT_BINARY [DIR] -- time per file and peak memory of
# the everyday commands as a tree of small files grows (SIZES, default
# "10000 100000 1000000"), with git on the same tree for add and status.
# Each size: N files of 20..2000 bytes in directories of 1,000, then
#   add -A, commit, status (settled, unchanged), log, checkout (the
#   working tree deleted, then `checkout --force HEAD`), gc --prune=now, fsck
# timed with /usr/bin/time (wall seconds, peak RSS). Prints a markdown table:
# per command and size, wall time, microseconds per file, peak RSS in MiB.
#   cargo build --release -p mediagit-cli
#   ./scripts/scale_bench.sh target/release/mediagit
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MEDIAGIT_BINARY [DIR]" >&2; exit 2; }
bin=$(realpath "$1")
dir=${2:-/tmp/mediagit-scale}
sizes=${SIZES:-"10000 100000 1000000"}
mkdir -p "$dir"
cd "$dir"
export MEDIAGIT_AUTHOR_NAME=b MEDIAGIT_AUTHOR_EMAIL=b@example.invalid
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid
rows=()
measure() { # NAME N WORKDIR CMD...
  local name=$1 n=$2 wd=$3 secs rss
  shift 3
  if ! (cd "$wd" && /usr/bin/time -o "$dir/cmd.time" -f "%e %M" "$@" >/dev/null 2>"$dir/cmd.err"); then
    echo "  $name N=$n FAILED: $(tail -3 "$dir/cmd.err")" >&2
  fi
  read -r secs rss < <(tail -1 "$dir/cmd.time")
  rows+=("| $name | $n | $secs | $(echo "scale=1; $secs * 1000000 / $n" | bc -l) | $((rss / 1024)) |")
  echo "  $name N=$n: ${secs}s, $((rss / 1024)) MiB" >&2
}
for n in $sizes; do
  echo "== $n files" >&2
  rm -rf "t$n" "g$n"
  mkdir -p "t$n"
  python3 - "$n" "t$n" <<'PY'
import os, sys, random
n, root = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(n)
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}.txt"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(20, 2000)))
PY
  cp -a "t$n" "g$n"
  sleep 2 # settled: older than either tool's racy margin
  (cd "t$n" && "$bin" init . >/dev/null)
  # No background auto-gc/maintenance of git's copy during the timings.
  (cd "g$n" && git init -q . && git config core.untrackedCache false &&
    git config gc.auto 0 && git config maintenance.auto false)
  measure "mediagit add -A" "$n" "t$n" "$bin" add -A
  measure "git add -A" "$n" "g$n" git add -A
  measure "mediagit commit" "$n" "t$n" "$bin" commit -m one
  (cd "g$n" && git commit -q -m one)
  sleep 2
  "$bin" -C "t$n" status >/dev/null # first status refreshes racy entries
  git -C "g$n" status >/dev/null
  measure "mediagit status" "$n" "t$n" "$bin" status
  measure "git status" "$n" "g$n" git status
  measure "mediagit log" "$n" "t$n" "$bin" log
  rm -rf "t$n"/d*
  measure "mediagit checkout --force HEAD" "$n" "t$n" "$bin" checkout --force HEAD
  measure "mediagit gc --prune=now" "$n" "t$n" "$bin" gc --prune=now
  measure "mediagit fsck" "$n" "t$n" "$bin" fsck
  rm -rf "g$n"
done
echo "| command | files | wall (s) | µs per file | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
