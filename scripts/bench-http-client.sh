#!/usr/bin/env bash
# Is the HTTP load client ever the bottleneck? A loopback server (examples/fixed_rate_server.rs)
# streams every request at a known fixed rate (one token per PERIOD_US); inproc-bench --engine http
# keeps 64, 256 and 1,024 requests in flight against it. Printed per level: the measured ITL
# (mean, p50, p99) against the true period, the mean error (goal: within 0.1 ms), the p99 of
# |gap − period| (an upper bound: it holds the server's own sleep jitter too), and the client's
# CPU time per token (user + system, getrusage of the client process).
#
# Usage: scripts/bench-http-client.sh [PERIOD_US=20000] [TOKENS=64]
# Run it on a quiet machine: the server's threads share the cores with the client.
set -euo pipefail
cd "$(dirname "$0")/.."
PERIOD_US=${1:-20000}
TOKENS=${2:-64}
cargo build --release --features vllm --example fixed_rate_server -q
cargo build --release --features vllm -q
BIN=target/release/inproc-bench
SERVER=target/release/examples/fixed_rate_server
TMP=$(mktemp -d)
"$SERVER" "$PERIOD_US" > "$TMP/url" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/url" ] && break; sleep 0.1; done
URL=$(head -1 "$TMP/url")
ulimit -n 8192 2>/dev/null || true
echo "fixed-rate server $URL: one token every $PERIOD_US us, $TOKENS tokens per request"
printf '%-8s %10s %10s %10s %10s %12s %14s %14s\n' clients "itl mean" "itl p50" "itl p99" "true" "mean error" "p99 |gap-T|" "CPU us/token"
for N in 64 256 1024; do
  python3 - "$BIN" "$URL" "$N" "$TOKENS" "$PERIOD_US" "$TMP/r$N.json" <<'PY'
import json, resource, subprocess, sys
bin_, url, n, tokens, period_us, out = sys.argv[1:]
n, tokens, period = int(n), int(tokens), int(period_us) / 1000.0
before = resource.getrusage(resource.RUSAGE_CHILDREN)
p = subprocess.run([bin_, "--engine", "http", "--url", url, "--concurrency", str(n),
                    "--requests", str(n), "--input-tokens", "8", "--output-tokens", str(tokens),
                    "--warmup", "0", "--quiet", "--output", out],
                   capture_output=True, text=True)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    sys.exit(f"client failed at {n} clients:\n{p.stderr}")
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
lvl = next(iter(json.load(open(out))["load"]["levels"].values()))
gaps = [g for r in lvl["requests"] if not r.get("error") for g in r["itl_ms"]]
toks = sum(r["output_tokens"] for r in lvl["requests"] if not r.get("error"))
gaps.sort()
mean = sum(gaps) / len(gaps)
p = lambda q: gaps[min(len(gaps) - 1, int(q * (len(gaps) - 1) + 0.5))]
dev = sorted(abs(g - period) for g in gaps)
p99dev = dev[min(len(dev) - 1, int(0.99 * (len(dev) - 1) + 0.5))]
failed = lvl["summary"]["failed"]
print(f"{n:<8} {mean:10.3f} {p(0.5):10.3f} {p(0.99):10.3f} {period:10.3f} {mean - period:+12.4f} {p99dev:14.3f} {cpu / max(toks, 1) * 1e6:14.2f}"
      + (f"  ({failed} failed)" if failed else ""))
PY
done
