#!/usr/bin/env bash
# large_files_bench.sh MEDIAGIT_BINARY [DIR] -- the other end of issue 13's
# scaling: FILES files of random (incompressible) data totalling TOTAL_GB
# (default 200 files, 20 GB; use less where the disk cannot hold the data
# twice), then add -A, commit, status (settled), log, checkout (the working
# tree's files deleted, then `checkout --force HEAD`), gc --prune=now and
# fsck, each timed with /usr/bin/time: wall seconds, MB/s over the data,
# peak RSS. Memory must not grow with the size of a file.
#   ./scripts/large_files_bench.sh target/release/mediagit [DIR]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MEDIAGIT_BINARY [DIR]" >&2; exit 2; }
bin=$(realpath "$1")
dir=${2:-/tmp/mediagit-large}
files=${FILES:-200}
total_gb=${TOTAL_GB:-20}
export MEDIAGIT_AUTHOR_NAME=b MEDIAGIT_AUTHOR_EMAIL=b@example.invalid
rm -rf "$dir"
mkdir -p "$dir/t"
per=$((total_gb * 1024 / files)) # MiB per file
echo "== $files files of $per MiB of random data in $dir/t" >&2
for i in $(seq -w 1 "$files"); do
  head -c "$((per * 1024 * 1024))" /dev/urandom >"$dir/t/clip_$i.bin"
done
sync
bytes=$(du -sb "$dir/t" | cut -f1)
"$bin" init -q "$dir/t"
echo "| command | wall (s) | MB/s | peak RSS (MiB) |"
echo "|---|---|---|---|"
measure() { # NAME CMD...
  local name=$1 secs rss
  shift
  sync
  (cd "$dir/t" && /usr/bin/time -o "$dir/cmd.time" -f "%e %M" "$@" >/dev/null 2>"$dir/cmd.err") ||
    { echo "$name FAILED: $(tail -3 "$dir/cmd.err")" >&2; exit 1; }
  read -r secs rss < <(tail -1 "$dir/cmd.time")
  echo "| $name | $secs | $(echo "scale=0; $bytes / 1000000 / ($secs + 0.001)" | bc -l) | $((rss / 1024)) |"
}
measure "add -A" "$bin" -q add -A
measure "commit" "$bin" -q commit -m v1
measure "status" "$bin" status
measure "log" "$bin" --no-pager log
find "$dir/t" -maxdepth 1 -name 'clip_*.bin' -delete
measure "checkout --force HEAD" "$bin" -q checkout --force HEAD
measure "gc --prune=now" "$bin" -q gc --prune=now
measure "fsck" "$bin" -q fsck
echo "data: $bytes bytes in $files files" >&2
