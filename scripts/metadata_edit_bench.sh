#!/usr/bin/env bash
# Metadata edits against the store's growth: a metadata edit (re-tagging a
# photo or a video, editing audio tags, renaming a PSD layer) should store
# the chunks holding the metadata, not the file's payload again (the
# format-aware cut points of crates/mediagit-pipeline/src/media.rs).
#
# In a temporary directory: `mediagit init`, a hard-linked copy of the
# corpus, `add -A` + `commit`; then, each followed by `add -A` + `commit`
# and the growth of .mediagit/packs:
#   photos  exiftool re-tag of 100 of photos/event_0*/*.jpg (Artist,
#           Copyright, one more keyword, GPS position)
#   videos  exiftool re-tag of video/*.mp4 (Title, Comment, Artist)
#   tiff    exiftool re-tag of design/*.tif and *.tiff (when there are any)
#   audio   audio/*.wav and *.flac: tags set with `ffmpeg -c copy` (when
#           ffmpeg is installed; the first tagging of a file, a LIST or
#           VORBIS_COMMENT block, written before the audio data)
#   psd     one layer of each design/*.psd renamed (psd_rename_layer.py)
# and a table: edit, files, their size, the store's growth, the growth as
# a percentage of those files' size (the target: under 1%). Edited files
# are copied first (the hard links to the corpus are broken), so the
# corpus is never changed.
#   usage: scripts/metadata_edit_bench.sh path/to/mediagit CORPUS_DIR
#   (CORPUS_DIR as made by shared/bench/gen_corpus.sh: photos/, video/,
#   design/, audio/). KEEP=1 keeps the temporary directory; BENCH_DIR
#   chooses where it is made (default: $TMPDIR or /tmp).
set -euo pipefail
shopt -s inherit_errexit
usage="usage: $0 path/to/mediagit CORPUS_DIR"
BIN=$(realpath "${1:?$usage}")
CORPUS=$(realpath "${2:?$usage}")
HERE=$(cd "$(dirname "$0")" && pwd)
RENAME="$HERE/psd_rename_layer.py"
[ -x "$BIN" ] || { echo "$0: $BIN is not an executable" >&2; exit 2; }
[ -d "$CORPUS" ] || { echo "$0: $CORPUS is not a directory" >&2; exit 2; }
for tool in exiftool python3; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 2; }
done
[ -f "$RENAME" ] || { echo "$0: $RENAME is missing" >&2; exit 2; }

W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/metadata_edit_bench.XXXXXX")
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept $W" >&2
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export MEDIAGIT_AUTHOR_NAME=bench MEDIAGIT_AUTHOR_EMAIL=bench@example.com
WT="$W/wt"
mg() { "$BIN" -q -C "$WT" "$@"; }
store_bytes() { du -sb "$WT/.mediagit/packs" | cut -f1; }
bytes_of() { # total size of the files named on stdin (NUL-separated)
  xargs -0 -r stat -c %s -- | awk '{ s += $1 } END { print s + 0 }'
}
# A file about to be edited gets its own copy (not a hard link to the corpus).
detach() {
  local f
  for f in "$@"; do
    cp -p -- "$f" "$f.detach.tmp"
    mv -f -- "$f.detach.tmp" "$f"
  done
}
commit() { # commit MESSAGE: add -A + commit, then prints the store's size
  mg add -A >/dev/null
  mg commit -m "$1" >/dev/null
  store_bytes
}

mkdir -p "$WT"
cp -al "$CORPUS/." "$WT/" 2>/dev/null || {
  rm -rf "$WT"
  mkdir -p "$WT"
  cp -a "$CORPUS/." "$WT/"
}
(cd "$WT" && "$BIN" -q init . >/dev/null)
corpus_files=$(find "$WT" -path "$WT/.mediagit" -prune -o -type f -print | wc -l)
corpus_bytes=$(find "$WT" -path "$WT/.mediagit" -prune -o -type f -print0 | bytes_of)
start=$(date +%s)
before=$(commit "corpus")
echo "corpus: $corpus_files files, $corpus_bytes bytes; store after the first commit: $before bytes ($(($(date +%s) - start)) s)" >&2

