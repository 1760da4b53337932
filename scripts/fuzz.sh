#!/usr/bin/env bash
# Runs the property tests of tests/properties.rs (SSE parser, results reader, prompt files, sweep
# lists, GGUF check) with many more cases than CI does, one property at a time, and prints the
# cases, seconds and result of each. Usage: scripts/fuzz.sh [CASES]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${1:-${PROPTEST_CASES:-20000}}"
FEATURES="${INPROC_FEATURES-vllm}"
args=(--release --test properties)
[ -n "$FEATURES" ] && args+=(--features "$FEATURES")
cargo test "${args[@]}" --no-run 2>/dev/null
mapfile -t tests < <(cargo test "${args[@]}" -- --list 2>/dev/null | sed -n 's/: test$//p')
printf '%-72s %8s %9s  %s\n' property cases seconds result
failed=0
total_start=$(date +%s.%N)
for t in "${tests[@]}"; do
  start=$(date +%s.%N)
  if out=$(PROPTEST_CASES="$CASES" cargo test "${args[@]}" -- --exact "$t" --test-threads=1 2>&1); then
    result=ok
  else
    result=FAILED
    failed=$((failed + 1))
    echo "$out" | grep -E 'minimal failing input|panicked|assert' | head -5 >&2
  fi
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  printf '%-72s %8s %9.1f  %s\n' "$t" "$CASES" "$secs" "$result"
done
total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
printf 'total: %.1f s, %d of %d properties failed\n' "$total" "$failed" "${#tests[@]}"
[ "$failed" -eq 0 ]
