#!/usr/bin/env bash
# Is the HTTP load client ever the bottleneck? A loopback server (examples/fixed_rate_server.rs)
# streams every request at a known fixed rate (one token per PERIOD_US); inproc-bench --engine http
# keeps 64, 256 and 1,024 requests in flight against it. The server logs the true gap between its
# writes of consecutive tokens of every request; printed per level: the measured ITL (mean, p99),
# the server's true gaps (mean, p99), the client's error gap by gap (measured − true: mean and
# p99 of its size; goal: within 0.1 ms) and the client's CPU time per token (user + system,
# getrusage of the client process).
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
"$SERVER" "$PERIOD_US" "$TMP/log" > "$TMP/url" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/url" ] && break; sleep 0.1; done
URL=$(head -1 "$TMP/url")
ulimit -n 8192 2>/dev/null || true
echo "fixed-rate server $URL: one token every $PERIOD_US us, $TOKENS tokens per request"
printf '%-8s %10s %10s %10s %10s %12s %14s %14s\n' clients "itl mean" "itl p99" "true mean" "true p99" "mean error" "p99 |error|" "CPU us/token"
for N in 64 256 1024; do
  : > "$TMP/log"
  python3 - "$BIN" "$URL" "$N" "$TOKENS" "$PERIOD_US" "$TMP/r$N.json" "$TMP/log" <<'PY'
import json, resource, subprocess, sys
bin_, url, n, tokens, period_us, out, log = sys.argv[1:]
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
data = json.load(open(out))
seed = data["config"]["seed"]
lvl = next(iter(data["load"]["levels"].values()))
true = {}
for line in open(log):
    f = line.split()
    if f:
        true[int(f[0])] = [int(x) / 1000.0 for x in f[1:]]
gaps, real, err = [], [], []
for r in lvl["requests"]:
    if r.get("error"):
        continue
    t = true.get((seed + r["index"]) % 2**32)
    if t is None or len(t) != len(r["itl_ms"]):
        continue
    gaps += r["itl_ms"]
    real += t
    err += [m - x for m, x in zip(r["itl_ms"], t)]
toks = sum(r["output_tokens"] for r in lvl["requests"] if not r.get("error"))
def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(0.99 * (len(v) - 1) + 0.5))]
mean = lambda v: sum(v) / len(v)
failed = lvl["summary"]["failed"]
print(f"{n:<8} {mean(gaps):10.3f} {p99(gaps):10.3f} {mean(real):10.3f} {p99(real):10.3f} {mean(err):+12.4f} {p99([abs(e) for e in err]):14.3f} {cpu / max(toks, 1) * 1e6:14.2f}"
      + (f"  ({failed} failed)" if failed else ""))
PY
done
