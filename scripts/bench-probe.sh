#!/usr/bin/env bash
# The memory-bandwidth probe (`inproc-bench probe`) against a reference
# STREAM-like read kernel from a packaged tool: likwid-bench's `load_avx`
# (Debian/Ubuntu package `likwid`: each thread loads its share of a vector
# with AVX instructions, nothing stored), on the same thread count and the
# same buffer size. A benchmark, not a test: it prints each side's GB/s
# (10^9 bytes/s) per round, their medians, the ratio probe / reference and a
# 95% confidence interval of the per-round ratios. The goal is a ratio within
# 10% of 1.
#
# Both sides do the same work and sum it up the same way:
#   likwid-bench: bytes loaded / time over all its iterations (it picks the
#     iteration count so that a run takes a second or more), threads pinned;
#     `-W`, so that each thread first touches its own share, as the probe's
#     threads do (`-w` would place every page from one thread).
#   inproc-bench probe: its `sustained` figure, bytes / time over all its
#     timed passes (each pass: all threads start together, until the last is
#     done), with --min-time-ms set to the time likwid-bench read for in a
#     first, untimed call, so that both read for as long. The probe's median
#     and best passes (the best is what a run records as the measured peak)
#     are printed too: on a host whose bandwidth varies within a second they
#     read above the aggregate.
# The machine's speed drifts (other jobs, frequency), so the two sides run
# back to back, alternating A B, B A, ... for several rounds.
#
# Usage: scripts/bench-probe.sh [options]
#   -t, --threads N     threads for both (default: physical cores)
#   -r, --rounds N      interleaved rounds (default 6)
#       --size-mib N    buffer size (default: the probe's own default, 8 x LLC)
#       --reps N        the probe's least repetitions per round (default 10)
#       --min-time-ms MS   the probe's least read time (default: likwid-bench's)
#       --keep DIR      keep the raw outputs in DIR
# Environment:
#   INPROC_BENCH  our binary (default target/release/inproc-bench)
#   LIKWID_BENCH  likwid-bench (default: on PATH); LIKWID_KERNEL (default load_avx)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bench-probe: error: $*" >&2; exit 1; }
log() { echo "bench-probe: $*" >&2; }

THREADS="$(scripts/physical-cores.sh)"
ROUNDS=6
SIZE_MIB=""
REPS=10
MIN_TIME_MS=""
KEEP=""
INPROC_BENCH="${INPROC_BENCH:-target/release/inproc-bench}"
LIKWID_BENCH="${LIKWID_BENCH:-likwid-bench}"
LIKWID_KERNEL="${LIKWID_KERNEL:-load_avx}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -t|--threads) THREADS="$2"; shift ;;
    -r|--rounds) ROUNDS="$2"; shift ;;
    --size-mib) SIZE_MIB="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --min-time-ms) MIN_TIME_MS="$2"; shift ;;
    --keep) KEEP="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

command -v python3 >/dev/null || die "python3 is required to read the outputs"
[[ -x "$INPROC_BENCH" ]] || die "$INPROC_BENCH not found (cargo build --release)"
command -v "$LIKWID_BENCH" >/dev/null \
  || die "likwid-bench not found: install the reference with 'apt-get install likwid'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "bad --rounds: $ROUNDS"

if [[ -n "$KEEP" ]]; then
  mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-probe.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi

probe() { # $1 = output json
  local size=()
  [[ -n "$SIZE_MIB" ]] && size=(--size-mib "$SIZE_MIB")
  "$INPROC_BENCH" probe --threads "$THREADS" --reps "$REPS" --min-time-ms "${MIN_TIME_MS:-0}" \
    "${size[@]}" --format json \
    >"$1" 2>"$1.log" || { cat "$1.log" >&2; die "inproc-bench probe failed"; }
}

field() { # $1 = json, $2 = key of cpu
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu"][sys.argv[2]])' "$1" "$2"
}

# The buffer: the probe's default unless given, so that both read the same amount.
if [[ -z "$SIZE_MIB" ]]; then
  probe "$WORK/size.json"
  SIZE_MIB=$(( $(field "$WORK/size.json" buffer_bytes) / 1048576 ))
fi

