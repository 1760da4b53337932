#!/usr/bin/env bash
# Decode speed of inproc-bench's in-process vLLM engine against vLLM's own offline API
# (`LLM.generate`, python/bench_offline.py) on the same model, threads and engine settings.
# A benchmark, not a test: it prints both decode rates and the ratio ours / offline (the target
# is >= 0.98: the per-token callback into Rust must not slow vLLM down).
#
# The two sides run alternately (A B, B A, ...) for several rounds, each in a fresh process, and
# the ratio is taken of the medians over rounds, so that this machine's drift hits both alike; the
# median of the per-round ratios (each round's two sides ran back to back) is printed beside it.
#
# What each side times (both: greedy, no detokenizing, prefix caching off, the same unbound
# OpenMP threads, --enforce-eager unless --compiled):
#   offline: whole LLM.generate calls, max_tokens=1 and max_tokens=N, repeated;
#            decode tok/s = (N - 1) / (median t_N - median t_1). No callback; the output
#            is built once, when the request finishes.
#   ours:    per-token stamps from the Rust recorder; tps = (N - 1) / (t_last - t_first),
#            median over the measured runs. A DELTA output per step, its token handed to
#            Rust: the cost this benchmark is there to show.
#
# Usage: scripts/bench-vllm-vs-offline.sh [options]
#   -m, --model DIR       Hugging Face model folder (default models/hf/tiny-llama; make it with
#                         .venv-vllm/bin/python python/make_tiny_llama.py)
#   -t, --threads N       torch threads for both (default: physical cores)
#   -n, --n-gen N         tokens to generate (default 128)
#   -r, --rounds N        alternating rounds (default 3)
#       --reps N          repetitions per round on each side (default 5)
#       --compiled        let vLLM compile the model (default: --enforce-eager on both sides)
# Environment:
#   INPROC_PYTHON_ENV     the vLLM environment (default .venv-vllm)
#   INPROC_BENCH          our binary, built with --features vllm (default target/release/inproc-bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-vllm-vs-offline: error: $*" >&2; exit 1; }
log() { echo "bench-vllm-vs-offline: $*" >&2; }

MODEL="models/hf/tiny-llama"
THREADS="$(scripts/physical-cores.sh)"
N_GEN=128
ROUNDS=3
REPS=5
EAGER=1
ENV_DIR="${INPROC_PYTHON_ENV:-.venv-vllm}"
OURS="${INPROC_BENCH:-target/release/inproc-bench}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -n|--n-gen) N_GEN="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --compiled) EAGER=0 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

PY="$ENV_DIR/bin/python"
[[ -x "$PY" ]] || die "$PY not found: create the environment with python/setup-vllm-env.sh"
[[ -f "$MODEL/config.json" ]] || die "$MODEL is not a Hugging Face model folder (make the test one with $PY python/make_tiny_llama.py)"
[[ -x "$OURS" ]] || die "$OURS not found: cargo build --release --features vllm"

eager_py=(); eager_ours=()
if [[ $EAGER -eq 1 ]]; then eager_py=(--enforce-eager); eager_ours=(--enforce-eager); fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

offline() {
  "$PY" python/bench_offline.py "$MODEL" --max-tokens "$N_GEN" --repeats "$REPS" \
    --threads "$THREADS" --max-model-len 2048 "${eager_py[@]}" \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["decode_tps"])'
}

ours() {
  local out="$TMP/ours-$1.json"
  "$OURS" --engine vllm --model "$MODEL" --python-env "$ENV_DIR" --threads "$THREADS" \
    --max-model-len 2048 "${eager_ours[@]}" --prompt short --max-tokens "$N_GEN" \
    --warmup 1 --runs "$REPS" --quiet --output "$out" >/dev/null 2> >(grep -v '^results:' >&2)
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"]["vllm"]["prompts"]["short"]["tps"]["p50"])' "$out"
}

log "model $MODEL, $THREADS threads, $N_GEN tokens, $ROUNDS rounds x $REPS reps, eager=$EAGER"
offline_tps=(); ours_tps=()
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(offline ours); else order=(ours offline); fi
  for side in "${order[@]}"; do
    if [[ $side == offline ]]; then v="$(offline)"; offline_tps+=("$v"); else v="$(ours "$r")"; ours_tps+=("$v"); fi
    log "round $r: $side ${v} tok/s"
  done
done

"$PY" - "${offline_tps[*]}" "${ours_tps[*]}" <<'PYEOF'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
ours = [float(x) for x in sys.argv[2].split()]
mo, mu = statistics.median(off), statistics.median(ours)
print(f"vLLM offline LLM.generate decode: {mo:8.1f} tok/s  (rounds: {', '.join(f'{x:.1f}' for x in off)})")
print(f"inproc-bench --engine vllm      : {mu:8.1f} tok/s  (rounds: {', '.join(f'{x:.1f}' for x in ours)})")
pairs = sorted(u / o for u, o in zip(ours, off))
print(f"ratio ours / offline             : {mu / mo:8.3f}  (target >= 0.98)")
print(f"median of per-round ratios       : {statistics.median(pairs):8.3f}  (rounds: {', '.join(f'{x:.3f}' for x in pairs)})")
PYEOF
