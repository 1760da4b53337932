#!/usr/bin/env python3
"""Medians, ratio and a 95 % confidence interval for an interleaved (ABBA) benchmark.

Reads pairs of inproc-bench results files, one pair per round (`A_<round>.json`,
`B_<round>.json` in a folder), takes one figure per file (a path inside the results
entry, e.g. `prompts.short.ttft_ms.p50`, or inside a load level, e.g. `summary.ttft_ms.p50`
with `--key llamacpp@concurrency=1`; `--key-b`/`--field-b` when B's file is of the other kind) and prints:
  - the median of each side over the rounds,
  - the ratio B / A of the medians,
  - the geometric mean of the per-round ratios B / A with its 95 % t interval
    (rounds are paired: A and B of one round ran back to back).
Used by the scripts/bench-*.sh benchmarks; standard library only.
"""
import argparse
import glob
import json
import math
import os
import statistics
import sys

# Two-sided 95 % Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
       16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(df):
    if df in T95:
        return T95[df]
    return T95[max(k for k in T95 if k <= df)] if df < 30 else 1.96


def figure(path, key, field):
    with open(path) as f:
        data = json.load(f)
    results = data["results"]
    levels = data.get("load", {}).get("levels", {})
    if key and key in levels:  # a load level (`llamacpp@concurrency=1`)
        entry = levels[key]
    else:
        entry = results[key] if key else next(iter(results.values()))
    v = entry
    for part in field.split("."):
        v = v[part]
    return float(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--field", required=True, help="path inside the entry, e.g. prompts.short.ttft_ms.p50")
    ap.add_argument("--key", default="", help="results key (default: the first entry)")
    ap.add_argument("--field-b", default="", help="B's path inside its entry, when it differs from A's")
    ap.add_argument("--key-b", default="", help="B's results (or load level) key, when it differs from A's")
    ap.add_argument("--a", default="A", help="name of side A")
    ap.add_argument("--b", default="B", help="name of side B")
    args = ap.parse_args()
    a, b = [], []
    for pa in sorted(glob.glob(os.path.join(args.folder, "A_*.json"))):
        pb = pa.replace(os.sep + "A_", os.sep + "B_")
        if os.path.exists(pb):
            a.append(figure(pa, args.key, args.field))
            b.append(figure(pb, args.key_b or args.key, args.field_b or args.field))
    if len(a) < 2:
        sys.exit("abba_stats: need at least two complete rounds")
    logs = [math.log(y / x) for x, y in zip(a, b)]
    m, s = statistics.mean(logs), statistics.stdev(logs)
    h = t95(len(logs) - 1) * s / math.sqrt(len(logs))
    ma, mb = statistics.median(a), statistics.median(b)
    what = args.field if not args.field_b else f"{args.field} (A) / {args.field_b} (B)"
    print(f"{what} over {len(a)} rounds (ABBA order)")
    print(f"  {args.a:<24} median {ma:10.3f}   rounds: " + " ".join(f"{x:.2f}" for x in a))
    print(f"  {args.b:<24} median {mb:10.3f}   rounds: " + " ".join(f"{x:.2f}" for x in b))
    print(f"  ratio {args.b} / {args.a}: medians {mb / ma:.3f}; per-round geometric mean "
          f"{math.exp(m):.3f} [95 % CI {math.exp(m - h):.3f}, {math.exp(m + h):.3f}]")


if __name__ == "__main__":
    main()
