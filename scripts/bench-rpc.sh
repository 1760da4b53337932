#!/usr/bin/env bash
# Decode rate over llama.cpp RPC workers: the in-process engine (`--rpc`) against
# upstream `llama-bench -rpc`, on the same two `ggml-rpc-server` workers that this
# script starts on loopback (same llama.cpp build, model, threads, -ngl 99).
# A benchmark, not a test: it prints each side's median decode rate, the ratio
# ours / llama-bench and a 95 % confidence interval of the per-round ratio.
#
# The sides take turns, one process each, in ABBA order (A B, B A, A B, ...), so
# a steady drift of this machine favours neither. A worker serves one client at a
# time, so the sides never overlap. Both decode at the same context depth: ours
# prefills the real prompt (P tokens) then decodes; llama-bench gets -d P.
#
# Usage: scripts/bench-rpc.sh [options]
#   -m, --model PATH   GGUF model (default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -t, --threads N    threads of the client and of each worker (default 1)
#   -n, --n-gen N      tokens to generate (default 64)
#   -r, --rounds N     ABBA rounds (default 4)
#       --reps N       repetitions per round: llama-bench -r, our --runs (default 3)
#       --keep DIR     keep the raw outputs in DIR
# Environment:
#   RPC_SERVER    worker binary (default vendor/llama.cpp-b11434/bin/ggml-rpc-server)
#   LLAMA_BENCH   llama-bench (default vendor/llama.cpp-b11434/bin/llama-bench)
#   INPROC_BENCH  our binary (default target/release/inproc-bench)
# Security: the workers bind to 127.0.0.1; the RPC protocol has no authentication.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-rpc: error: $*" >&2; exit 1; }
log() { echo "bench-rpc: $*" >&2; }

MODEL="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS=1
N_GEN=64
ROUNDS=4
REPS=3
KEEP=""
RPC_SERVER="${RPC_SERVER:-vendor/llama.cpp-b11434/bin/ggml-rpc-server}"
LLAMA_BENCH="${LLAMA_BENCH:-vendor/llama.cpp-b11434/bin/llama-bench}"
INPROC_BENCH="${INPROC_BENCH:-target/release/inproc-bench}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -n|--n-gen) N_GEN="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --keep) KEEP="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

command -v python3 >/dev/null || die "python3 is required to read the JSON outputs"
[[ -f "$MODEL" ]] || die "model not found: $MODEL (scripts/fetch-model.sh fetches the default one)"
for b in "$RPC_SERVER" "$LLAMA_BENCH"; do
  [[ -x "$b" ]] || die "$b not found (run vendor/build-llama-tools.sh)"
done
[[ -x "$INPROC_BENCH" ]] || die "$INPROC_BENCH not found (cargo build --release --features vllm)"

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-rpc.XXXXXX")"
fi
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "$KEEP" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_worker() { # sets WORKER=host:port (not in a subshell, so that PIDS keeps the pid)
  local port
  port="$(free_port)"
  "$RPC_SERVER" --host 127.0.0.1 --port "$port" -t "$THREADS" >"$WORK/worker-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; then
      WORKER="127.0.0.1:$port"; return 0
    fi
    sleep 0.1
  done
  die "worker on port $port did not start (see $WORK/worker-$port.log)"
}
start_worker; W1="$WORKER"
start_worker; W2="$WORKER"
RPC="$W1,$W2"

PROMPT_TEXT="The history of computing is a story of ever smaller and faster machines. \
Write a short essay about what changed for the people who programmed them."
PROMPT_FILE="$WORK/prompt.json"
python3 - "$PROMPT_FILE" "$PROMPT_TEXT" "$N_GEN" <<'PY'
import json, sys
json.dump([{"name": "bench", "prompt": sys.argv[2], "max_tokens": int(sys.argv[3])}], open(sys.argv[1], "w"))
PY

ours_field() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"]["llamacpp"]["prompts"]["bench"][sys.argv[2]]["mean"])' "$1" "$2"
}
run_ours() { # $1 = output json, $2 = warmup, $3 = runs
  "$INPROC_BENCH" --engine llamacpp --model "$MODEL" --threads "$THREADS" \
    --n-gpu-layers 99 --rpc "$RPC" --raw-prompt --prompt-file "$PROMPT_FILE" \
    --warmup "$2" --runs "$3" --roofline-probe false --quiet --output "$1" >"$1.log" 2>&1 \
    || { cat "$1.log" >&2; die "inproc-bench failed"; }
}
run_lb() { # $1 = output json
  "$LLAMA_BENCH" -m "$MODEL" -p 0 -n "$N_GEN" -d "$N_PROMPT" -t "$THREADS" \
    -ngl 99 -rpc "$RPC" -r "$REPS" -o json >"$1" 2>"$1.log" \
    || { cat "$1.log" >&2; die "llama-bench failed"; }
}
lb_tg() {
  python3 -c 'import json,sys; print(next(r["avg_ts"] for r in json.load(open(sys.argv[1])) if r["n_gen"] > 0))' "$1"
}

log "workers $RPC; measuring the prompt's token count with one run of ours"
run_ours "$WORK/probe.json" 0 1
N_PROMPT="$(printf '%.0f' "$(ours_field "$WORK/probe.json" prompt_tokens)")"
log "model=$MODEL threads=$THREADS n_gen=$N_GEN depth=$N_PROMPT rounds=$ROUNDS reps=$REPS"

LB=(); OURS=()
for ((i = 1; i <= ROUNDS; i++)); do
  if ((i % 2 == 1)); then order=(lb ours); else order=(ours lb); fi
  for side in "${order[@]}"; do
    if [[ "$side" == lb ]]; then
      run_lb "$WORK/lb-$i.json"; LB+=("$(lb_tg "$WORK/lb-$i.json")")
      log "round $i: llama-bench -rpc tg${N_GEN}@d${N_PROMPT} ${LB[-1]} tok/s"
    else
      run_ours "$WORK/ours-$i.json" 1 "$REPS"; OURS+=("$(ours_field "$WORK/ours-$i.json" tps)")
      log "round $i: inproc-bench --rpc decode ${OURS[-1]} tok/s"
    fi
  done
done

python3 - "${#LB[@]}" "${LB[@]}" "${OURS[@]}" <<'PY'
import math, statistics as st, sys
k = int(sys.argv[1]); lb = list(map(float, sys.argv[2:2 + k])); ours = list(map(float, sys.argv[2 + k:]))
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
fmt = lambda xs: " ".join("%.2f" % x for x in xs)
print("llama-bench -rpc tg      median %8.2f tok/s   (rounds: %s)" % (st.median(lb), fmt(lb)))
print("inproc-bench --rpc       median %8.2f tok/s   (rounds: %s)" % (st.median(ours), fmt(ours)))
print("ratio ours / llama-bench %.3f (medians)" % (st.median(ours) / st.median(lb)))
logs = [math.log(o / l) for o, l in zip(ours, lb)]
if len(logs) > 1:
    m, s = st.mean(logs), st.stdev(logs) / math.sqrt(len(logs))
    t = T95.get(len(logs) - 1, 1.96)
    print("per-round ratio          %.3f  95%% CI [%.3f, %.3f]  (geometric mean, %d rounds)"
          % (math.exp(m), math.exp(m - t * s), math.exp(m + t * s), len(logs)))
PY
[[ -n "$KEEP" ]] && log "raw outputs kept in $WORK"
exit 0
