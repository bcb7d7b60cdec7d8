#!/usr/bin/env bash
# server_bench.sh MEDIAGIT_BINARY -- push and clone of one large file
# (SIZE_MB of random data, default 2048) through `mediagit serve` on
# loopback, with the server's peak RSS (VmHWM) after each, against `cp` of
# the same packs (+ sync) in the same run. The server's memory must not
# grow with the size of what moves through it.
#   SIZE_MB=2048 ./scripts/server_bench.sh target/release/mediagit
set -euo pipefail
bin=$(realpath "${1:?usage: $0 MEDIAGIT_BINARY}")
W=${BENCH_DIR:-/tmp/serverbench}
size=${SIZE_MB:-2048}
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
rm -rf "$W"
mkdir -p "$W/srv" "$W/src"
head -c "$((size * 1024 * 1024))" /dev/urandom >"$W/src/take.mov"
"$bin" -q init "$W/src"
(cd "$W/src" && "$bin" -q add -A && "$bin" -q commit -m v1)
"$bin" serve --root "$W/srv" --bind 127.0.0.1:0 --create-on-push >"$W/serve.out" 2>"$W/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$W/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.*listening on //p' "$W/serve.out")/film
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status"; }
timed() { # NAME CMD...
  local name=$1 s e
  shift
  sync
  s=$(date +%s.%N)
  "$@" >/dev/null 2>"$W/cmd.err" || { echo "$name FAILED: $(tail -3 "$W/cmd.err")" >&2; exit 1; }
  sync
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
echo "server RSS at start: $(hwm) MiB"
t_push=$(cd "$W/src" && timed push "$bin" -q push "$url" main)
echo "push of $size MiB: $t_push s; server peak RSS $(hwm) MiB"
t_clone=$(timed clone "$bin" -q clone "$url" "$W/clone")
echo "clone: $t_clone s; server peak RSS $(hwm) MiB"
cmp "$W/src/take.mov" "$W/clone/take.mov" && echo "clone bytes equal"
t_cp=$(timed cp cp -r "$W/src/.mediagit/packs" "$W/cp-packs")
echo "| operation | wall (s) | × cp of the packs |"
echo "|---|---|---|"
echo "| push through the server | $t_push | $(echo "scale=2; $t_push / $t_cp" | bc -l) |"
echo "| clone through the server | $t_clone | $(echo "scale=2; $t_clone / $t_cp" | bc -l) |"
echo "| cp -r of the packs + sync | $t_cp | 1.00 |"
echo "server peak RSS over the run: $(hwm) MiB"
kill -TERM $pid
wait $pid || true
rm -rf "$W"
