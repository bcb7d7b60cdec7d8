#!/usr/bin/env bash
# chunk_sizes.sh CORPUS [MIN/AVG/MAX ...] -- how the chunking parameters trade
# deduplication against speed on a real-media corpus (../shared/bench/gen_corpus.sh).
# For each parameter set: init, add -A + commit (v1), edit_corpus.sh, add -A +
# commit (v2); prints seconds and repository growth. Needs a release build.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
MG=${MEDIAGIT:-$here/target/release/mediagit}
EDIT=${EDIT_CORPUS:-$here/../shared/bench/edit_corpus.sh}
corpus=${1:?usage: chunk_sizes.sh CORPUS [MIN/AVG/MAX ...]}; shift
sets=("$@"); [ ${#sets[@]} -gt 0 ] || sets=(65536/262144/1048576 131072/524288/2097152 262144/1048576/4194304 524288/2097152/8388608)
work=${WORK:-/tmp/mediagit-chunk-sizes}
export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
du_b() { du -sb "$1" | cut -f1; }
printf "%-26s %8s %10s %8s %10s %8s\n" "min/avg/max" "v1 s" "v1 MiB" "v2 s" "+MiB" "objects"
for s in "${sets[@]}"; do
  IFS=/ read -r mn av mx <<<"$s"
  rm -rf "$work"; mkdir -p "$work"; cp -a "$corpus" "$work/tree"
  "$MG" -q init "$work/tree" >/dev/null
  sed -i "s/^min_size = .*/min_size = $mn/; s/^avg_size = .*/avg_size = $av/; s/^max_size = .*/max_size = $mx/" "$work/tree/.mediagit/config.toml"
  sync
  t0=$(date +%s.%N); "$MG" -q -C "$work/tree" add -A; "$MG" -q -C "$work/tree" commit -m v1 >/dev/null; sync; t1=$(date +%s.%N)
  s1=$(du_b "$work/tree/.mediagit/packs")
  "$EDIT" "$work/tree" >/dev/null 2>&1
  sync
  t2=$(date +%s.%N); "$MG" -q -C "$work/tree" add -A; "$MG" -q -C "$work/tree" commit -m v2 >/dev/null; sync; t3=$(date +%s.%N)
  s2=$(du_b "$work/tree/.mediagit/packs")
  chunks=$(cat "$work/tree/.mediagit/packs/"*.idx | wc -c)
  printf "%-26s %8.2f %10.1f %8.2f %10.1f %8d\n" "$s" "$(echo "$t1 - $t0" | bc)" "$(echo "$s1/1048576" | bc -l)" \
    "$(echo "$t3 - $t2" | bc)" "$(echo "($s2-$s1)/1048576" | bc -l)" "$((chunks / 52))"
done
rm -rf "$work"
