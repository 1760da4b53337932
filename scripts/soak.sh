#!/usr/bin/env bash
# Soak: 1,000 in-process runs on SmolLM2 and 10,000 HTTP requests against a loopback fixture,
# sampling the tool's RSS, descriptors and threads; prints growth after warmup and the slope.
# Shorter: scripts/soak.sh --inproc-runs 200 --http-requests 2000. Builds the binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURES="${INPROC_FEATURES-vllm}"
cargo build --release ${FEATURES:+--features "$FEATURES"} >&2
exec python3 scripts/soak.py "$@"
