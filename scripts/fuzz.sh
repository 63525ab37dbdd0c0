#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (docs/fuzzing.md) for a fixed time, one after another.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]     default: 60 seconds, every target
#
# Installs cargo-fuzz if it is missing, builds the targets once (stable toolchain with
# RUSTC_BOOTSTRAP=1, no sanitizer: the code under test is safe Rust; debug assertions and
# overflow checks on), then runs each on a working corpus (fuzz/corpus-run/<target>, kept between
# runs, not committed) seeded from fuzz/corpus/<target> with the dictionary fuzz/dict/<target>.dict.
# Exits non-zero if any target crashes, times out (10 s on one input) or runs out of memory,
# after naming the input that did it (under fuzz/artifacts/<target>/) and how to replay it.
# Where visudo is installed, the sudoers corpus is then replayed through it (see below).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-60}"
shift || true
case "$secs" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number, not \`$secs\`" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

all=$(cargo fuzz list)
if [ "$#" -gt 0 ]; then targets="$*"; else targets="$all"; fi
for t in $targets; do
  grep -qx "$t" <<<"$all" || { echo "fuzz.sh: no fuzz target \`$t\` (have: $(echo $all))" >&2; exit 2; }
done

start=$(date +%s)
cargo fuzz build --sanitizer none
echo "fuzz.sh: built in $(($(date +%s) - start)) s"

mkdir -p artifacts
failed=()
summary=()
for t in $targets; do
  mkdir -p "corpus-run/$t" "corpus/$t"
  log="artifacts/$t.log"
  opts=(-max_total_time="$secs" -timeout=10 -print_final_stats=1)
  [ -f "dict/$t.dict" ] && opts+=(-dict="dict/$t.dict")
  echo "fuzz.sh: $t for $secs s"
  t0=$(date +%s)
  if cargo fuzz run --sanitizer none "$t" "corpus-run/$t" "corpus/$t" -- "${opts[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    echo "fuzz.sh: $t ok: ${runs:-?} executions, corpus $(ls "corpus-run/$t" | wc -l) inputs"
    summary+=("$t $(($(date +%s) - t0))s ${runs:-?} ok")
  else
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')
    summary+=("$t $(($(date +%s) - t0))s ${runs:-?} FAILED")
    failed+=("$t")
    echo "fuzz.sh: $t FAILED; the end of its log ($PWD/$log):"
    grep -E "panicked at|^SUMMARY|Test unit written to|ERROR: libFuzzer" "$log" | head -n 8 || tail -n 20 "$log"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    if [ -n "$artifact" ]; then
      echo "fuzz.sh: input: $artifact"
      echo "fuzz.sh: replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $t $artifact)"
    fi
  fi
done

# The built-in sudoers checker stands in for visudo where sudo is absent: every drop-in in the
# sudoers corpus that it accepts (or that the renderer writes) must pass the real visudo too.
if grep -qw sudoers <<<"$targets" && visudo=$(command -v visudo); then
  echo "fuzz.sh: sudoers: replaying its corpus through $visudo"
  if BREVET_FUZZ_VISUDO="$visudo" cargo fuzz run --sanitizer none sudoers "corpus-run/sudoers" "corpus/sudoers" \
    -- -runs=0 >artifacts/sudoers-visudo.log 2>&1; then
    echo "fuzz.sh: sudoers: visudo accepts every drop-in the checker accepts"
  else
    failed+=("sudoers-visudo")
    grep -E "panicked at|visudo:|Test unit written to" -A3 artifacts/sudoers-visudo.log | head -n 20
  fi
fi

echo "fuzz.sh: target, wall time (with its build), executions, result:"
printf '  %s\n' "${summary[@]}"
echo "fuzz.sh: done in $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: targets that found a problem: ${failed[*]}" >&2
  exit 1
fi
