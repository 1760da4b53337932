#!/usr/bin/env python3
"""Checks python/inproc_bench_vllm.py without the Rust binary.

    .venv-vllm/bin/python python/check_driver.py [MODEL_DIR] [--max-tokens 16] [--verbose]

Loads the Driver on MODEL_DIR (default models/hf/tiny-llama), runs one
greedy request with ignore_eos, counts tokens in a Python callback that stamps
time.perf_counter_ns, asserts that exactly max_tokens tokens arrived (and that
the callback count matches the returned token ids and the engine is empty
afterwards), and prints TTFT and the mean time per token after the first.
Exit status 0 on success.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import inproc_bench_vllm as ibv  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="models/hf/tiny-llama")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--prompt", default="Explain quantum computing in simple terms.")
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    print("versions:", json.dumps(ibv.versions()), flush=True)
    t0 = time.perf_counter()
    driver = ibv.Driver(
        args.model,
        {"max_model_len": args.max_model_len, "dtype": args.dtype},
        verbose=args.verbose,
    )
    print(f"engine start: {time.perf_counter() - t0:.1f} s", flush=True)
    info = driver.info()
    json.dumps(info)  # must serialise
    short = {k: info[k] for k in ("model", "max_model_len", "dtype", "device", "platform", "cpu_kernels",
                                  "num_kv_blocks", "block_size", "enable_prefix_caching", "torch_threads")}
    print("info:", json.dumps(short), flush=True)
    assert info["enable_prefix_caching"] is False, info["enable_prefix_caching"]

    prompt = driver.chat_prompt(args.prompt)
    print("chat template:", "yes" if prompt is not None else "no (raw prompt)", flush=True)
    if prompt is None:
        prompt = args.prompt
    n_prompt = driver.count_tokens(prompt)

    results = []
    for run in range(2):  # the second run checks that the first left nothing behind
        stamps: list[tuple[int, int]] = []

        def on_tokens(n: int) -> None:
            stamps.append((time.perf_counter_ns(), n))

        start = time.perf_counter_ns()
        out = driver.generate(prompt, args.max_tokens, True, 0.0, None, on_tokens)
        counted = sum(n for _, n in stamps)
        assert counted == args.max_tokens, f"callback counted {counted} tokens, want {args.max_tokens}"
        assert out["completion_tokens"] == args.max_tokens, out["completion_tokens"]
        assert len(out["token_ids"]) == args.max_tokens
        assert out["prompt_tokens"] == n_prompt, (out["prompt_tokens"], n_prompt)
        assert out["finish_reason"] == "length", out["finish_reason"]
        assert not driver.engine.has_unfinished_requests(), "request left in the engine"
        ttft_ms = (stamps[0][0] - start) / 1e6
        decode_ms = (stamps[-1][0] - stamps[0][0]) / 1e6
        per_token = decode_ms / max(counted - stamps[0][1], 1)
        multi = sum(1 for _, n in stamps if n > 1)
        print(
            f"run {run + 1}: prompt {out['prompt_tokens']} tok, {counted} tokens in {len(stamps)} callbacks"
            f" ({multi} with several), TTFT {ttft_ms:.1f} ms, {per_token:.2f} ms/token"
            f" ({1000 / per_token if per_token else float('inf'):.1f} tok/s)",
            flush=True,
        )
        results.append(out)
    assert results[0]["token_ids"] == results[1]["token_ids"], "greedy runs differ"
    print("text:", repr(results[0]["text"][:120]))
    print("check_driver: OK")
    driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
