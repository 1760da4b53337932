#!/usr/bin/env bash
# Aggregate throughput of inproc-bench's in-process llama.cpp under load (continuous batching,
# `--concurrency N`) against upstream `llama-batched-bench` built from the same llama.cpp source,
# with the same model, lengths, context, batch sizes and threads. A benchmark, not a test: it
# prints each side's median output tokens/s per N, the ratio ours / llama-batched-bench of the
# medians, and the geometric mean of the per-round ratios with its 95 % interval (target >= 0.95).
#
# What each side does:
#   llama-batched-bench -npl N -npp P -ntg G: N sequences of P random prompt tokens, decoded as
#     one batch, then G steps of one token per sequence; no sampling (argmax-free: it feeds
#     fixed tokens). Throughput here = N·G / t, t the whole time (prompt and generation).
#   inproc-bench --concurrency N --requests N --input-tokens P --output-tokens G: the same N
#     requests of random token ids admitted at once (one wave), prompts in one llama_decode,
#     then one llama_decode per step for every sequence, each sampling its token with its own
#     chain (logit bias, temperature, dist) and detokenizing it. Throughput = output tokens /
#     the level's duration (first arrival to last token), i.e. also N·G / t.
#   So ours does more work per token (sampling over the vocabulary, detokenization, stamps).
#
# The two run back to back, interleaved over rounds in ABBA order, so that drift hits both.
#
# Usage: scripts/bench-load.sh [options]
#   -m, --model PATH     GGUF model (default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -t, --threads N      threads for both (default: physical cores)
#   -N, --streams LIST   concurrency levels (default "4 8")
#   -p, --n-prompt N     prompt tokens per sequence (default 64)
#   -n, --n-gen N        generated tokens per sequence (default 32)
#   -r, --rounds N       interleaved rounds (default 4)
#       --keep DIR       keep the raw outputs in DIR
# Environment:
#   LLAMA_BATCHED_BENCH  default vendor/llama.cpp-b11434/bin/llama-batched-bench
#   INPROC_BENCH         default target/release/inproc-bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-load: error: $*" >&2; exit 1; }
log() { echo "bench-load: $*" >&2; }

MODEL="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS="$(scripts/physical-cores.sh)"
STREAMS="4 8"
N_PROMPT=64
N_GEN=32
ROUNDS=4
KEEP=""
LBB="${LLAMA_BATCHED_BENCH:-vendor/llama.cpp-b11434/bin/llama-batched-bench}"
INPROC_BENCH="${INPROC_BENCH:-target/release/inproc-bench}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -N|--streams) STREAMS="$2"; shift ;;
    -p|--n-prompt) N_PROMPT="$2"; shift ;;
    -n|--n-gen) N_GEN="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --keep) KEEP="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

command -v python3 >/dev/null || die "python3 is required to read the outputs"
[[ -f "$MODEL" ]] || die "model not found: $MODEL (scripts/fetch-model.sh fetches the default one)"
[[ -x "$LBB" ]] || die "llama-batched-bench not found at $LBB (run vendor/build-llama-tools.sh)"
[[ -x "$INPROC_BENCH" ]] || die "$INPROC_BENCH not found (cargo build --release --features vllm)"

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-load.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi

ctx_for() { # N sequences of P+G tokens, rounded up to 256 as llama.cpp pads it
  local need=$(( $1 * (N_PROMPT + N_GEN) ))
  echo $(( (need + 255) / 256 * 256 ))
}

run_lbb() { # $1 = N, $2 = output
  "$LBB" -m "$MODEL" -c "$(ctx_for "$1")" -b 2048 -ub 512 -npp "$N_PROMPT" -ntg "$N_GEN" \
    -npl "$1" -t "$THREADS" --output-format jsonl >"$2" 2>"$2.log" \
    || { cat "$2.log" >&2; die "llama-batched-bench failed"; }
  python3 - "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r = rows[-1]
print(r["pl"] * r["tg"] / r["t"])
PY
}

run_ours() { # $1 = N, $2 = output
  "$INPROC_BENCH" --engine llamacpp --model "$MODEL" --threads "$THREADS" \
    --ctx-size "$(ctx_for "$1")" --batch-size 2048 --ubatch-size 512 \
    --concurrency "$1" --requests "$1" --input-tokens "$N_PROMPT" --output-tokens "$N_GEN" \
    --warmup 1 --quiet --output "$2" >"$2.log" 2>&1 \
    || { cat "$2.log" >&2; die "inproc-bench failed"; }
  python3 - "$2" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["load"]["levels"]["llamacpp@concurrency=%s" % sys.argv[2]]["summary"]["output_throughput_tps"])
PY
}

log "model=$MODEL threads=$THREADS prompt=$N_PROMPT gen=$N_GEN streams=($STREAMS) rounds=$ROUNDS"
REPORT=()
for n in $STREAMS; do
  LB=(); OURS=()
  for ((i = 1; i <= ROUNDS; i++)); do
    if ((i % 2 == 1)); then order=(lbb ours); else order=(ours lbb); fi
    for side in "${order[@]}"; do
      if [[ "$side" == lbb ]]; then
        LB+=("$(run_lbb "$n" "$WORK/lbb-n$n-$i.jsonl")")
        log "N=$n round $i: llama-batched-bench ${LB[-1]} tok/s"
      else
        OURS+=("$(run_ours "$n" "$WORK/ours-n$n-$i.json")")
        log "N=$n round $i: inproc-bench ${OURS[-1]} tok/s"
      fi
    done
  done
  REPORT+=("$(python3 - "$n" "${#LB[@]}" "${LB[@]}" "${OURS[@]}" <<'PY'
import math, statistics as st, sys
n, k = sys.argv[1], int(sys.argv[2])
lb = list(map(float, sys.argv[3:3 + k])); ours = list(map(float, sys.argv[3 + k:]))
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
logs = [math.log(o / l) for o, l in zip(ours, lb)]
g = math.exp(st.mean(logs))
if len(logs) > 1:
    h = T95.get(len(logs) - 1, 2.0) * st.stdev(logs) / math.sqrt(len(logs))
    ci = "[%.3f, %.3f]" % (math.exp(st.mean(logs) - h), math.exp(st.mean(logs) + h))
else:
    ci = "(one round: no interval)"
r = st.median(ours) / st.median(lb)
fmt = lambda xs: " ".join("%.1f" % x for x in xs)
print("N=%s  llama-batched-bench median %8.2f tok/s (%s)\n      inproc-bench        median %8.2f tok/s (%s)\n      ratio of medians %.3f; per-round geometric mean %.3f, 95 %% CI %s; target >= 0.95: %s"
      % (n, st.median(lb), fmt(lb), st.median(ours), fmt(ours), r, g, ci, "ok" if r >= 0.95 else "BELOW"))
PY
)")
done
echo "threads $THREADS, $N_PROMPT prompt + $N_GEN generated tokens per sequence, $ROUNDS rounds (ABBA)"
printf '%s\n' "${REPORT[@]}"
[[ -n "$KEEP" ]] && log "raw outputs kept in $WORK"
exit 0
