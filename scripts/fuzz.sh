#!/usr/bin/env bash
# Fuzzes every MediaGit decoder and parser (fuzz/fuzz_targets/*.rs) with
# cargo-fuzz: libFuzzer, AddressSanitizer, debug assertions and overflow
# checks.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET (default 60) bounds each target's run
# (-max_total_time); 0 only replays the corpus once (a regression check,
# no new inputs). TARGETs default to all of them (`cargo fuzz list`).
# Each target runs over its working corpus fuzz/corpus/<target>/
# (gitignored, kept between runs) plus the checked-in seeds
# fuzz/corpus-seed/<target>/ (regenerate them with
# `cd fuzz && cargo run --release --example gen_seeds`). Prints, per target,
# the time, executions, coverage and new inputs; appends the same to
# fuzz/corpus/HISTORY.tsv and prints each target's total fuzzing time so
# far. Exits 1 if any target crashed, with the crash input's path (under
# fuzz/artifacts/<target>/) and libFuzzer's log in the output.
#
# Environment: MEDIAGIT_FUZZ_REPO=0 leaves out the targets that link
# mediagit-repo (reflog_line, parse_revision), whose build adds the
# object-store clients. Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1
# lets it accept the nightly flags (-Zsanitizer) cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
case "$secs" in '' | *[!0-9]*)
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
  ;;
esac
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Targets that need the `repo` feature (required-features in Cargo.toml).
repo_targets=$(awk '/^name = /{n=$3} /^required-features/{print n}' Cargo.toml | tr -d '"')
features=(--features repo)
[ "${MEDIAGIT_FUZZ_REPO:-1}" = 0 ] && features=()
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
run=()
for t in "${targets[@]}"; do
  if [ ${#features[@]} -eq 0 ] && grep -qx "$t" <<<"$repo_targets"; then
    echo "== $t: skipped (MEDIAGIT_FUZZ_REPO=0)"
  else
    run+=("$t")
  fi
done

t0=$(date +%s)
echo "== building ${#run[@]} fuzz targets (cargo fuzz build ${features[*]})"
cargo fuzz build "${features[@]}" 2>&1 | grep -v '^\s*Compiling ' || {
  echo "fuzz build failed" >&2
  exit 1
}
echo "== build took $(($(date +%s) - t0)) s"

bindir="target/$(rustc -vV | sed -n 's/^host: //p')/release"
mkdir -p target/fuzz-logs corpus
history=corpus/HISTORY.tsv
[ -f "$history" ] || printf 'date\ttarget\tseconds\texecs\tnew_inputs\tresult\n' >"$history"
# Scratch space for the targets that make a repository: tmpfs when there
# is one (their reflog writes fsync), removed after each target.
scratch_root=/dev/shm
[ -w "$scratch_root" ] || scratch_root=$PWD/target
failed=()
for t in "${run[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t" "corpus-seed/$t"
  log="target/fuzz-logs/$t.log"
  scratch=$(mktemp -d "$scratch_root/mediagit-fuzz.XXXXXX")
  limit=(-max_total_time="$secs")
  [ "$secs" = 0 ] && limit=(-runs=0)
  start=$(date +%s)
  rc=0
  TMPDIR=$scratch "$bindir/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    "corpus/$t" "corpus-seed/$t" >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  rm -rf "$scratch"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  cov0=$(grep -a -m1 -o 'INITED cov: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov1=$(grep -a -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  corpus=$(find "corpus/$t" -type f | wc -l)
  if [ "$rc" = 0 ]; then
    result=ok
  else
    result="CRASH (exit $rc)"
    failed+=("$t")
  fi
  printf '== %-22s %4ss  execs %-10s cov %s -> %s  new inputs %-5s corpus %-5s %s\n' \
    "$t" "$elapsed" "${execs:-?}" "${cov0:-?}" "${cov1:-?}" "${new:-0}" "$corpus" "$result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$elapsed" "${execs:-0}" \
    "${new:-0}" "$result" >>"$history"
  if [ "$rc" != 0 ]; then
    # The panic or sanitizer report, and where the input was saved.
    grep -a -E -A3 "panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)" "$log" |
      grep -a -v -E '^ +(#[0-9]|[0-9]+:|at )' | head -20 || true
    grep -a -E "Test unit written to|^Base64:" "$log" | sort -u || true
    echo "   (full log: fuzz/$log)"
  fi
done

echo "== total fuzzing time per target so far (fuzz/corpus/HISTORY.tsv):"
awk -F'\t' 'NR > 1 { s[$2] += $3; n[$2] += $4; if ($6 != "ok") c[$2]++ }
  END { for (t in s) printf "   %-22s %7d s  %12d execs  %d crashing runs\n", t, s[t], n[t], c[t] }' \
  "$history" | sort
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
