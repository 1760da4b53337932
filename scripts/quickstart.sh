#!/usr/bin/env bash
# Quick start: set everything up on a fresh machine, then benchmark the default small model
# in-process with llama.cpp on the seed's three prompts. Extra flags are passed to inproc-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec target/release/inproc-bench --engine llamacpp \
  --model models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf \
  --warmup 2 --runs 10 --scenario smollm2-cpu "$@"
