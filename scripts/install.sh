#!/usr/bin/env bash
# install.sh -- installs mediagit for the current user: the binary (cargo
# install, into ~/.cargo/bin), its manual pages (into ~/.cargo/share/man,
# which man-db finds beside ~/.cargo/bin on PATH) and its shell completions
# (bash and fish load them by themselves; zsh needs the directory on $fpath).
#   ./scripts/install.sh            build and install
#   ./scripts/install.sh --no-build use the mediagit already on PATH
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
if [ "${1:-}" != "--no-build" ]; then
  cargo install --locked --path "$here/crates/mediagit-cli"
  bin="$cargo_home/bin/mediagit"
else
  bin=$(command -v mediagit) || { echo "install.sh: mediagit is not on PATH (run without --no-build to build it)" >&2; exit 1; }
fi
data=${XDG_DATA_HOME:-$HOME/.local/share}
config=${XDG_CONFIG_HOME:-$HOME/.config}
# Beside the binary (~/.cargo/bin -> ~/.cargo/share/man, found by man-db
# through PATH) when that is the user's to write; else the user's data dir.
man_dir="$(dirname "$(dirname "$bin")")/share/man/man1"
case "$bin" in
  "$HOME"/*) mkdir -p "$man_dir" 2>/dev/null || man_dir="$data/man/man1" ;;
  *) man_dir="$data/man/man1" ;;
esac
mkdir -p "$man_dir" "$data/bash-completion/completions" "$data/zsh/site-functions" \
  "$config/fish/completions"
"$bin" man --out-dir "$man_dir"
"$bin" completions bash >"$data/bash-completion/completions/mediagit"
"$bin" completions zsh >"$data/zsh/site-functions/_mediagit"
"$bin" completions fish >"$config/fish/completions/mediagit.fish"
echo "installed $bin ($("$bin" -V)), manual pages in $man_dir, completions for bash, zsh and fish"
echo "zsh: add 'fpath+=($data/zsh/site-functions)' before 'compinit' in ~/.zshrc"
