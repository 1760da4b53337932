#!/usr/bin/env bash
# The test command: sets up everything the tests need on a fresh machine (system packages, the test
# model, llama-server and llama-bench of the same llama.cpp build, the release build) and runs the
# whole test suite against the real engines. Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

scripts/setup.sh

log "building llama-server and llama-bench (same llama.cpp build as in-process)"
vendor/build-llama-tools.sh

log "checking formatting"
cargo fmt --all -- --check

log "running the tests (release)"
cargo test --release ${INPROC_FEATURES:+--features "$INPROC_FEATURES"} -- --test-threads=1
