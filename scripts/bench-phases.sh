#!/usr/bin/env bash
# Where each token's time goes on in-process llama.cpp: runs the engine on 1 thread and prints,
# per run, the per-token phase times (decode, sample, detok, own) the engine marked on the
# recorder, their sum against the measured per-token time (first to last token delivery over the
# tokens after the first; goal: equal within 2 %), and our decode total against llama.cpp's own
# t_eval_ms, and (rest, m-t_eval) the time outside decode per token by our marks against the window
# less llama.cpp's t_eval_ms (the sampler chain's own t_sample_ms is private in llama-cpp-2).
# Then the cost of one phase mark (benches/timing_path.rs, ns per mark).
# A benchmark, not a test: run it by hand on a quiet machine.
#
# Usage: scripts/bench-phases.sh [options]
#   -m, --model PATH     GGUF model (default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -p, --prompt NAME    built-in prompt (default short)
#   -r, --runs N         measured runs (default 5)
#   -n, --max-tokens N   tokens per run (default 64)
#       --no-mark-cost   skip the mark-cost benchmark (it compiles the bench profile)
# Environment:
#   INPROC_BENCH       the binary (default target/release/inproc-bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-phases: error: $*" >&2; exit 1; }

MODEL="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT=short
RUNS=5
MAX_TOKENS=64
MARK_COST=1
BIN="${INPROC_BENCH:-target/release/inproc-bench}"
while [ $# -gt 0 ]; do
  case "$1" in
    -m|--model) MODEL="$2"; shift 2 ;;
    -p|--prompt) PROMPT="$2"; shift 2 ;;
    -r|--runs) RUNS="$2"; shift 2 ;;
    -n|--max-tokens) MAX_TOKENS="$2"; shift 2 ;;
    --no-mark-cost) MARK_COST=0; shift ;;
    *) die "unknown option $1 (see the header of $0)" ;;
  esac
done
[ -x "$BIN" ] || die "no $BIN: run \`cargo build --release --features vllm\` first"
[ -f "$MODEL" ] || die "no model $MODEL: run scripts/fetch-model.sh"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$BIN" run --engine llamacpp --model "$MODEL" --threads 1 --prompt "$PROMPT" --warmup 1 \
  --runs "$RUNS" --max-tokens "$MAX_TOKENS" --quiet --output "$TMP/r.json" >/dev/null 2>"$TMP/err" \
  || { cat "$TMP/err" >&2; die "the run failed"; }

python3 - "$TMP/r.json" "$PROMPT" <<'PY'
import json, statistics, sys
j = json.load(open(sys.argv[1]))
p = j["results"]["llamacpp"]["prompts"][sys.argv[2]]
names = ["decode", "sample", "detok", "own"]
print("run  " + "".join(f"{n:>10}" for n in names) + f"{'sum':>10}{'measured':>10}{'diff %':>8}{'t_eval %':>10}{'rest':>10}{'m-t_eval':>10}   (ms per token)")
diffs, evals = [], []
for r in p["runs"]:
    ph = r["phases"]
    per = [ph["phases"][n]["per_token_ms"] for n in names]
    s, m = sum(per), ph["measured_per_token_ms"]
    d = 100 * (s - m) / m
    e = 100 * (ph["decode_total_ms"] / ph["engine_eval_ms"] - 1)
    # The sampling cross-check through llama.cpp's context counters: our time outside decode
    # (sample + detok + own) against the window less t_eval_ms, per token.
    rest = s - per[0]
    outside = (ph["measured_ms"] - ph["engine_eval_ms"]) / ph["tokens"]
    diffs.append(d); evals.append(e)
    print(f"{r['run']:<5}" + "".join(f"{x:10.4f}" for x in per) + f"{s:10.4f}{m:10.4f}{d:8.3f}{e:10.3f}{rest:10.4f}{outside:10.4f}")
pooled = p["phases"]
print("pooled: " + " · ".join(f"{n} {pooled['phases'][n]['share_pct']:.2f}%" for n in names))
worst = max(abs(d) for d in diffs)
print(f"phase sum vs measured per-token time: worst {worst:.3f}% (goal within 2 %): {'OK' if worst <= 2 else 'OVER'}")
print(f"decode marks vs llama.cpp t_eval_ms: median {statistics.median(evals):+.3f}%")
PY

if [ "$MARK_COST" = 1 ]; then
  cargo bench --bench timing_path 2>/dev/null | grep -E "ns/token|verdict"
fi
