#!/usr/bin/env bash
# ab.sh OLD_BINARY NEW_BINARY [DIR] -- two builds of mediagit, same trees,
# one run (hyperfine): `status` on 100,000 committed small files, `add -A` of
# 24 random 40 MB clips + 3,000 text files into a fresh repository, and
# `checkout HEAD -- .` of that tree after deleting it. Prints markdown
# tables. Use it to show that a change keeps add/status/checkout within noise.
#   cargo build --release -p mediagit-cli && cp target/release/mediagit /tmp/new
#   git worktree add /tmp/old REV && (cd /tmp/old && cargo build --release -p mediagit-cli)
#   ./scripts/ab.sh /tmp/old/target/release/mediagit /tmp/new
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [DIR]" >&2; exit 2; }
dir=${3:-/tmp/mediagit-ab}
mkdir -p "$dir"
cp "$1" "$dir/mediagit-old"; cp "$2" "$dir/mediagit-new"
cd "$dir"
command -v hyperfine >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
export MEDIAGIT_AUTHOR_NAME=b MEDIAGIT_AUTHOR_EMAIL=b@example.invalid
if [ ! -d big ]; then
  mkdir -p big/video big/text
  for i in $(seq 1 24); do head -c 40000000 /dev/urandom > "big/video/clip$i.mov"; done
  python3 - <<'PY'
import os
for i in range(3000):
    d = f"big/text/d{i // 100:02d}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/n{i:04d}.txt", "w").write(f"line {i}\n" * (1 + i % 40))
PY
fi
if [ ! -d small ]; then
  python3 - <<'PY'
import os
for i in range(100000):
    d = os.path.join("small", f"d{i // 1000:03d}", f"e{i // 100 % 10}"); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"f{i:06d}.txt"), "w").write(f"file {i}\n" * (1 + i % 7))
PY
fi
for v in old new; do
  rm -rf "w-$v" "s-$v"
  cp -a big "w-$v"; "./mediagit-$v" init "w-$v" >/dev/null
  cp -a small "s-$v"; "./mediagit-$v" init "s-$v" >/dev/null
  (cd "s-$v" && "../mediagit-$v" add -A >/dev/null && "../mediagit-$v" commit -m s >/dev/null && sleep 2 && "../mediagit-$v" status >/dev/null)
done
hyperfine -N --warmup 3 --runs 20 --export-markdown status.md \
  -n status-old "bash -c 'cd s-old && ../mediagit-old status'" \
  -n status-new "bash -c 'cd s-new && ../mediagit-new status'"
hyperfine --runs 5 --export-markdown add.md \
  -n add-old --prepare 'rm -rf w-old/.mediagit && ./mediagit-old init w-old >/dev/null' "bash -c 'cd w-old && ../mediagit-old add -A >/dev/null'" \
  -n add-new --prepare 'rm -rf w-new/.mediagit && ./mediagit-new init w-new >/dev/null' "bash -c 'cd w-new && ../mediagit-new add -A >/dev/null'"
for v in old new; do (cd "w-$v" && "../mediagit-$v" commit -m big >/dev/null); done
hyperfine --runs 6 --export-markdown checkout.md \
  -n checkout-old --prepare 'rm -rf w-old/video w-old/text; sync' "bash -c 'cd w-old && ../mediagit-old checkout HEAD -- . >/dev/null'" \
  -n checkout-new --prepare 'rm -rf w-new/video w-new/text; sync' "bash -c 'cd w-new && ../mediagit-new checkout HEAD -- . >/dev/null'"
cat status.md add.md checkout.md
