#!/usr/bin/env bash
# Throughput of inproc-bench's in-process vLLM under load (`--engine vllm --concurrency N`)
# against vLLM's own offline API (`LLM.generate` on the same N requests at once,
# python/bench_offline_load.py), on the same model, threads and engine settings. A benchmark,
# not a test: per N it prints each side's median output tokens/s over the rounds, the ratio
# ours / offline of the medians and the geometric mean of the per-round ratios with its 95 %
# interval (target >= 0.95).
#
# What each side does (N requests of P random prompt tokens, G generated, greedy, ignore_eos):
#   offline: one LLM.generate call with all N requests; output tok/s = N·G / t of the call,
#            one timed call (--reps) after a warm-up call, as ours times one level after a
#            warm-up level (a median of three calls against one level would trim the offline
#            side's hiccups only). vLLM's scheduler batches them; outputs built once per
#            request when it finishes, not detokenized.
#   ours:    --concurrency N --requests N --input-tokens P --output-tokens G: the N requests
#            admitted at once, one engine step per runner step, each step's new token counts
#            read from the engine core's outputs and stamped; outputs built once per request
#            when it finishes, not detokenized (as offline); output tok/s = N·G / (first
#            arrival to the last token), after a
#            warm-up of N requests at the same concurrency (--warmup N), as the offline side's
#            warm-up call holds all N: a warm-up of one request leaves the first batch of N
#            shapes cold (measured: TTFT p50 29 against 15 ms, 0.76 of offline at N=8 instead
#            of 0.96). The prompt ids differ from the offline side's (both random, seeded,
#            same lengths); with ignore_eos and no prefix cache the work is the same.
# Each side runs in a fresh process per round; rounds alternate in ABBA order.
#
# Usage: scripts/bench-vllm-load-vs-offline.sh [options]
#   -m, --model DIR       Hugging Face model folder (default models/hf/tiny-llama)
#   -t, --threads N       torch threads for both (default: physical cores)
#   -N, --streams LIST    concurrency levels (default "4 8")
#   -p, --n-prompt N      prompt tokens per request (default 64)
#   -n, --n-gen N         generated tokens per request (default 32)
#   -r, --rounds N        alternating rounds (default 4; at least 2)
#       --reps N          timed LLM.generate calls per offline round, their median (default 1)
#       --compiled        let vLLM compile the model (default: --enforce-eager on both sides)
# Environment:
#   INPROC_PYTHON_ENV     the vLLM environment (default .venv-vllm)
#   INPROC_BENCH          our binary, built with --features vllm (default target/release/inproc-bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-vllm-load-vs-offline: error: $*" >&2; exit 1; }
log() { echo "bench-vllm-load-vs-offline: $*" >&2; }

MODEL="models/hf/tiny-llama"
THREADS="$(scripts/physical-cores.sh)"
STREAMS="4 8"
N_PROMPT=64
N_GEN=32
ROUNDS=4
REPS=1
EAGER=1
ENV_DIR="${INPROC_PYTHON_ENV:-.venv-vllm}"
OURS="${INPROC_BENCH:-target/release/inproc-bench}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -N|--streams) STREAMS="$2"; shift ;;
    -p|--n-prompt) N_PROMPT="$2"; shift ;;
    -n|--n-gen) N_GEN="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --compiled) EAGER=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

PY="$ENV_DIR/bin/python"
[[ -x "$PY" ]] || die "$PY not found: create the environment with python/setup-vllm-env.sh"
[[ -f "$MODEL/config.json" ]] || die "$MODEL is not a Hugging Face model folder (make the test one with $PY python/make_tiny_llama.py)"
[[ -x "$OURS" ]] || die "$OURS not found: cargo build --release --features vllm"
((ROUNDS >= 2)) || die "--rounds must be at least 2 (the interval needs two rounds)"

eager=()
if [[ $EAGER -eq 1 ]]; then eager=(--enforce-eager); fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

offline() { # $1 = N
  "$PY" python/bench_offline_load.py "$MODEL" --requests "$1" --input-tokens "$N_PROMPT" \
    --output-tokens "$N_GEN" --repeats "$REPS" --threads "$THREADS" --max-model-len 2048 \
    "${eager[@]}" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["output_tps"])'
}

ours() { # $1 = N, $2 = round
  local out="$TMP/ours-$1-$2.json"
  "$OURS" --engine vllm --model "$MODEL" --python-env "$ENV_DIR" --threads "$THREADS" \
    --max-model-len 2048 "${eager[@]}" --concurrency "$1" --requests "$1" \
    --input-tokens "$N_PROMPT" --output-tokens "$N_GEN" --temperature 0 --warmup "$1" --quiet \
    --output "$out" >/dev/null 2> >(grep -v '^results:' >&2)
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["load"]["levels"]["vllm@concurrency=" + sys.argv[2]]["summary"]["output_throughput_tps"])' "$out" "$1"
}

log "model $MODEL, $THREADS threads, $N_PROMPT prompt + $N_GEN generated tokens, streams ($STREAMS), $ROUNDS rounds, eager=$EAGER"
REPORT=()
for n in $STREAMS; do
  off=(); our=()
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(offline ours); else order=(ours offline); fi
    for side in "${order[@]}"; do
      if [[ $side == offline ]]; then v="$(offline "$n")"; off+=("$v"); else v="$(ours "$n" "$r")"; our+=("$v"); fi
      log "N=$n round $r: $side $v tok/s"
    done
  done
  REPORT+=("$("$PY" - "$n" "${off[*]}" "${our[*]}" <<'PYEOF'
import math, statistics as st, sys
sys.path.insert(0, "scripts")
from abba_stats import t95
n = sys.argv[1]
off = [float(x) for x in sys.argv[2].split()]
ours = [float(x) for x in sys.argv[3].split()]
logs = [math.log(u / o) for u, o in zip(ours, off)]
m, h = st.mean(logs), t95(len(logs) - 1) * st.stdev(logs) / math.sqrt(len(logs))
r = st.median(ours) / st.median(off)
fmt = lambda xs: " ".join("%.1f" % x for x in xs)
print("N=%s  vLLM offline LLM.generate median %8.2f tok/s (%s)\n      inproc-bench --engine vllm median %8.2f tok/s (%s)\n      ratio of medians %.3f; per-round geometric mean %.3f, 95 %% CI [%.3f, %.3f]; target >= 0.95: %s"
      % (n, st.median(off), fmt(off), st.median(ours), fmt(ours), r, math.exp(m), math.exp(m - h), math.exp(m + h), "ok" if r >= 0.95 else "BELOW"))
PYEOF
)")
done
echo "vLLM (in-process engine), $THREADS threads, $N_PROMPT prompt + $N_GEN generated tokens per request, $ROUNDS rounds (ABBA)"
printf '%s\n' "${REPORT[@]}"
exit 0
