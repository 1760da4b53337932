#!/usr/bin/env bash
# Decode speed of inproc-bench's in-process llama.cpp engine against upstream
# `llama-bench` (same llama.cpp build, same model, same thread count).
# A benchmark, not a test: it prints llama-bench's tg tok/s, ours, and the
# ratio ours / llama-bench (the target is >= 0.99).
#
# This machine's speed can drift 20-40 % between runs, so the two are run back
# to back, interleaved for several rounds, and the ratio is taken of the
# medians over rounds. The order alternates (A B, B A, A B, ...) so that a
# steady drift does not favour either side.
#
# What each side times:
#   llama-bench tg: fills the KV cache with -d <depth> tokens (untimed), then
#     times -n single-token llama_decode calls fed random token ids, with no
#     sampling and no detokenization; tok/s = n_gen / total time, averaged
#     over -r repetitions (after one untimed warmup run).
#   inproc-bench: prefills the real prompt, then generates with sampling and
#     detokenization; tps = (n-1) / (t_last_token - t_first_token), i.e. the
#     decode steps after the first token, with prefill excluded.
#   To make both decode at the same context depth, llama-bench gets
#   -p <our prompt tokens> and -d <our prompt tokens>; its tg line is
#   "tg<n> @ d<P>". (Its pp line, pp<P> @ d<P>, is printed for information
#   only: it is not comparable to our prefill, which starts from depth 0.)
#   Our side decodes n-1 = 127 steps at depths P..P+126, llama-bench 128 steps
#   at P..P+127: the same work to within one token.
#
# Usage: scripts/bench-vs-llama-bench.sh [options]
#   -m, --model PATH       GGUF model (default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -t, --threads N        threads for both (default: physical cores)
#   -n, --n-gen N          tokens to generate (default 128)
#   -r, --rounds N         interleaved rounds (default 3)
#       --reps N           repetitions per round: llama-bench -r, our --runs (default 5)
#   -p, --n-prompt N       prompt tokens; default: read from a first run of ours
#       --llama-bench-only run only llama-bench (needs no inproc-bench binary;
#                          --n-prompt defaults to 64 then)
#       --keep DIR         keep the raw JSON outputs in DIR
# Environment:
#   LLAMA_BENCH   llama-bench binary (default vendor/llama.cpp-b11434/bin/llama-bench)
#   INPROC_BENCH  our binary (default target/release/inproc-bench)
#   LLAMA_BENCH_ARGS, INPROC_BENCH_ARGS  extra arguments for each side
#                 (e.g. LLAMA_BENCH_ARGS="-ngl 99 -fa 1" for a GPU build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-vs-llama-bench: error: $*" >&2; exit 1; }
log() { echo "bench-vs-llama-bench: $*" >&2; }

MODEL="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS="$(scripts/physical-cores.sh)"
N_GEN=128
ROUNDS=3
REPS=5
N_PROMPT=""
LB_ONLY=0
KEEP=""
LLAMA_BENCH="${LLAMA_BENCH:-vendor/llama.cpp-b11434/bin/llama-bench}"
INPROC_BENCH="${INPROC_BENCH:-target/release/inproc-bench}"
read -r -a LB_EXTRA <<<"${LLAMA_BENCH_ARGS:-}"
read -r -a OURS_EXTRA <<<"${INPROC_BENCH_ARGS:-}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -n|--n-gen) N_GEN="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    -p|--n-prompt) N_PROMPT="$2"; shift ;;
    --llama-bench-only) LB_ONLY=1 ;;
    --keep) KEEP="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

command -v python3 >/dev/null || die "python3 is required to read the JSON outputs"
[[ -f "$MODEL" ]] || die "model not found: $MODEL (scripts/fetch-model.sh fetches the default one)"
[[ -x "$LLAMA_BENCH" ]] || die "llama-bench not found at $LLAMA_BENCH (run vendor/build-llama-tools.sh)"
if [[ "$LB_ONLY" == 0 ]]; then
  [[ -x "$INPROC_BENCH" ]] || die "$INPROC_BENCH not found (cargo build --release), or use --llama-bench-only"
fi

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-llama-bench.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi

# The prompt: plain text, fed without a chat template (--raw-prompt).
PROMPT_TEXT="The history of computing is a story of ever smaller and faster machines. \
Early computers filled whole rooms and used vacuum tubes; transistors and then \
integrated circuits shrank them onto a single chip. Write a short essay about \
what changed for the people who programmed them, and why it mattered."
PROMPT_FILE="$WORK/prompt.json"
python3 - "$PROMPT_FILE" "$PROMPT_TEXT" "$N_GEN" <<'PY'
import json, sys
path, text, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "w") as f:
    json.dump([{"name": "bench", "prompt": text, "max_tokens": n}], f)
PY

