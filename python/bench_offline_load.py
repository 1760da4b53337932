#!/usr/bin/env python3
"""vLLM's own offline throughput on a batch of requests, as a reference for inproc-bench's load.

    .venv-vllm/bin/python python/bench_offline_load.py MODEL_DIR --requests 8 \
        --input-tokens 64 --output-tokens 32 [--repeats 3]

Makes N requests of exactly P prompt tokens (random ids past the first ones, where special
tokens sit, as inproc-bench's synthetic workload: `min(vocab/4, 1000)` up to the vocabulary),
hands all of them to vLLM's offline API at once (`LLM.generate` with a list of token prompts,
greedy, ignore_eos, max_tokens=G, no detokenizing: inproc-bench's load driver counts token ids and
detokenizes nothing either) and times whole calls with time.perf_counter. Output tok/s =
N·G / t, median over the repeats after one warm-up call: the figure inproc-bench's
`--concurrency N --requests N` level reports as output_throughput_tps (first arrival to the last
token). The engine runs with the Driver's defaults (in-process, prefix caching off, 1 GiB KV
cache on CPU), so both sides schedule the same way.

Prints one JSON object on stdout: {"output_tps": ..., "total_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--input-tokens", type=int, default=64)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--max-num-seqs", type=int, default=None)
    ap.add_argument("--enforce-eager", action="store_true", help="no torch.compile")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (OMP_NUM_THREADS)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    import inproc_bench_vllm as ibv

    # The thread variables inproc-bench gives its engine (engine::vllm::thread_env), so both
    # sides run the same unbound OpenMP threads.
    ibv._prepare_environment(args.verbose, args.threads, ibv.THREADS_BIND_ENV)
    if not args.verbose:
        ibv._quiet_logging()
    ibv._check_cpu_kernels()

    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    ibv._set_torch_threads(args.threads)
    engine_args = {
        "max_model_len": args.max_model_len,
        "enable_prefix_caching": False,
        "disable_log_stats": True,
        "use_tqdm_on_load": args.verbose,
        "enforce_eager": args.enforce_eager,
    }
    if args.max_num_seqs:
        engine_args["max_num_seqs"] = args.max_num_seqs
    if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        engine_args["kv_cache_memory_bytes"] = ibv.DEFAULT_CPU_KV_CACHE_BYTES

    t0 = time.perf_counter()
    llm = LLM(model=os.path.abspath(args.model), **engine_args)
    start_s = time.perf_counter() - t0

    vocab = int(llm.llm_engine.vllm_config.model_config.get_vocab_size())
    first = min(vocab // 4, 1000)
    rng = random.Random(args.seed)
    prompts = [
        TokensPrompt(prompt_token_ids=[rng.randrange(first, vocab) for _ in range(args.input_tokens)])
        for _ in range(args.requests)
    ]
    sp = SamplingParams(
        temperature=0.0, max_tokens=args.output_tokens, ignore_eos=True, detokenize=False
    )

    def run() -> float:
        t = time.perf_counter()
        outs = llm.generate(prompts, sp, use_tqdm=False)
        dt = time.perf_counter() - t
        got = [len(o.outputs[0].token_ids) for o in outs]
        assert got == [args.output_tokens] * args.requests, got
        return dt

    run()  # warm-up (first-request compilation, allocations)
    times = [run() for _ in range(args.repeats)]
    total = statistics.median(times)
    print(json.dumps({
        "output_tps": args.requests * args.output_tokens / total,
        "total_s": total,
        "times_s": times,
        "requests": args.requests,
        "input_tokens": args.input_tokens,
        "output_tokens": args.output_tokens,
        "engine_start_s": start_s,
        "enforce_eager": args.enforce_eager,
        "threads": args.threads,
        "model": os.path.abspath(args.model),
        "versions": ibv.versions(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
