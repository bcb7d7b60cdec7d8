#!/usr/bin/env bash
# bench_storage.sh -- add + commit and checkout (clone) of the real-media
# corpus with the objects on the local filesystem backend and on the local
# object-store servers of scripts/test-servers.sh (S3 = moto, Azure =
# Azurite, GCS = gcp-storage-emulator), in one run, as throughput and as
# ratios against the filesystem backend.
#   ./scripts/bench_storage.sh              # all backends
#   STORES="local s3" ./scripts/bench_storage.sh
# Corpus: $CORPUS (default $BENCH_DIR/corpus, made by ../shared/bench/gen_corpus.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SHARED:-$here/../shared/bench}"
BENCH_DIR=${BENCH_DIR:-/tmp/mediagit-bench}
CORPUS=${CORPUS:-$BENCH_DIR/corpus}
STORES=${STORES:-"local s3 azure gcs"}
(cd "$here" && cargo build --release -p mediagit-cli)
mg="$here/target/release/mediagit"
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.invalid
[ -d "$CORPUS" ] || "$shared/gen_corpus.sh" "$CORPUS"
trap '"$here/scripts/test-servers.sh" stop' EXIT
eval "$("$here/scripts/test-servers.sh" start)"
bytes=$(du -sb "$CORPUS" | cut -f1)
rm -f "$BENCH_DIR/storage-times.local"
work="$BENCH_DIR/storage"
now() { date +%s.%N; }
printf '| store | add -A + commit | MB/s | vs local | checkout (clone) | MB/s | vs local |\n|---|---|---|---|---|---|---|\n'
for store in $STORES; do
  rm -rf "$work"; mkdir -p "$work"
  cp -r "$CORPUS" "$work/repo"; sync
  prefix="bench-$$-$(date +%s%N)"
  case $store in
    local) init=(init "$work/repo"); src="$work/repo" ;;
    s3) init=(init "$work/repo" --storage "s3://mediagit-test/$prefix" --endpoint "$MEDIAGIT_TEST_S3")
        src="s3://mediagit-test/$prefix"; cl=(--endpoint "$MEDIAGIT_TEST_S3") ;;
    azure) init=(init "$work/repo" --storage "az://mediagit-test/$prefix" --endpoint "$MEDIAGIT_TEST_AZURE")
        src="az://mediagit-test/$prefix"; cl=(--endpoint "$MEDIAGIT_TEST_AZURE") ;;
    gcs) init=(init "$work/repo" --storage "gs://mediagit-test/$prefix" --endpoint "$MEDIAGIT_TEST_GCS")
        src="gs://mediagit-test/$prefix"; cl=(--endpoint "$MEDIAGIT_TEST_GCS") ;;
  esac
  "$mg" -q "${init[@]}" >/dev/null
  t0=$(now)
  (cd "$work/repo" && "$mg" -q add -A && "$mg" -q commit -m corpus >/dev/null && sync)
  t1=$(now)
  if [ "$store" = local ]; then "$mg" -q clone "$src" "$work/out" 2>/dev/null
  else "$mg" -q clone "$src" "$work/out" "${cl[@]}" 2>/dev/null; fi
  sync
  t2=$(now)
  (cd "$work/repo" && find . -path ./.mediagit -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/a.sum"
  (cd "$work/out" && find . -path ./.mediagit -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/b.sum"
  cmp -s "$work/a.sum" "$work/b.sum" || { echo "checkout from $store differs from the corpus" >&2; exit 1; }
  python3 - "$store" "$bytes" "$t0" "$t1" "$t2" "$BENCH_DIR/storage-times" <<'PY'
import sys, json, os
store, b, t0, t1, t2, f = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6]), sys.argv[6]
add, co = t1 - t0, t2 - t1
ref = json.load(open(f + ".local")) if store != "local" and os.path.exists(f + ".local") else None
if store == "local":
    json.dump({"add": add, "co": co}, open(f + ".local", "w"))
    ref = {"add": add, "co": co}
mb = b / 1e6
print(f"| {store} | {add:.2f} s | {mb/add:.0f} | {add/ref['add']:.2f}x | {co:.2f} s | {mb/co:.0f} | {co/ref['co']:.2f}x |")
PY
done
rm -rf "$work"
