#!/usr/bin/env bash
# build-deb.sh -- builds target/debian/mediagit_VERSION-1_ARCH.deb with
# cargo-deb: the release binary, a manual page per command
# (/usr/share/man/man1), and completions for bash, zsh and fish (where
# Debian's shells look for packaged completions).
#   ./scripts/build-deb.sh            build (installs cargo-deb if missing)
#   sudo dpkg -i target/debian/mediagit_*.deb
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo build --release --locked -p mediagit-cli
bin=target/release/mediagit
assets=target/release/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man"
"$bin" man --out-dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/mediagit.bash"
"$bin" completions zsh >"$assets/_mediagit"
"$bin" completions fish >"$assets/mediagit.fish"
cargo deb --no-build -p mediagit-cli "$@"
ls -l target/debian/*.deb
