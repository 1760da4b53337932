#!/usr/bin/env bash
# At concurrency 1, the load path (`--concurrency 1`: the multi-stream engine, the load recorder)
# gives the same TTFT and ITL as the single-stream path (`inproc-bench --engine llamacpp`) on the
# same prompt, within noise. A benchmark, not a test: it prints per figure each side's median over
# the rounds, the ratio load / single of the medians and the geometric mean of the per-round ratios
# with its 95 % interval (scripts/abba_stats.py); parity is an interval that holds 1.
#
# What each side times (the same prompt, chat template applied, greedy, --ignore-eos, no prefix
# cache, the same threads, context and batch sizes):
#   single (A): --runs R measured runs one after another; TTFT from the request's start, ITL
#               every gap; the figure is the p50 over the runs (prompts.P.ttft_ms.p50, itl_ms.p50).
#   load   (B): --concurrency 1 --requests R: the same R requests one after another on the
#               multi-stream side; TTFT from the scheduled arrival (at concurrency 1 the request
#               is admitted at once), ITL every gap; the figure is the level's p50
#               (summary.ttft_ms.p50, summary.itl_ms.p50).
# The two run back to back, interleaved over rounds in ABBA order, so that drift hits both.
#
# Usage: scripts/bench-load-vs-single.sh [options]
#   -m, --model PATH     GGUF model (default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -t, --threads N      threads for both (default: physical cores)
#   -P, --prompt NAME    prompt of the seed's set (default short)
#   -n, --n-gen N        tokens to generate per request (default 64)
#   -R, --requests N     measured runs / requests per side and round (default 8)
#   -r, --rounds N       interleaved rounds (default 6; at least 2)
#       --keep DIR       keep the results files in DIR
# Environment:
#   INPROC_BENCH         default target/release/inproc-bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-load-vs-single: error: $*" >&2; exit 1; }
log() { echo "bench-load-vs-single: $*" >&2; }

MODEL="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS="$(scripts/physical-cores.sh)"
PROMPT=short
N_GEN=64
REQUESTS=8
ROUNDS=6
KEEP=""
INPROC_BENCH="${INPROC_BENCH:-target/release/inproc-bench}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -P|--prompt) PROMPT="$2"; shift ;;
    -n|--n-gen) N_GEN="$2"; shift ;;
    -R|--requests) REQUESTS="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --keep) KEEP="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

command -v python3 >/dev/null || die "python3 is required to read the results"
[[ -f "$MODEL" ]] || die "model not found: $MODEL (scripts/fetch-model.sh fetches the default one)"
[[ -x "$INPROC_BENCH" ]] || die "$INPROC_BENCH not found (cargo build --release --features vllm)"
((ROUNDS >= 2)) || die "--rounds must be at least 2 (the interval needs two rounds)"

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-load-vs-single.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi

COMMON=(--engine llamacpp --model "$MODEL" --threads "$THREADS" --ctx-size 2048
        --prompt "$PROMPT" --max-tokens "$N_GEN" --temperature 0 --ignore-eos true
        --prefix-cache off --warmup 1 --quiet)

single() { # $1 = output
  "$INPROC_BENCH" "${COMMON[@]}" --runs "$REQUESTS" --output "$1" >"$1.log" 2>&1 \
    || { cat "$1.log" >&2; die "the single-stream run failed"; }
}

load() { # $1 = output
  "$INPROC_BENCH" "${COMMON[@]}" --concurrency 1 --requests "$REQUESTS" --output "$1" >"$1.log" 2>&1 \
    || { cat "$1.log" >&2; die "the load run failed"; }
}

log "model=$MODEL threads=$THREADS prompt=$PROMPT gen=$N_GEN requests=$REQUESTS rounds=$ROUNDS"
for ((i = 1; i <= ROUNDS; i++)); do
  round="$(printf '%02d' "$i")"
  if ((i % 2 == 1)); then order=(single load); else order=(load single); fi
  for side in "${order[@]}"; do
    if [[ $side == single ]]; then single "$WORK/A_$round.json"; else load "$WORK/B_$round.json"; fi
    log "round $i: $side done"
  done
done

echo "llama.cpp, $THREADS threads, prompt $PROMPT, $N_GEN tokens, $REQUESTS requests per side and round"
for f in ttft_ms itl_ms; do
  python3 scripts/abba_stats.py "$WORK" --key llamacpp --field "prompts.$PROMPT.$f.p50" \
    --key-b "llamacpp@concurrency=1" --field-b "summary.$f.p50" \
    --a "single-stream" --b "load, concurrency 1"
done
[[ -n "$KEEP" ]] && log "results files kept in $WORK"
exit 0