# Read a number from our output JSON: results.llamacpp.prompts.bench.<key>.mean
ours_field() {
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["results"]["llamacpp"]["prompts"]["bench"][sys.argv[2]]["mean"])
PY
}

run_ours() { # $1 = output json, $2 = warmup, $3 = runs
  "$INPROC_BENCH" --engine llamacpp --model "$MODEL" --threads "$THREADS" \
    --raw-prompt --prompt-file "$PROMPT_FILE" --warmup "$2" --runs "$3" \
    --quiet --output "$1" "${OURS_EXTRA[@]}" >"$1.log" 2>&1 \
    || { cat "$1.log" >&2; die "inproc-bench failed"; }
}

if [[ -z "$N_PROMPT" ]]; then
  if [[ "$LB_ONLY" == 1 ]]; then
    N_PROMPT=64
  else
    log "measuring the prompt's token count with one run of ours"
    run_ours "$WORK/ours-probe.json" 0 1
    N_PROMPT="$(ours_field "$WORK/ours-probe.json" prompt_tokens)"
    N_PROMPT="$(printf '%.0f' "$N_PROMPT")"
  fi
fi
[[ "$N_PROMPT" =~ ^[0-9]+$ ]] || die "bad prompt token count: $N_PROMPT"

run_llama_bench() { # $1 = output json
  "$LLAMA_BENCH" -m "$MODEL" -p "$N_PROMPT" -n "$N_GEN" -d "$N_PROMPT" \
    -t "$THREADS" -r "$REPS" -o json "${LB_EXTRA[@]}" >"$1" 2>"$1.log" \
    || { cat "$1.log" >&2; die "llama-bench failed"; }
}

# tg tok/s (mean over reps) from llama-bench's JSON; also prints pp for information.
lb_field() { # $1 = json, $2 = tg|pp
  python3 - "$1" "$2" "$N_GEN" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
kind, n_gen = sys.argv[2], int(sys.argv[3])
for r in rows:
    if kind == "tg" and r["n_gen"] == n_gen and r["n_prompt"] == 0:
        print(r["avg_ts"]); break
    if kind == "pp" and r["n_prompt"] > 0 and r["n_gen"] == 0:
        print(r["avg_ts"]); break
else:
    sys.exit("no %s entry in llama-bench output" % kind)
PY
}

log "model=$MODEL threads=$THREADS n_gen=$N_GEN prompt/depth=$N_PROMPT rounds=$ROUNDS reps=$REPS"
LB_TG=(); LB_PP=(); OURS_TG=()
for ((i = 1; i <= ROUNDS; i++)); do
  if ((i % 2 == 1)); then order=(lb ours); else order=(ours lb); fi
  for side in "${order[@]}"; do
    if [[ "$side" == lb ]]; then
      run_llama_bench "$WORK/llama-bench-$i.json"
      LB_TG+=("$(lb_field "$WORK/llama-bench-$i.json" tg)")
      LB_PP+=("$(lb_field "$WORK/llama-bench-$i.json" pp)")
      log "round $i: llama-bench tg${N_GEN}@d${N_PROMPT} ${LB_TG[-1]} tok/s"
    elif [[ "$LB_ONLY" == 0 ]]; then
      run_ours "$WORK/ours-$i.json" 1 "$REPS"
      OURS_TG+=("$(ours_field "$WORK/ours-$i.json" tps)")
      log "round $i: inproc-bench decode ${OURS_TG[-1]} tok/s"
    fi
  done
done

python3 - "${#LB_TG[@]}" "${LB_TG[@]}" "${LB_PP[@]}" "${OURS_TG[@]}" \
  "$N_GEN" "$N_PROMPT" "$THREADS" <<'PY'
import statistics as st, sys
a = sys.argv[1:]
k = int(a[0]); lb = list(map(float, a[1:1 + k])); pp = list(map(float, a[1 + k:1 + 2 * k]))
rest = a[1 + 2 * k:]
ours = list(map(float, rest[:-3])); n_gen, n_p, t = rest[-3:]
fmt = lambda xs: " ".join("%.2f" % x for x in xs)
print("threads %s, prompt/depth %s tokens, %s generated, %d rounds" % (t, n_p, n_gen, k))
print("llama-bench pp%s @ d%s   median %8.2f tok/s   (rounds: %s; not comparable to our prefill)" % (n_p, n_p, st.median(pp), fmt(pp)))
print("llama-bench tg%s @ d%s   median %8.2f tok/s   (rounds: %s)" % (n_gen, n_p, st.median(lb), fmt(lb)))
if ours:
    print("inproc-bench decode       median %8.2f tok/s   (rounds: %s)" % (st.median(ours), fmt(ours)))
    r = st.median(ours) / st.median(lb)
    print("ratio ours / llama-bench  %.3f   (target >= 0.99: %s)" % (r, "ok" if r >= 0.99 else "BELOW"))
PY
[[ -n "$KEEP" ]] && log "raw outputs kept in $WORK"
exit 0
