#!/usr/bin/env bash
# Merging two branches of the media corpus (issue 16), in one run:
#   few:  each branch changed a few photos (3 on feat, 3 others on main);
#   edit: feat is ../shared/bench/edit_corpus.sh (3 clips edited, 25
#         photos re-saved, 20 added, 10 deleted, a folder renamed), main
#         changed 3 photos.
# Each: `merge feat` timed ROUNDS times from the same state (reset --hard
# between runs, page cache settled), then once under strace, counting the
# bytes read from pack files (content and metadata), from pack indexes,
# from other files of .mediagit, and from the working tree. A merge reads
# no file content to decide (trees only); what it reads from packs is the
# content of the files it must write into the working tree (theirs,
# changed), which the script prints beside it: the two must agree.
#   usage: scripts/merge_bench.sh path/to/mediagit [CORPUS]
#   CORPUS default /tmp/encbench/corpus (../shared/bench/gen_corpus.sh DIR)
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 path/to/mediagit [CORPUS]}")
CORPUS=$(realpath "${2:-/tmp/encbench/corpus}")
ROUNDS=${ROUNDS:-3}
W=${BENCH_DIR:-/tmp/mergebench}
EDIT=$(realpath "$(dirname "$0")/../../shared/bench/edit_corpus.sh")
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
mg() { "$BIN" -q "$@" >/dev/null; }
rev() { "$BIN" log --json -n 1 "$1" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])'; }

count_reads() { # count_reads STRACE_FILE WORKTREE
  python3 - "$1" "$2" <<'EOF'
import re, sys
path, wt = sys.argv[1], sys.argv[2]
call = re.compile(r'^(\d+)\s+(read|pread64|readv|preadv|preadv2)\((\d+)<([^>]*)>.*?(?:= (-?\d+)|<unfinished \.\.\.>)')
resumed = re.compile(r'^(\d+)\s+<\.\.\. (?:read|pread64|readv|preadv|preadv2) resumed>.*= (-?\d+)')
pending = {}
sums = {"pack": 0, "idx": 0, "repo-other": 0, "worktree": 0, "other": 0}
def add(p, n):
    if n <= 0: return
    if p.endswith(".pack"): k = "pack"
    elif p.endswith(".idx"): k = "idx"
    elif "/.mediagit/" in p: k = "repo-other"
    elif p.startswith(wt): k = "worktree"
    else: k = "other"
    sums[k] += n
for line in open(path, errors="replace"):
    m = call.match(line)
    if m:
        pid, _, _, p, res = m.groups()
        if res is None: pending[pid] = p
        else: add(p, int(res))
        continue
    m = resumed.match(line)
    if m and m.group(1) in pending:
        add(pending.pop(m.group(1)), int(m.group(2)))
print(" ".join(f"{k}={v}" for k, v in sums.items()))
EOF
}

run_case() { # run_case NAME: repo in $W/$NAME, main checked out at $MAIN
  local name=$1 repo=$W/$1 times=() t
  cd "$repo"
  # What feat changed since the merge base: the files a merge must write.
  "$BIN" diff --json "$BASE" feat | python3 -c '
import json,sys
d=json.load(sys.stdin)
files=[f for f in d["files"] if f["change"] in ("added","modified","renamed","mode_changed")]
open(sys.argv[1],"w").write("".join(f["path"]+"\n" for f in files))
print(sum(f["new"]["size"] for f in files), len(files))' "$W/incoming-$name.txt" > "$W/incoming-$name.sum"
  local incoming
  incoming=$(cat "$W/incoming-$name.sum")
  for _ in $(seq "$ROUNDS"); do
    mg reset --hard "$MAIN"
    sync
    sleep 2
    t=$( { /usr/bin/time -f "%e" "$BIN" -q merge feat -m merged >/dev/null; } 2>&1 )
    times+=("$t")
  done
  mg reset --hard "$MAIN"
  sync
  sleep 1
  strace -f -qq -y -e trace=read,pread64,readv,preadv,preadv2 -o "$W/strace-$name.txt" \
    "$BIN" -q merge feat -m merged >/dev/null
  local reads
  reads=$(count_reads "$W/strace-$name.txt" "$repo")
  "$BIN" fsck >/dev/null
  # Reference: copying those files (now merged in) and making them durable.
  rm -rf "$W/ref"
  mkdir -p "$W/ref"
  sync
  sleep 1
  local ref
  ref=$( { /usr/bin/time -f "%e" sh -c "xargs -d '\n' cp --parents -t '$W/ref' < '$W/incoming-$name.txt' && sync"; } 2>&1 )
  echo "$name: merge wall seconds: ${times[*]}; bytes read: $reads; feat's changed files: ${incoming% *} bytes in ${incoming#* } path(s); reference cp+sync of them: $ref s"
}

rm -rf "$W"
mkdir -p "$W"
echo "corpus: $CORPUS ($(du -sb "$CORPUS" | cut -f1) bytes); $("$BIN" --version | head -1)"
for name in few edit; do
  cp -a "$CORPUS" "$W/$name"
  cd "$W/$name"
  mg init .
  mg add -A
  mg commit -m base
  BASE=$(rev HEAD)
  mg branch create feat
  mg switch feat
  if [ "$name" = few ]; then
    for f in $(ls photos/event_05/*.jpg | sort | head -3); do
      exiftool -q -q -overwrite_original -Artist="Feat" "$f" >/dev/null
    done
  else
    bash "$EDIT" "$W/$name"
  fi
  mg add -A
  mg commit -m "feat edits"
  mg switch main
  for f in $(ls photos/event_05/*.jpg | sort | tail -3); do
    exiftool -q -q -overwrite_original -Artist="Main" "$f" >/dev/null
  done
  mg add -A
  mg commit -m "main edits"
  MAIN=$(rev HEAD)
  run_case "$name"
done
