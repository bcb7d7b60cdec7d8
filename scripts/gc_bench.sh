#!/usr/bin/env bash
# gc on the media corpus, issue 13's two cases, in one run:
#   0%:  the corpus committed, then edit_corpus.sh applied and committed
#        (every old version is still reachable: nothing to collect);
#   10%: the corpus plus random files of a tenth of its bytes added in the
#        same `add` (so they share its packs), then those files deleted and
#        the deletion staged before the first commit (garbage inside the
#        packs, the case that needs reading and rewriting).
# Each: `gc --prune=now` timed, what it says it read and rewrote, the
# store's pack bytes before and after; and as the reference, in the same
# run, `cp -a` of the same packs and a `sync` (what a gc that rewrites
# every pack at least copies and makes durable, as gc does).
#   usage: scripts/gc_bench.sh path/to/mediagit [CORPUS]
#   CORPUS default /tmp/encbench/corpus (../shared/bench/gen_corpus.sh DIR)
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 path/to/mediagit [CORPUS]}")
CORPUS=$(realpath "${2:-/tmp/encbench/corpus}")
W=${BENCH_DIR:-/tmp/gcbench}
EDIT=$(dirname "$0")/../../shared/bench/edit_corpus.sh
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
rm -rf "$W"
mkdir -p "$W"
mg() { "$BIN" -q "$@" >/dev/null; }
packs_bytes() { du -sb "$1/.mediagit/packs" | cut -f1; }
timed() { # timed OUT CMD...: runs CMD, prints wall seconds; its stdout to OUT
  local out=$1
  shift
  sync
  sleep 1
  /usr/bin/time -f "%e" -o "$W/time.txt" "$@" >"$out" 2>"$W/err.txt" || {
    cat "$W/err.txt" >&2
    exit 1
  }
  cat "$W/time.txt"
}
report() { # report CASE REPO
  local case=$1 repo=$2 before after gc_s cp_s said
  before=$(packs_bytes "$repo")
  cp_s=$(timed /dev/null sh -c "cp -a '$repo/.mediagit/packs' '$W/ref-packs' && sync")
  rm -rf "$W/ref-packs"
  gc_s=$(timed "$W/gc.out" "$BIN" -C "$repo" gc --prune=now)
  after=$(packs_bytes "$repo")
  said=$(grep -o 'read and rewrote [^;]*' "$W/gc.out" | head -1 || true)
  echo "| $case | $before | $after | $gc_s | ${said:-read nothing} | $cp_s | $(echo "scale=3; $gc_s / $cp_s" | bc -l) |"
  "$BIN" -q -C "$repo" fsck >/dev/null
}

echo "| case | pack bytes before | after | gc (s) | gc says | cp -a packs + sync (s) | gc / cp |"
echo "|---|---|---|---|---|---|---|"

# 0 %: v1, then the edited corpus as v2 (the store moved onto it).
cp -al "$CORPUS" "$W/zero"
mg init "$W/zero"
mg -C "$W/zero" add -A
mg -C "$W/zero" commit -m v1
cp -a "$CORPUS" "$W/edited"
bash "$EDIT" "$W/edited" >/dev/null
mv "$W/zero/.mediagit" "$W/edited/.mediagit"
rm -rf "$W/zero"
mg -C "$W/edited" add -A
mg -C "$W/edited" commit -m v2
report "0 % garbage (corpus + edit_corpus.sh)" "$W/edited"
rm -rf "$W/edited"

# 10 %: extra random files, a tenth of the corpus, stored and dropped.
cp -al "$CORPUS" "$W/ten"
total=$(du -sb "$CORPUS" | cut -f1)
per=$((total / 10 / 6))
for i in 1 2 3 4 5 6; do
  head -c "$per" /dev/urandom >"$W/ten/zz-extra-$i.bin"
done
mg init "$W/ten"
mg -C "$W/ten" add -A
rm "$W/ten"/zz-extra-*.bin
mg -C "$W/ten" add -A
mg -C "$W/ten" commit -m v1
report "~10 % garbage (a tenth stored, then dropped)" "$W/ten"
rm -rf "$W"
