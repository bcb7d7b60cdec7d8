#!/usr/bin/env bash
# Backups of the media corpus against `cp -r` and restic, in one run (each
# step's time includes a `sync` of what it wrote):
#   first:       `backup create` of the committed corpus to an empty
#                directory target vs `cp -r .mediagit` vs `restic backup`
#                of the working tree into a fresh restic repository;
#   incremental: after ../shared/bench/edit_corpus.sh, add + commit (timed
#                apart: the repository's own work), then `backup create` vs
#                restic's second backup of the edited tree (target: <= 0.5x
#                restic);
#   restore:     `backup restore --at now` into an empty directory (objects
#                copied, verified, checked out) vs `restic restore latest`
#                (target: <= 0.75x restic).
# Also the bytes each target grew by in the incremental step.
#   usage: scripts/backup_bench.sh path/to/mediagit [CORPUS]
#   CORPUS default /tmp/encbench/corpus (../shared/bench/gen_corpus.sh DIR);
#   ENCRYPT=1 backs up an encrypted repository (restic always encrypts).
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 path/to/mediagit [CORPUS]}")
CORPUS=$(realpath "${2:-/tmp/encbench/corpus}")
W=${BENCH_DIR:-/tmp/backupbench}
EDIT=$(dirname "$(realpath "$0")")/../../shared/bench/edit_corpus.sh
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
export RESTIC_PASSWORD=bench MEDIAGIT_PASSPHRASE=bench
command -v restic >/dev/null || { echo "needs restic (apt-get install restic)" >&2; exit 1; }
rm -rf "$W"
mkdir -p "$W"
sync
echo 3 2>/dev/null >/proc/sys/vm/drop_caches || true
timed() { # timed CMD...: runs CMD then sync; prints wall seconds and peak RSS KiB
  sync
  sleep 1
  /usr/bin/time -f "%e %M" -o "$W/time.txt" sh -c '"$@" >/dev/null 2>"$0" && sync' "$W/err.txt" "$@" || {
    cat "$W/err.txt" >&2
    exit 1
  }
  cat "$W/time.txt"
}
bytes() { du -sb "$1" | cut -f1; }
cp -a "$CORPUS" "$W/repo"
enc=()
[ "${ENCRYPT:-0}" = 1 ] && enc=(--encrypt --kdf-memory 19 --kdf-passes 2)
"$BIN" -q init "${enc[@]}" "$W/repo" >/dev/null
( cd "$W/repo" && "$BIN" -q add -A && "$BIN" -q commit -m v1 >/dev/null )
"$BIN" -q -C "$W/repo" backup init "$W/target" 2>/dev/null
restic -q -r "$W/restic" --cache-dir "$W/cache" init >/dev/null
echo "corpus: $(bytes "$CORPUS") bytes; repository store: $(bytes "$W/repo/.mediagit") bytes"
echo "step          mediagit(s rss)   reference(s rss)"
m=$(timed "$BIN" -q -C "$W/repo" backup create)
c=$(timed cp -r "$W/repo/.mediagit" "$W/cp-copy")
r=$(timed sh -c "cd '$W/repo' && restic -q -r '$W/restic' --cache-dir '$W/cache' backup --exclude .mediagit .")
echo "first         $m    cp -r: $c    restic: $r"
t0=$(bytes "$W/target"); r0=$(bytes "$W/restic")
"$EDIT" "$W/repo" >/dev/null
a=$(timed sh -c "cd '$W/repo' && '$BIN' -q add -A && '$BIN' -q commit -m v2")
m=$(timed "$BIN" -q -C "$W/repo" backup create)
r=$(timed sh -c "cd '$W/repo' && restic -q -r '$W/restic' --cache-dir '$W/cache' backup --exclude .mediagit .")
echo "incremental   $m    restic: $r    (the add + commit before it, which restic's scan stands for: $a)"
echo "  target grew $(( $(bytes "$W/target") - t0 )) bytes; restic grew $(( $(bytes "$W/restic") - r0 )) bytes"
sync; echo 3 2>/dev/null >/proc/sys/vm/drop_caches || true
m=$(timed "$BIN" -q -C "$W/repo" backup restore --at now "$W/restored")
r=$(timed restic -q -r "$W/restic" --cache-dir "$W/cache" restore latest --target "$W/restic-restored")
echo "restore       $m    restic: $r"
# The restored working tree equals the edited corpus.
( cd "$W/repo" && find . -path ./.mediagit -prune -o -type f -print0 | sort -z | xargs -0 sha256sum ) >"$W/a.sum"
( cd "$W/restored" && find . -path ./.mediagit -prune -o -type f -print0 | sort -z | xargs -0 sha256sum ) >"$W/b.sum"
cmp -s "$W/a.sum" "$W/b.sum" && echo "restored tree: identical ($(wc -l <"$W/a.sum") files)" || { echo "restored tree DIFFERS" >&2; exit 1; }
