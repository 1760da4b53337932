#!/usr/bin/env python3
"""Soak test: many in-process runs on SmolLM2 and many HTTP requests against a loopback fixture
server, sampling the tool's resident memory, open file descriptors and threads from /proc while it
runs. Prints, per phase, the figures after warmup: RSS growth (%), the slope of a least-squares
line through RSS (KiB per 1,000 runs), and descriptor and thread counts (first, last, max).

The tool keeps every run's record (timings, ITL gaps, text) in memory until it writes the results,
so some growth is data, not a leak: the results file's size per run is printed beside the slope.

Usage: scripts/soak.py [--inproc-runs 1000] [--http-requests 10000] [--bin PATH] [--model PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sse_body(tokens):
    events = []
    for i in range(tokens):
        chunk = {"choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}]}
        events.append("data: " + json.dumps(chunk) + "\n\n")
    usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": tokens}}
    events.append("data: " + json.dumps(usage) + "\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def start_fixture(tokens):
    body = sse_body(tokens)
    models = json.dumps({"object": "list", "data": [{"id": "soak", "owned_by": "fixture"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, ctype, data):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def do_GET(self):
            self.reply("application/json", models)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.reply("text/event-stream", body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kib = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kib, fds, threads


def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def soak(name, cmd, runs, results, interval, warmup_fraction):
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "CI": "1"})
    samples = []
    while proc.poll() is None:
        try:
            samples.append((time.monotonic() - started, *sample(proc.pid)))
        except (FileNotFoundError, ProcessLookupError, KeyError, ValueError):
            break
        time.sleep(interval)
    err = proc.communicate()[1].decode(errors="replace")
    duration = time.monotonic() - started
    if proc.returncode != 0:
        print(f"{name}: the tool exited {proc.returncode}:\n{err}", file=sys.stderr)
        return False
    with open(results) as f:
        done = json.load(f)
    ok = sum(p["successful_runs"] for e in done["results"].values() for p in e["prompts"].values())
    size = os.path.getsize(results)
    # After warmup: drop the start (model load, first allocations) and the very end (writing).
    cut = samples[int(len(samples) * warmup_fraction):]
    cut = cut[:-2] if len(cut) > 10 else cut
    if len(cut) < 5:
        print(f"{name}: too few samples ({len(samples)}); run longer", file=sys.stderr)
        return False
    t = [s[0] for s in cut]
    rss = [s[1] for s in cut]
    fds = [s[2] for s in cut]
    thr = [s[3] for s in cut]
    head, tail = sorted(rss[:5])[2], sorted(rss[-5:])[2]
    growth = (tail - head) / head * 100
    rate = runs / duration
    per_1000 = slope(t, rss) / rate * 1000
    print(f"== {name}: {ok}/{runs} runs ok in {duration:.1f} s ({rate:.1f} runs/s), {len(samples)} samples, "
          f"first {warmup_fraction:.0%} as warmup")
    print(f"   RSS after warmup: {head / 1024:.1f} MiB -> {tail / 1024:.1f} MiB (max {max(rss) / 1024:.1f}), "
          f"growth {growth:+.2f} %")
    print(f"   RSS slope: {per_1000:+.1f} KiB per 1000 runs ({slope(t, rss):+.2f} KiB/s); "
          f"results file {size / runs:.0f} bytes per run")
    print(f"   open fds: first {fds[0]}, last {fds[-1]}, max {max(fds)};  threads: first {thr[0]}, last {thr[-1]}, max {max(thr)}")
    leak = fds[-1] > fds[0] or thr[-1] > thr[0]
    per_run = per_1000 * 1024 / 1000
    kept = "within" if per_run <= size / runs else "MORE than"
    print(f"   verdict: growth {'under' if abs(growth) < 1 else 'over'} 1 %; {per_run:.0f} bytes per run, "
          f"{kept} the run records the tool keeps until it writes them ({size / runs:.0f} bytes of JSON per run); "
          f"{'a descriptor or thread LEAK' if leak else 'no descriptor or thread leak'}")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inproc-runs", type=int, default=1000)
    ap.add_argument("--http-requests", type=int, default=10000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/inproc-bench"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    ap.add_argument("--warmup-fraction", type=float, default=0.2)
    a = ap.parse_args()
    for path, fix in [(a.bin, "cargo build --release"), (a.model, "scripts/fetch-model.sh")]:
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run {fix}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--prompt", "short", "--warmup", "0", "--quiet", "--max-tokens", str(a.max_tokens)]
        if a.inproc_runs:
            out = os.path.join(tmp, "inproc.json")
            cmd = [a.bin, "--model", a.model, "--runs", str(a.inproc_runs), "--output", out, *common]
            ok &= soak("in-process (llama.cpp, SmolLM2)", cmd, a.inproc_runs, out, a.interval, a.warmup_fraction)
        if a.http_requests:
            server = start_fixture(a.max_tokens)
            url = f"http://127.0.0.1:{server.server_address[1]}"
            out = os.path.join(tmp, "http.json")
            cmd = [a.bin, "--engine", "http", "--url", url, "--runs", str(a.http_requests), "--output", out, *common]
            ok &= soak("HTTP (loopback fixture)", cmd, a.http_requests, out, a.interval, a.warmup_fraction)
            server.shutdown()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
