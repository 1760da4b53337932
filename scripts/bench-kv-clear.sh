#!/usr/bin/env bash
# Does the cost of forgetting the previous request depend on the context size? It must not: the
# in-process engine drops the sequence's KV cells (metadata only) at each request start, as
# llama-server does, instead of zeroing the whole KV buffer (whose size grows with --ctx-size).
# A benchmark, not a test: the same prompt at --ctx-size 512 (A) and 16384 (B), interleaved in
# ABBA order for several rounds, then the TTFT medians, their ratio and a 95 % interval
# (scripts/abba_stats.py). Expected: a ratio within noise of 1.
#
# Usage: scripts/bench-kv-clear.sh [ROUNDS] [RUNS]   (defaults 6 and 10)
# Environment: INPROC_BENCH (binary, default target/release/inproc-bench), MODEL, THREADS,
#              KEEP=DIR to keep the results files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-6}"
RUNS="${2:-10}"
BIN="${INPROC_BENCH:-target/release/inproc-bench}"
MODEL="${MODEL:-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${THREADS:-$(scripts/physical-cores.sh)}"
DIR="${KEEP:-$(mktemp -d)}"
mkdir -p "$DIR"
[[ -x "$BIN" ]] || { echo "bench-kv-clear: $BIN not built: run scripts/setup.sh" >&2; exit 1; }

side() { # name ctx round
  "$BIN" --model "$MODEL" --threads "$THREADS" --ctx-size "$2" --prompt short --max-tokens 16 \
    --warmup 2 --runs "$RUNS" --quiet --output "$DIR/$1_$3.json" 2>/dev/null
}
for ((r = 0; r < ROUNDS; r++)); do
  if ((r % 2 == 0)); then side A 512 "$r"; side B 16384 "$r"; else side B 16384 "$r"; side A 512 "$r"; fi
  echo "bench-kv-clear: round $((r + 1))/$ROUNDS done" >&2
done
python3 scripts/abba_stats.py "$DIR" --field prompts.short.ttft_ms.p50 --a "ctx 512" --b "ctx 16384"
[[ -n "${KEEP:-}" ]] || rm -rf "$DIR"
