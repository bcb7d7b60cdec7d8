#!/usr/bin/env bash
# Installs the Debian packages MediaGit's tests and demo use to make real media
# files: ffmpeg (H.264 video), ImageMagick (JPEG/PNG/PSD/TIFF), sox (WAV/FLAC),
# exiftool (EXIF), git (nested repositories in tests), util-linux (setpriv),
# strace (the order of checkout's flush and index write), zsh and fish (the
# completion scripts are syntax-checked by each shell), man-db (the manual
# pages are rendered by man), tmux, less and script (bsdutils) (the pager
# runs in a real terminal).
set -euo pipefail
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v sox >/dev/null || missing+=(sox)
command -v exiftool >/dev/null || missing+=(libimage-exiftool-perl)
[ -x /usr/bin/convert ] || missing+=(imagemagick)
command -v git >/dev/null || missing+=(git)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v strace >/dev/null || missing+=(strace)
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
command -v man >/dev/null || missing+=(man-db)
command -v tmux >/dev/null || missing+=(tmux)
command -v less >/dev/null || missing+=(less)
command -v script >/dev/null || missing+=(bsdutils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# cargo-fuzz for scripts/fuzz.sh (run by test.sh after the tests; it needs
# only the stable toolchain, with RUSTC_BOOTSTRAP=1 set by fuzz.sh).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
