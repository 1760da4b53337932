#!/usr/bin/env bash
# What the tool's own observers cost the token loop: inter-token latency (ITL p99 pooled over the
# runs' gaps, and the ITL mean) of in-process llama.cpp runs with and without
#   1. the progress bar (it redraws every 200 ms from indicatif's tick thread, and only on a
#      terminal, so the "with" side runs on a pseudo-terminal and the "without" side with --quiet);
#   2. on a build with the `cuda` feature, the GPU watch (a side thread sampling device memory and
#      NVML power every 20 ms; INPROC_BENCH_GPU_WATCH=off keeps it from running).
# A benchmark, not a test. Both sides run from this script (one process tree), interleaved in
# ABBA rounds (A B B A: a steady drift hits both alike); each round gives one ratio B/A of the
# round's means. It prints per side the median over rounds, the ratio of medians, and the mean
# ratio with its 95 % confidence interval (Student's t on the rounds' log ratios). A CI that
# contains 1.00 means the observer's cost is within noise.
#
# Usage: scripts/bench-observer-cost.sh [options]
#   -m, --model PATH     GGUF model (default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -t, --threads N      threads (default: physical cores)
#   -p, --prompt NAME    built-in prompt (default short)
#   -r, --runs N         measured runs per invocation (default 10)
#   -w, --warmup N       warm-up runs per invocation (default 1)
#       --rounds N       ABBA rounds (default 4)
#       --keep DIR       keep the results files in DIR
# Environment:
#   INPROC_BENCH       the binary (default target/release/inproc-bench)
#   INPROC_BENCH_ARGS  extra arguments for every invocation (e.g. "--n-gpu-layers 99")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-observer-cost: error: $*" >&2; exit 1; }
log() { echo "bench-observer-cost: $*" >&2; }

MODEL="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS="$(scripts/physical-cores.sh)"
PROMPT=short
RUNS=10
WARMUP=1
ROUNDS=4
KEEP=""
BIN="${INPROC_BENCH:-target/release/inproc-bench}"
read -r -a EXTRA <<<"${INPROC_BENCH_ARGS:-}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift ;;
    -t|--threads) THREADS="$2"; shift ;;
    -p|--prompt) PROMPT="$2"; shift ;;
    -r|--runs) RUNS="$2"; shift ;;
    -w|--warmup) WARMUP="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --keep) KEEP="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

command -v python3 >/dev/null || die "python3 is required (pseudo-terminal and statistics)"
[[ -f "$MODEL" ]] || die "model not found: $MODEL (scripts/fetch-model.sh fetches the default one)"
[[ -x "$BIN" ]] || die "$BIN not found: build it with cargo build --release"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-observer-cost.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi

# Runs the command in "$@" with stdin, stdout and stderr on a pseudo-terminal (so the progress bar
# draws), draining what it writes; exits with the command's status.
PTY_RUN="$WORK/pty_run.py"
cat >"$PTY_RUN" <<'PY'
import os, pty, sys
status = pty.spawn(sys.argv[1:], lambda fd: os.read(fd, 65536))
sys.exit(os.waitstatus_to_exitcode(status))
PY

# $1 = condition name, $2 = a tag unique to the invocation; runs it and prints the results file.
invoke() {
  local out="$WORK/$1-$2.json"
  local args=(--engine llamacpp --model "$MODEL" --threads "$THREADS" --prompt "$PROMPT"
              --warmup "$WARMUP" --runs "$RUNS" --output "$out" "${EXTRA[@]}")
  case "$1" in
    quiet)    env -u CI "$BIN" "${args[@]}" --quiet >"$out.log" 2>&1 ;;
    bar)      env -u CI python3 "$PTY_RUN" "$BIN" "${args[@]}" >"$out.log" 2>&1 ;;
    watch)    env -u CI INPROC_BENCH_GPU_WATCH=on "$BIN" "${args[@]}" --quiet >"$out.log" 2>&1 ;;
    nowatch)  env -u CI INPROC_BENCH_GPU_WATCH=off "$BIN" "${args[@]}" --quiet >"$out.log" 2>&1 ;;
  esac || { cat "$out.log" >&2; die "inproc-bench failed ($1)"; }
  echo "$out"
}

# $1 = A condition, $2 = B condition; appends "round side file" lines to $WORK/$1-$2.txt.
compare() {
  local a="$1" b="$2" list="$WORK/$1-$2.txt" r f i
  : >"$list"
  for ((r = 1; r <= ROUNDS; r++)); do
    i=0
    for side in "$a" "$b" "$b" "$a"; do
      i=$((i + 1))
      f="$(invoke "$side" "r$r-$i")"
      echo "$r $side $f" >>"$list"
    done
    log "$a/$b: round $r/$ROUNDS done"
  done
  python3 - "$list" "$a" "$b" "$PROMPT" <<'PY'
import json, math, statistics, sys
from collections import defaultdict

path, a, b, prompt = sys.argv[1:5]
rows = [line.split() for line in open(path) if line.strip()]
vals = defaultdict(lambda: defaultdict(list))  # metric -> (round, side) -> values
for r, side, f in rows:
    p = json.load(open(f))["results"]["llamacpp"]["prompts"][prompt]
    vals["ITL p99 (ms)"][(r, side)].append(p["itl_ms"]["p99"])
    vals["ITL mean (ms)"][(r, side)].append(p["itl_mean_ms"]["mean"])

# Student's t quantile (0.975) for small df.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}

def t975(df):
    keys = sorted(k for k in T975 if k <= df)
    return T975[keys[-1]] if keys else float("nan")

rounds = sorted({r for r, _, _ in rows}, key=int)
print(f"\n{b} against {a}: {len(rounds)} ABBA rounds, ratio = {b} / {a}")
print(f"  {'metric':<14} {'median ' + a:>14} {'median ' + b:>14} {'ratio of medians':>17} {'mean ratio [95% CI]':>26}")
for metric, by in vals.items():
    ra = [statistics.mean(by[(r, a)]) for r in rounds]
    rb = [statistics.mean(by[(r, b)]) for r in rounds]
    logs = [math.log(y / x) for x, y in zip(ra, rb)]
    m = statistics.mean(logs)
    if len(logs) > 1:
        half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        ci = f"{math.exp(m):.3f} [{math.exp(m - half):.3f}, {math.exp(m + half):.3f}]"
        noise = " (within noise)" if math.exp(m - half) <= 1.0 <= math.exp(m + half) else ""
    else:
        ci, noise = f"{math.exp(m):.3f} [one round: no CI]", ""
    ma, mb = statistics.median(ra), statistics.median(rb)
    print(f"  {metric:<14} {ma:>14.4f} {mb:>14.4f} {mb / ma:>17.3f} {ci:>26}{noise}")
PY
}

log "model $MODEL, $THREADS threads, prompt $PROMPT, $WARMUP warm-up + $RUNS runs per invocation"
compare quiet bar

features="$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["tool"].get("features", [])))' \
  "$(ls "$WORK"/quiet-*.json | head -n 1)")"
if [[ " $features " == *" cuda "* ]]; then
  compare nowatch watch
else
  log "this binary has no cuda feature (features: ${features:-none}): the GPU watch does not run, so it is not measured"
fi
