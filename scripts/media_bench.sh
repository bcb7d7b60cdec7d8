#!/usr/bin/env bash
# Media records (issue 17), in one run:
#   find:  `find --where` over N files (default 10,000 distinct JPEGs: the
#          corpus's 500 photos, each copy made unique by one trailing byte
#          after its end-of-image marker), ROUNDS runs each of three
#          queries; the bytes read from pack files are counted with strace
#          (records and trees only: no content).
#   add:   the time `add` spends extracting and storing records (its
#          `media` phase from `-v`) beside the whole add of those files.
#   usage: scripts/media_bench.sh path/to/mediagit [CORPUS]
#   CORPUS default /tmp/encbench/corpus (../shared/bench/gen_corpus.sh DIR)
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 path/to/mediagit [CORPUS]}")
CORPUS=$(realpath "${2:-/tmp/encbench/corpus}")
N=${FILES:-10000}
ROUNDS=${ROUNDS:-5}
W=${BENCH_DIR:-/tmp/mediabench}
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
cd "$W"
"$BIN" -q init repo
cd repo
mapfile -t photos < <(find "$CORPUS/photos" -name '*.jpg' | sort)
[ ${#photos[@]} -gt 0 ] || { echo "no photos in $CORPUS/photos" >&2; exit 1; }
python3 - "$N" "${photos[@]}" <<'EOF'
import os, sys
n = int(sys.argv[1]); photos = sys.argv[2:]
for i in range(n):
    src = photos[i % len(photos)]
    d = f"shoot_{i // 500:03d}"
    os.makedirs(d, exist_ok=True)
    with open(src, "rb") as f:
        data = f.read()
    with open(os.path.join(d, f"{i:05d}_{os.path.basename(src)}"), "wb") as f:
        f.write(data + i.to_bytes(4, "big"))
EOF
bytes=$(du -sb . | cut -f1)
sync
t0=$(date +%s.%N)
"$BIN" -v add -A 2> "$W/add.log" >/dev/null
t1=$(date +%s.%N)
"$BIN" -q commit -m "$N photos"
media_phase=$(grep -o 'media[^ ]* [^ ]*' "$W/add.log" | head -3 | tr '\n' ' ')
printf 'add of %d files (%s bytes): %.2f s; media phase: %s\n' "$N" "$bytes" \
  "$(echo "$t1 - $t0" | bc)" "${media_phase:-see $W/add.log}"
grep -i 'media' "$W/add.log" | head -5 || true
for q in 'kind=image and width>=2048' 'camera~Canon and taken>=2024-06-03' 'iso>=1600 or gps and lat>45.5'; do
  best=999
  for _ in $(seq "$ROUNDS"); do
    s=$(date +%s.%N)
    hits=$("$BIN" find --where "$q" | wc -l)
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc)
    best=$(echo "if ($t < $best) $t else $best" | bc)
  done
  packread=0
  if command -v strace >/dev/null; then
    strace -f -qq -y -e trace=read,pread64 -o "$W/strace.out" "$BIN" find --where "$q" >/dev/null
    packread=$(python3 - "$W/strace.out" <<'EOF'
import re, sys
packs = other = 0
for line in open(sys.argv[1]):
    m = re.search(r'(?:read|pread64)\(\d+<([^>]*)>.*= (\d+)$', line)
    if m:
        if m.group(1).endswith(".pack"):
            packs += int(m.group(2))
        else:
            other += int(m.group(2))
print(f"{packs} from packs, {other} other")
EOF
)
  fi
  printf 'find --where %-40s %5d hits  best of %d: %.3f s  read: %s\n' "'$q'" "$hits" "$ROUNDS" "$best" "$packread"
done
du -sb .mediagit | awk '{print "repository: " $1 " bytes"}'
