#!/usr/bin/env bash
# Runs every MediaGit test: formatting, lints, unit, property and CLI
# integration tests (the real binary on real media files), the storage
# conformance suite against real S3, Azure Blob and GCS servers, and the CLI
# tests again with the repositories in S3.
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean clone gains nothing from incremental compilation, and its state
# (gigabytes for ~25 test binaries) counts against the CI machine's disk.
export CARGO_INCREMENTAL=0
./scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
./scripts/check-unused-deps.sh
# Real object-store servers (S3, Azure Blob, GCS) on 127.0.0.1, stopped on exit.
trap './scripts/test-servers.sh stop' EXIT
eval "$(./scripts/test-servers.sh start)"
export MEDIAGIT_REQUIRE_SERVERS=1
# The failpoints feature builds the binary with the crash tests' SIGKILL
# points (crash.rs requires it; an installed binary never has them).
cargo test --workspace --features mediagit-cli/failpoints 2>&1
# Fuzzing (scripts/fuzz.sh): every decoder and parser target for
# MEDIAGIT_FUZZ_SECONDS each (default 10; 0 = replay the seed corpus only)
# from the checked-in seeds in fuzz/corpus-seed/; fails on any crash. The
# two targets that link mediagit-repo (reflog_line, parse_revision) roughly
# triple the fuzz build, so CI leaves them out unless MEDIAGIT_FUZZ_REPO=1.
echo "== fuzzing"
MEDIAGIT_FUZZ_REPO="${MEDIAGIT_FUZZ_REPO:-0}" ./scripts/fuzz.sh "${MEDIAGIT_FUZZ_SECONDS:-10}"
# The repository's CLI tests again, with every repository's objects and refs
# in the S3 server (integrity.rs and crash.rs damage or kill local files and
# stay local-only, as do merging.rs's kill loops, whose copies would share
# one store; backends.rs covers fsck, verify and gc on every store).
echo "== CLI tests with objects and refs in S3 (moto)"
# (--workspace and the same features as above: the same build, nothing
# compiled again.)
AWS_ENDPOINT_URL="$MEDIAGIT_TEST_S3" MEDIAGIT_TEST_STORAGE=s3://mediagit-test \
  cargo test --workspace --features mediagit-cli/failpoints --test core_workflow --test staging \
  --test history --test branching --test bad_input --test safety --test remotes --test server \
  --test merging --test media_info --test backup 2>&1
# And once more with every repository encrypted (init --encrypt, the
# cheapest key file; FORMAT.md §13): the same commands on sealed packs,
# keyed ids, sealed refs and HEAD in the bucket.
echo "== CLI tests with encrypted repositories in S3 (moto)"
AWS_ENDPOINT_URL="$MEDIAGIT_TEST_S3" MEDIAGIT_TEST_STORAGE=s3://mediagit-test MEDIAGIT_TEST_ENCRYPT=1 \
  cargo test --workspace --features mediagit-cli/failpoints --test core_workflow --test staging \
  --test history --test branching --test bad_input --test safety --test remotes --test server \
  --test merging --test media_info --test backup 2>&1
