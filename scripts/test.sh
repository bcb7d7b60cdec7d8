#!/usr/bin/env bash
# Runs every MediaGit test: formatting, lints, unit, property and CLI
# integration tests (the real binary on real media files).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace 2>&1
