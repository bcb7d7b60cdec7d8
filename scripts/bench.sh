#!/usr/bin/env bash
# bench.sh -- MediaGit against cp, restic, borg and Git LFS on the real-media
# corpus, in one run, as ratios (../shared/bench/compare.sh + report.py), plus
# `status` on 100,000 files against `git status`, and peak memory while adding,
# committing and checking out one big file (BIG_GIB, default 8; BIG_GIB=0 skips).
#   ./scripts/bench.sh                  # everything
#   TOOLS="mediagit restic" ./scripts/bench.sh
# Results: $BENCH_DIR (default /tmp/mediagit-bench); the tables go to stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SHARED:-$here/../shared/bench}"
export BENCH_DIR=${BENCH_DIR:-/tmp/mediagit-bench}
TOOLS=${TOOLS:-"mediagit restic borg lfs"}
BIG_GIB=${BIG_GIB:-8}
FILES=${FILES:-100000}

(cd "$here" && cargo build --release -p mediagit-cli)
export MEDIAGIT="$here/target/release/mediagit"
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.invalid
"$shared/setup.sh"
command -v hyperfine >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
mkdir -p "$BENCH_DIR"
if [ ! -d "$BENCH_DIR/corpus" ]; then "$shared/gen_corpus.sh" "$BENCH_DIR/corpus"; fi
rm -rf "$BENCH_DIR/results"
# shellcheck disable=SC2086
CORPUS="$BENCH_DIR/corpus" "$shared/compare.sh" physical $TOOLS
python3 "$shared/report.py" "$BENCH_DIR/results" | tee "$BENCH_DIR/report.md"

# --- status on a tree of many small files: MediaGit vs git, same tree ---
t="$BENCH_DIR/small"; rm -rf "$t"; mkdir -p "$t/tree"
python3 - "$t/tree" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:03d}", f"e{i // 100 % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(f"file {i}\n" * (1 + i % 7))
PY
cp -a "$t/tree" "$t/git"
(cd "$t/tree" && "$MEDIAGIT" -q init >/dev/null && /usr/bin/time -f "mediagit add -A ($FILES files): %e s, max RSS %M KiB" "$MEDIAGIT" -q add -A && "$MEDIAGIT" -q commit -m files >/dev/null)
(cd "$t/git" && git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm files)
sleep 1.2
(cd "$t/tree" && "$MEDIAGIT" status >/dev/null)   # settles the racily-clean window once
# Both repositories were just written: flush that writeback first, or it
# lands on whichever command hyperfine times first.
sync
hyperfine -N --warmup 5 --runs 20 --export-markdown "$BENCH_DIR/status.md" \
  "$MEDIAGIT -C $t/tree status --porcelain" "git -C $t/git status --porcelain"
cat "$BENCH_DIR/status.md"
rm -rf "$t"

# --- peak memory with one big file ---
if [ "$BIG_GIB" != 0 ]; then
  b="$BENCH_DIR/big"; rm -rf "$b"; mkdir -p "$b/w"
  head -c "$((BIG_GIB * 1024))M" /dev/urandom > "$b/w/big.bin"
  (cd "$b/w" && "$MEDIAGIT" -q init >/dev/null \
    && /usr/bin/time -f "add ${BIG_GIB} GiB file: %e s, max RSS %M KiB" "$MEDIAGIT" -q add -A \
    && /usr/bin/time -f "commit: %e s, max RSS %M KiB" "$MEDIAGIT" -q commit -m big >/dev/null)
  /usr/bin/time -f "clone/checkout ${BIG_GIB} GiB file: %e s, max RSS %M KiB" "$MEDIAGIT" -q clone "$b/w" "$b/c"
  cmp "$b/w/big.bin" "$b/c/big.bin" && echo "big file restored byte-exactly"
  rm -rf "$b"
fi
