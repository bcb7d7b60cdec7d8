#!/usr/bin/env bash
# A two-minute tour: makes a few real media files, commits them, edits them,
# commits again, and shows log, status and what changed (with the media
# fields: duration, EXIF camera and GPS, dimensions). Uses the installed
# `mediagit` (cargo install --path crates/mediagit-cli).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/install-test-deps.sh"
MG=${MEDIAGIT:-mediagit}
demo=$(mktemp -d /tmp/mediagit-demo.XXXXXX)
export MEDIAGIT_AUTHOR_NAME="${MEDIAGIT_AUTHOR_NAME:-Demo Editor}"
export MEDIAGIT_AUTHOR_EMAIL="${MEDIAGIT_AUTHOR_EMAIL:-editor@example.com}"
cd "$demo"
echo "== demo repository in $demo"
$MG init project
cd project
mkdir -p footage audio stills
ffmpeg -loglevel error -f lavfi -i testsrc=duration=5:size=1280x720:rate=25 -c:v libx264 -pix_fmt yuv420p footage/scene1.mp4
sox -n -r 48000 -c 2 -b 24 audio/ambience.wav synth 5 pinknoise vol 0.3
for i in 1 2 3; do /usr/bin/convert -size 1200x800 "plasma:fractal" -seed "$i" "stills/frame$i.jpg"; done
echo "*.tmp" > .mediagitignore
echo "scratch" > render.tmp
$MG status
$MG add -A
$MG commit -m "First cut: footage, ambience, stills"
echo "== edit: longer ambience, a new still, a renamed clip"
sox -n -r 48000 -c 2 -b 24 audio/ambience.wav synth 8 pinknoise vol 0.3
/usr/bin/convert -size 1200x800 "plasma:fractal" -seed 9 stills/frame4.jpg
mkdir -p footage/day1 && mv footage/scene1.mp4 footage/day1/scene1.mp4
exiftool -q -overwrite_original -Make=Canon -Model="EOS R5" -GPSLatitude=48.8584 -GPSLatitudeRef=N stills/frame1.jpg
$MG status
echo "== what changed, media-aware: duration, EXIF, dimensions"
$MG diff
$MG add -A
$MG commit -m "Second cut"
$MG log --stat
$MG log --media
$MG media audio/ambience.wav
$MG find --where 'kind=image and camera~Canon'
$MG ls-files -l --media
$MG checkout HEAD~1
$MG status
$MG switch main
echo "== done; the repository is in $demo/project"
