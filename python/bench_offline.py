#!/usr/bin/env python3
"""vLLM's own offline decode rate, as a reference for the in-process harness.

    .venv-vllm/bin/python python/bench_offline.py MODEL_DIR [--max-tokens 128] [--repeats 3]

Runs vLLM's offline API, `LLM.generate`, on one chat-templated prompt with
greedy sampling and ignore_eos, and times whole calls with
time.perf_counter: one call with max_tokens=1 (prefill plus the first token)
and one with max_tokens=N, each repeated; the decode rate is
(N - 1) / (median(t_N) - median(t_1)). No per-token callback is involved, so
comparing this figure with the harness's decode rate shows what the harness
itself costs. The engine runs with the Driver's defaults (in-process, prefix
caching off so that repeats do not reuse the prompt, 1 GiB KV cache on CPU,
the same unbound OpenMP threads) and, as the Driver's requests, without
detokenizing: both sides do the same work per step.

Prints one JSON object on stdout: {"decode_tps": ..., "ttft_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--prompt", default="Explain quantum computing in simple terms.")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--enforce-eager", action="store_true", help="no torch.compile")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (OMP_NUM_THREADS)")
    ap.add_argument(
        "--multiprocessing",
        action="store_true",
        help="vLLM's default engine-core process instead of the in-process engine",
    )
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.max_tokens < 2:
        ap.error("--max-tokens must be at least 2")

    import inproc_bench_vllm as ibv

    # The same environment the Driver sets up (logging, CPU platform, ...).
    ibv._prepare_environment(args.verbose, args.threads, ibv.THREADS_BIND_ENV)
    if args.multiprocessing:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
    if not args.verbose:
        ibv._quiet_logging()
    ibv._check_cpu_kernels()

    from vllm import LLM, SamplingParams

    ibv._set_torch_threads(args.threads)

    engine_args = {
        "max_model_len": args.max_model_len,
        "dtype": args.dtype,
        "enable_prefix_caching": False,
        "disable_log_stats": True,
        "use_tqdm_on_load": args.verbose,
        "enforce_eager": args.enforce_eager,
    }
    if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        engine_args["kv_cache_memory_bytes"] = ibv.DEFAULT_CPU_KV_CACHE_BYTES

    t0 = time.perf_counter()
    llm = LLM(model=os.path.abspath(args.model), **engine_args)
    start_s = time.perf_counter() - t0

    tok = llm.get_tokenizer()
    prompt = args.prompt
    if getattr(tok, "chat_template", None):
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": args.prompt}], tokenize=False, add_generation_prompt=True
        )

    def run(n: int) -> tuple[float, int, int]:
        sp = SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True, detokenize=False)
        t = time.perf_counter()
        (out,) = llm.generate([prompt], sp, use_tqdm=False)
        dt = time.perf_counter() - t
        return dt, len(out.outputs[0].token_ids), len(out.prompt_token_ids)

    run(args.max_tokens)  # warm-up (first-request compilation, allocations)
    t1, tn = [], []
    prompt_tokens = 0
    for _ in range(args.repeats):
        dt, got, prompt_tokens = run(1)
        assert got == 1, got
        t1.append(dt)
        dt, got, _ = run(args.max_tokens)
        assert got == args.max_tokens, got
        tn.append(dt)
    ttft, total = statistics.median(t1), statistics.median(tn)
    decode_s = max(total - ttft, 1e-9)
    result = {
        "decode_tps": (args.max_tokens - 1) / decode_s,
        "ttft_s": ttft,
        "total_s": total,
        "e2e_tps": args.max_tokens / total,
        "max_tokens": args.max_tokens,
        "prompt_tokens": prompt_tokens,
        "repeats": args.repeats,
        "engine_start_s": start_s,
        "multiprocessing": args.multiprocessing,
        "enforce_eager": args.enforce_eager,
        "threads": args.threads,
        "model": os.path.abspath(args.model),
        "versions": ibv.versions(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