ROWS=()
row() { # row EDIT FILES BYTES GROWTH
  ROWS+=("$(awk -v e="$1" -v n="$2" -v b="$3" -v g="$4" \
    'BEGIN { printf "%-8s %6d %14d %12d %9.3f%%", e, n, b, g, (b > 0 ? 100 * g / b : 0) }')")
}
# measure EDIT FILE...: commits the edited FILEs, records the growth.
measure() {
  local edit=$1 after
  shift
  after=$(commit "$edit")
  row "$edit" "$#" "$(printf '%s\0' "$@" | bytes_of)" $((after - before))
  echo "$edit: $# files, store +$((after - before)) bytes" >&2
  before=$after
}

cd "$WT"
shopt -s nullglob

# (a) Photos: 100 of them, spread over the events.
mapfile -t photos < <(find photos -path 'photos/event_0*' -name '*.jpg' | sort | awk 'NR % 5 == 1' | head -n 100)
if [ "${#photos[@]}" -gt 0 ]; then
  detach "${photos[@]}"
  exiftool -q -q -overwrite_original \
    -Artist="Bench Photographer" -Copyright="(c) 2025 Bench Photographer, all rights reserved" \
    -Keywords+=retagged -XMP:Subject+=retagged \
    -GPSLatitude=48.8584 -GPSLatitudeRef=N -GPSLongitude=2.2945 -GPSLongitudeRef=E \
    "${photos[@]}"
  measure photos "${photos[@]}"
fi

# (a) Videos.
videos=(video/*.mp4 video/*.mov video/*.m4v)
if [ "${#videos[@]}" -gt 0 ]; then
  detach "${videos[@]}"
  exiftool -q -q -overwrite_original \
    -Title="Bench clip, re-tagged" -Comment="metadata edit benchmark" -Artist="Bench Studio" \
    "${videos[@]}"
  measure videos "${videos[@]}"
fi

# TIFFs.
tiffs=(design/*.tif design/*.tiff)
if [ "${#tiffs[@]}" -gt 0 ]; then
  detach "${tiffs[@]}"
  exiftool -q -q -overwrite_original \
    -Artist="Bench Designer" -Copyright="(c) 2025 Bench" -XMP:Subject+=retagged "${tiffs[@]}"
  measure tiff "${tiffs[@]}"
fi

# Audio tags (exiftool cannot write WAV or FLAC): ffmpeg copies the
# streams and writes the tags.
audio=(audio/*.wav audio/*.flac)
if [ "${#audio[@]}" -gt 0 ] && command -v ffmpeg >/dev/null; then
  for f in "${audio[@]}"; do
    tmp="${f%.*}.tagged.${f##*.}"
    ffmpeg -v error -y -i "$f" -map 0 -c copy \
      -metadata title="Bench take" -metadata artist="Bench Band" -metadata comment="metadata edit benchmark" \
      "$tmp"
    mv -f -- "$tmp" "$f"
  done
  measure audio "${audio[@]}"
fi

# (b) PSDs: one layer of each renamed (the second from the bottom, or the
# only one).
psds=(design/*.psd design/*.psb)
if [ "${#psds[@]}" -gt 0 ]; then
  detach "${psds[@]}"
  for f in "${psds[@]}"; do
    python3 "$RENAME" "$f" 1 "Renamed by the metadata edit bench" >/dev/null 2>&1 ||
      python3 "$RENAME" "$f" 0 "Renamed by the metadata edit bench" >/dev/null
  done
  measure psd "${psds[@]}"
fi

printf '%-8s %6s %14s %12s %10s\n' edit files bytes growth growth%
printf '%s\n' "${ROWS[@]}"