likwid() { # $1 = output text; prints GB/s
  # likwid-bench counts sizes in 10^6 bytes ("MB"), and MByte/s in 10^6 bytes/s.
  local mb=$(( SIZE_MIB * 1048576 / 1000000 ))
  "$LIKWID_BENCH" -t "$LIKWID_KERNEL" -W "N:${mb}MB:${THREADS}" >"$1" 2>&1 \
    || { cat "$1" >&2; die "likwid-bench failed"; }
  awk '/^MByte\/s:/ { printf "%.4f\n", $2 / 1000 }' "$1"
}

# How long likwid-bench reads (its "Time:" line, seconds), from a first call that also warms up.
if [[ -z "$MIN_TIME_MS" ]]; then
  likwid "$WORK/likwid-calibrate.txt" >/dev/null
  MIN_TIME_MS=$(awk '/^Time:/ { printf "%d\n", $2 * 1000 + 0.5 }' "$WORK/likwid-calibrate.txt")
  [[ -n "$MIN_TIME_MS" ]] || die "no Time line in likwid-bench's output ($WORK/likwid-calibrate.txt)"
fi

log "threads=$THREADS buffer=${SIZE_MIB} MiB rounds=$ROUNDS probe reps>=$REPS read>=${MIN_TIME_MS} ms reference=likwid-bench $LIKWID_KERNEL"
OURS=(); MED=(); BEST=(); REF=()
for ((i = 1; i <= ROUNDS; i++)); do
  if ((i % 2 == 1)); then order=(ours ref); else order=(ref ours); fi
  for side in "${order[@]}"; do
    if [[ "$side" == ours ]]; then
      probe "$WORK/probe-$i.json"
      OURS+=("$(field "$WORK/probe-$i.json" sustained_gbps)")
      MED+=("$(field "$WORK/probe-$i.json" median_gbps)")
      BEST+=("$(field "$WORK/probe-$i.json" best_gbps)")
      log "round $i: inproc-bench probe sustained $(printf %.2f "${OURS[-1]}") GB/s over $(field "$WORK/probe-$i.json" reps) passes (median $(printf %.2f "${MED[-1]}"), best $(printf %.2f "${BEST[-1]}"))"
    else
      REF+=("$(likwid "$WORK/likwid-$i.txt")")
      [[ -n "${REF[-1]}" ]] || die "no MByte/s line in likwid-bench's output ($WORK/likwid-$i.txt)"
      log "round $i: likwid-bench $LIKWID_KERNEL ${REF[-1]} GB/s"
    fi
  done
done

python3 - "$ROUNDS" "${OURS[@]}" "${MED[@]}" "${BEST[@]}" "${REF[@]}" "$THREADS" "$SIZE_MIB" "$LIKWID_KERNEL" "$MIN_TIME_MS" <<'PY'
import math, statistics as st, sys
a = sys.argv[1:]
k = int(a[0]); col = lambda j: list(map(float, a[1 + j * k:1 + (j + 1) * k]))
ours, med, best, ref = col(0), col(1), col(2), col(3)
threads, size, kernel, ms = a[1 + 4 * k:]
fmt = lambda xs: " ".join("%.2f" % x for x in xs)
print("threads %s, buffer %s MiB, %d rounds interleaved, each side reads >= %s ms (GB/s = 10^9 bytes/s)"
      % (threads, size, k, ms))
print("inproc-bench probe sustained median %7.2f GB/s   (rounds: %s)" % (st.median(ours), fmt(ours)))
print("  its median pass            median %7.2f GB/s   (rounds: %s)" % (st.median(med), fmt(med)))
print("  its best pass              median %7.2f GB/s   (rounds: %s)" % (st.median(best), fmt(best)))
print("likwid-bench %-15s median %7.2f GB/s   (rounds: %s)" % (kernel, st.median(ref), fmt(ref)))
ratios = [o / r for o, r in zip(ours, ref)]
r = st.median(ours) / st.median(ref)
line = "ratio sustained / reference    %.3f (of the medians)" % r
if k >= 2:
    # 95% t-interval of the mean per-round ratio (two-sided t quantiles for n-1 degrees of freedom).
    t = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}.get(k - 1, 2.0)
    m, s = st.mean(ratios), st.stdev(ratios)
    line += "; per round %.3f, 95%% CI [%.3f, %.3f]" % (m, m - t * s / math.sqrt(k), m + t * s / math.sqrt(k))
print(line)
print("goal: within 10%% of 1: %s" % ("ok" if abs(r - 1) <= 0.10 else "OUTSIDE"))
PY
[[ -n "$KEEP" ]] && log "raw outputs kept in $WORK"
exit 0
