#!/usr/bin/env bash
# Fails when a workspace crate declares a [dependencies] entry that its code
# never names (`name::`, `use name`, `name!`, `#[derive(name::`): an unused
# dependency costs build time on every machine and hides what a crate
# really needs. A plain text check, no tool to install; list a deliberate
# exception in the crate's Cargo.toml with `# used-implicitly` after it.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for toml in crates/*/Cargo.toml; do
  crate=$(dirname "$toml")
  deps=$(awk '/^\[dependencies\]/{on=1; next} /^\[/{on=0} on && /^[A-Za-z0-9_-]+/ && !/used-implicitly/ {split($0, a, /[ .=]/); print a[1]}' "$toml")
  for dep in $deps; do
    name=${dep//-/_}
    if ! grep -rqE "(^|[^A-Za-z0-9_])${name}(::|!|[[:space:]]*;|[[:space:]]+as[[:space:]])" \
      "$crate/src" $( [ -d "$crate/benches" ] && echo "$crate/benches" ) 2>/dev/null; then
      echo "unused dependency: $dep in $toml" >&2
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "no unused dependencies"
exit $status
