#!/usr/bin/env bash
# Encrypted against unencrypted repositories on the media corpus, in one run
# (issue 14's targets: add and checkout at most 1.1x, growth after
# edit_corpus.sh equal). For each of ROUNDS rounds, in rotating order:
# a fresh repository (plain; `enc`: `init --encrypt` with the default
# Argon2 cost, the passphrase given to every command, so each pays the
# Argon2id unlock; `kept`: the same after `key unlock`, as a user at work
# runs it) over a hard-linked copy of the corpus, `add -A` + `commit` timed,
# then `checkout --force HEAD` after deleting every file of the working
# tree, then `clone` of it into a new directory (every file written and
# verified), each timed after `sync` and SETTLE seconds (default 5: this
# machine's disk still works off the previous command's writes for a few
# seconds, and the next command pays for it). Then once per mode: edit_corpus.sh on a full copy, `add -A` +
# `commit` again, and the store's growth.
#   usage: scripts/encryption_bench.sh path/to/mediagit [CORPUS]
#   CORPUS default /tmp/encbench/corpus (../shared/bench/gen_corpus.sh DIR)
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 path/to/mediagit [CORPUS]}")
CORPUS=$(realpath "${2:-/tmp/encbench/corpus}")
ROUNDS=${ROUNDS:-3}
W=${BENCH_DIR:-/tmp/encbench/work}
EDIT=$(dirname "$0")/../../shared/bench/edit_corpus.sh
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
export MEDIAGIT_PASSPHRASE=bench-passphrase
mkdir -p "$W"
# `key unlock` keeps keys in a private runtime directory.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="$W/run"
  mkdir -p "$XDG_RUNTIME_DIR"
  chmod 700 "$XDG_RUNTIME_DIR"
fi
timed() { # timed LABEL CMD...: prints "LABEL seconds maxrss_kib user_s system_s"
  local label=$1
  shift
  sync
  sleep "${SETTLE:-5}"
  /usr/bin/time -f "%e %M %U %S" -o "$W/time.txt" "$@" >/dev/null 2>"$W/err.txt" || {
    cat "$W/err.txt" >&2
    exit 1
  }
  echo "$label $(cat "$W/time.txt")"
}
init_args() { [ "$1" != plain ] && echo "--encrypt" || true; }
store_bytes() { du -sb "$1/.mediagit" --exclude=index --exclude=logs --exclude=tmp | cut -f1; }

for r in $(seq "$ROUNDS"); do
  case $((r % 3)) in
    1) order="plain enc kept" ;;
    2) order="kept plain enc" ;;
    *) order="enc kept plain" ;;
  esac
  for mode in $order; do
    rm -rf "$W/$mode"
    mkdir -p "$W/$mode"
    cp -al "$CORPUS" "$W/$mode/wt"
    (cd "$W/$mode/wt" && "$BIN" init -q $(init_args "$mode") . >/dev/null)
    if [ "$mode" = kept ]; then "$BIN" -C "$W/$mode/wt" key unlock --timeout 1h >/dev/null; fi
    timed "round$r $mode add" "$BIN" -q -C "$W/$mode/wt" add -A
    timed "round$r $mode commit" "$BIN" -q -C "$W/$mode/wt" commit -m v1
    # checkout in place: every file of the working tree deleted, then
    # `checkout --force HEAD` writes (and verifies) them again.
    find "$W/$mode/wt" -mindepth 1 -maxdepth 1 -not -name .mediagit -exec rm -rf {} +
    timed "round$r $mode checkout" "$BIN" -q -C "$W/$mode/wt" checkout --force HEAD
    timed "round$r $mode clone" "$BIN" -q clone "$W/$mode/wt" "$W/$mode/co"
    echo "round$r $mode store_bytes $(store_bytes "$W/$mode/wt")"
    if [ "$mode" = kept ]; then "$BIN" -C "$W/$mode/wt" key lock >/dev/null; fi
  done
done

# Growth after the edit script: the corpus edited once (a full copy); each
# repository's .mediagit then moved onto a hard-linked copy of the edited
# tree (every file is read again: only the store's growth is compared).
EDITED="$W/edited"
if [ ! -d "$EDITED" ]; then
  cp -a "$CORPUS" "$EDITED.tmp"
  bash "$EDIT" "$EDITED.tmp" >/dev/null
  mv "$EDITED.tmp" "$EDITED"
fi
for mode in plain enc; do
  rm -rf "$W/$mode"
  mkdir -p "$W/$mode"
  cp -al "$CORPUS" "$W/$mode/wt"
  (cd "$W/$mode/wt" && "$BIN" init -q $(init_args "$mode") . >/dev/null)
  "$BIN" -q -C "$W/$mode/wt" add -A >/dev/null
  "$BIN" -q -C "$W/$mode/wt" commit -m v1 >/dev/null
  before=$(store_bytes "$W/$mode/wt")
  cp -al "$EDITED" "$W/$mode/v2"
  mv "$W/$mode/wt/.mediagit" "$W/$mode/v2/.mediagit"
  timed "edit $mode add" "$BIN" -q -C "$W/$mode/v2" add -A
  "$BIN" -q -C "$W/$mode/v2" commit -m v2 >/dev/null
  after=$(store_bytes "$W/$mode/v2")
  echo "edit $mode growth_bytes $((after - before)) (v1 $before, v2 $after)"
done
