#!/usr/bin/env bash
# llama-bench's own tests, in-process against the llama-bench binary built from the same llama.cpp
# source (b11434), same model, same settings, 1 thread. A benchmark, not a test: run by hand on a
# quiet machine. `inproc-bench llama-bench --against llama-bench` interleaves the two per
# repetition in ABBA order (the order alternates every repetition) and prints, per test, the median
# t/s of each side, the median of the per-repetition ratios (in-process ÷ llama-bench) and the 95 %
# t interval of their geometric mean. The target is a ratio >= 0.99.
#
# Usage: scripts/bench-llama-bench.sh [extra llama-bench flags, e.g. -d 0,4096 -ctk q8_0]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf}
BIN=${BIN:-target/release/inproc-bench}
[ -x "$BIN" ] || { echo "Error: $BIN missing: run cargo build --release --features vllm" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "Error: $MODEL missing: run scripts/fetch-model.sh" >&2; exit 1; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
"$BIN" llama-bench -m "$MODEL" --against llama-bench -p 512 -n 128 -r 5 -t 1 "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
