"""Drives vLLM's engine inside the calling process, for inproc-bench.

The inproc-bench binary embeds this file and its helpers,
inproc_bench_vllm_env.py (include_str!), and loads both into its embedded
CPython; it also works standalone (see python/check_driver.py).
Timing is not done here: `Driver.generate` calls `on_tokens(n_new)` as soon as
an engine step yields new token ids for the request, and the caller (a Rust
function) stamps its own monotonic clock. Phases are marked the same way: with
`on_phase`, the driver calls `on_phase(name)` where a phase starts ("prompt":
the first engine step, "step": a later engine core step, "output": the rest of
`LLMEngine.step()` after the core returns, "own": the driver's loop) and the
caller stamps it on the same clock; this file never reads a clock.

The engine is vLLM's `LLMEngine` (the v1 engine) with
VLLM_ENABLE_V1_MULTIPROCESSING=0, so the scheduler, the model runner and the
output processing all run in this process and thread; nothing is spawned.

    versions() -> dict
    Driver(model, engine_args, verbose=False, threads=None, env=None)
        .info() -> dict
        .chat_prompt(user_text) -> str | None
        .count_tokens(text, add_special_tokens=True) -> int
        .chat_template_source() -> str | None
        .single_token(text) -> int | None
        .whitespace_token_ids() -> list[int]
        .token_ids(text) -> list[int]
        .generate(prompt_text, max_tokens, ignore_eos, temperature, seed, on_tokens,
                  with_ids=False, on_phase=None) -> dict
        .close()
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import uuid
from typing import Any, Callable

from inproc_bench_vllm_env import (  # noqa: F401 (re-exported for bench_offline.py)
    MIN_VLLM,
    THREAD_VARS,
    THREADS_BIND_ENV,
    DriverError,
    _check_cpu_kernels,
    _dist_version,
    _jsonable,
    _mapped,
    _prepare_environment,
    _quiet_logging,
    _release,
    _set_torch_threads,
    versions,
)

__all__ = ["versions", "Driver", "DriverError"]


# KV cache size on CPU unless engine_args or VLLM_CPU_KVCACHE_SPACE say otherwise.
DEFAULT_CPU_KV_CACHE_BYTES = 1 << 30


class Driver:
    """One in-process vLLM engine and one request at a time."""

    def __init__(
        self,
        model: str,
        engine_args: dict | None = None,
        verbose: bool = False,
        threads: int | None = None,
        env: dict | None = None,
    ):
        self.verbose = bool(verbose)
        self.threads = int(threads) if threads else None
        engine_args = dict(engine_args or {})
        if "model" in engine_args and engine_args["model"] != model:
            raise DriverError("engine_args['model'] differs from the model argument")
        engine_args.pop("model", None)

        if not os.path.exists(model):
            raise DriverError(
                f"model not found: {model!r} (vLLM here takes a local Hugging Face "
                "folder with config.json, tokenizer files and safetensors weights)"
            )
        model = os.path.abspath(model)
        if os.path.isfile(model):
            if model.lower().endswith(".gguf"):
                raise DriverError(
                    f"{model} is a GGUF file; vLLM 0.32 has no GGUF loader. Convert it "
                    "into a Hugging Face folder (python/make_smollm2_hf.py does so for "
                    "SmolLM2) and pass the folder."
                )
            raise DriverError(f"{model} is a file; vLLM takes a Hugging Face model folder")
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise DriverError(f"{model} has no config.json; it is not a Hugging Face model folder")
        self.model = model

        _prepare_environment(self.verbose, self.threads, env)
        if _dist_version("vllm-cpu") is None and _dist_version("vllm") is None:
            raise DriverError(
                f"vLLM is not installed in this Python ({sys.prefix}); create the "
                "environment with python/setup-vllm-env.sh"
            )
        installed = versions()["vllm"] or "0"
        if _release(installed) < MIN_VLLM:
            raise DriverError(
                f"vLLM {installed} in {sys.prefix} is older than "
                f"{'.'.join(map(str, MIN_VLLM))}, which this driver needs (LLMEngine.renderer, "
                "delta outputs): upgrade it, or create the environment with "
                "python/setup-vllm-env.sh"
            )
        if not self.verbose:
            _quiet_logging()
        _check_cpu_kernels()

        try:
            from vllm import EngineArgs, SamplingParams
            from vllm.inputs import TokensPrompt
            from vllm.sampling_params import RequestOutputKind
            from vllm.v1.engine.llm_engine import LLMEngine
        except Exception as e:
            raise DriverError(f"cannot import vLLM: {type(e).__name__}: {e}") from e
        _set_torch_threads(self.threads)
        self._SamplingParams = SamplingParams
        self._TokensPrompt = TokensPrompt
        self._DELTA = RequestOutputKind.DELTA
        self._FINAL_ONLY = RequestOutputKind.FINAL_ONLY

        args = {
            "enable_prefix_caching": False,
            "disable_log_stats": True,
            "use_tqdm_on_load": self.verbose,
        }
        if not os.environ.get("VLLM_CPU_KVCACHE_SPACE") and _dist_version("vllm-cpu") is not None:
            # vLLM's CPU default sizes the KV cache from gpu_memory_utilization
            # of all RAM (13 GB of 24 GB here), which takes seconds to allocate
            # and leaves little to anything else in the process.
            args["kv_cache_memory_bytes"] = DEFAULT_CPU_KV_CACHE_BYTES
        args.update(engine_args)
        args["model"] = model
        known = {f.name for f in dataclasses.fields(EngineArgs)}
        unknown = sorted(set(args) - known)
        if unknown:
            import difflib

            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, known, n=3)
                hints.append(f"{name} (did you mean {' or '.join(close)}?)" if close else name)
            raise DriverError(
                f"unknown vLLM engine argument(s): {', '.join(hints)}; the valid names are "
                f"the fields of vllm.EngineArgs (vLLM {versions()['vllm']})"
            )
        try:
            self._engine_args = EngineArgs(**args)
            self.engine = LLMEngine.from_engine_args(self._engine_args)
        except DriverError:
            raise
        except Exception as e:
            _shutdown_ray()
            raise DriverError(f"vLLM engine start failed for {model}: {type(e).__name__}: {e}") from e

        self.tokenizer = self.engine.get_tokenizer()
        self._ids = itertools.count(1)
        self._run_tag = uuid.uuid4().hex[:8]
        self._bos_id = getattr(self.tokenizer, "bos_token_id", None)

    # -- information -------------------------------------------------------

    def info(self) -> dict:
        """The engine as it runs: every engine argument, and the values vLLM
        resolved from them and from the model (all JSON-serialisable)."""
        import torch
        from vllm.platforms import current_platform

        cfg = self.engine.vllm_config
        mc, cc, sc = cfg.model_config, cfg.cache_config, cfg.scheduler_config
        compilation = getattr(cfg, "compilation_config", None)
        kernels = sorted(
            m.removeprefix("vllm.") for m in ("vllm._C", "vllm._C_AVX2", "vllm._C_AVX512") if m in sys.modules
        )
        return _jsonable(
            {
                "model": self.model,
                "engine_args": self._engine_args,
                "max_model_len": mc.max_model_len,
                "dtype": mc.dtype,
                "device": str(cfg.device_config.device) if cfg.device_config.device is not None
                else current_platform.device_type,
                "platform": type(current_platform).__name__,
                "cpu_kernels": kernels,
                "block_size": cc.block_size,
                "num_kv_blocks": cc.num_gpu_blocks,
                "kv_cache_memory_bytes": getattr(cc, "kv_cache_memory_bytes", None),
                "enable_prefix_caching": cc.enable_prefix_caching,
                "max_num_seqs": sc.max_num_seqs,
                "max_num_batched_tokens": sc.max_num_batched_tokens,
                "async_scheduling": getattr(sc, "async_scheduling", None),
                "enforce_eager": mc.enforce_eager,
                "compilation_mode": getattr(compilation, "mode", None),
                "torch_threads": torch.get_num_threads(),
                # LD_PRELOAD is left out: vLLM sets it for the processes it would spawn, and
                # this process started without it; tcmalloc_loaded says what this one has.
                "thread_env": {
                    k: os.environ[k] for k in THREAD_VARS if k in os.environ and k != "LD_PRELOAD"
                },
                "tcmalloc_loaded": _mapped("libtcmalloc"),
                "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                "multiprocessing": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING"),
                # Tensor/pipeline parallelism and the executor whose workers run the model
                # (mp: processes on this machine; ray: a Ray cluster, RAY_ADDRESS).
                "parallel": {
                    "tensor_parallel_size": cfg.parallel_config.tensor_parallel_size,
                    "pipeline_parallel_size": cfg.parallel_config.pipeline_parallel_size,
                    "world_size": cfg.parallel_config.world_size,
                    "distributed_executor_backend": str(cfg.parallel_config.distributed_executor_backend),
                    "ray_address": os.environ.get("RAY_ADDRESS"),
                },
                "bos_token_id": self._bos_id,
                "has_chat_template": self._chat_template() is not None,
                "versions": versions(),
            }
        )

    # -- prompts -------------------------------------------------------------

    def _chat_template(self) -> str | None:
        tok = self.tokenizer
        template = getattr(tok, "chat_template", None)
        if template is None:
            inner = getattr(tok, "tokenizer", None)  # a wrapper around a HF tokenizer
            template = getattr(inner, "chat_template", None)
        return template or None

    def chat_prompt(
        self,
        user_text: str,
        template: str | None = None,
        kwargs_json: str | None = None,
    ) -> str | None:
        """The model's chat template (or `template`, a Jinja source) applied to
        one user message, with the generation prompt and the template arguments
        `kwargs_json` (a JSON object, e.g. {"enable_thinking": false}) as vllm
        serve passes a request's chat_template_kwargs; None when the tokenizer
        has no chat template and none is given."""
        if template is None and self._chat_template() is None:
            return None
        extra = json.loads(kwargs_json) if kwargs_json else {}
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}],
            tokenize=False,
            add_generation_prompt=True,
            chat_template=template,
            **extra,
        )
        if not isinstance(text, str):
            raise DriverError(f"the chat template returned {type(text).__name__}, not text")
        return text

    def _encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))
        # A chat template that writes the BOS token itself, with a tokenizer
        # that adds one too, would give two: keep one.
        if add_special_tokens and self._bos_id is not None and ids[:2] == [self._bos_id, self._bos_id]:
            ids = ids[1:]
        return ids

    def count_tokens(self, text: str, add_special_tokens: bool = True) -> int:
        """Tokens in `text`; with add_special_tokens (the default) exactly the
        prompt tokens `generate` sends for that text."""
        return len(self._encode(text, add_special_tokens))

    def chat_template_source(self) -> str | None:
        """The tokenizer's chat template (Jinja source), or None."""
        return self._chat_template()

    def single_token(self, text: str) -> int | None:
        """The id of `text` when the tokenizer encodes it as exactly one token."""
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        return int(ids[0]) if len(ids) == 1 else None

    def whitespace_token_ids(self) -> list[int]:
        """The ids whose text is only ASCII whitespace, sorted (for the reasoning split of
        a model with think markers: the whitespace after the end marker is reasoning)."""
        tok = self.tokenizer
        n = len(tok)
        texts = tok.batch_decode([[i] for i in range(n)]) if hasattr(tok, "batch_decode") else [
            tok.decode([i]) for i in range(n)
        ]
        blank = set(" \t\n\r\x0c")
        return [i for i, t in enumerate(texts) if t and all(c in blank for c in t)]

    def token_ids(self, text: str) -> list[int]:
        """The prompt token ids `generate` sends for `text`."""
        return [int(t) for t in self._encode(text)]

    # -- generation ----------------------------------------------------------

    def generate(
        self,
        prompt_text: str,
        max_tokens: int,
        ignore_eos: bool,
        temperature: float,
        seed: int | None,
        on_tokens: Callable[..., Any],
        with_ids: bool = False,
        on_phase: Callable[[str], Any] | None = None,
    ) -> dict:
        """Runs one request to completion, calling on_tokens(n_new) as soon as
        an engine step returns n_new new tokens for it (before any decoding);
        with_ids: on_tokens(n_new, new_ids), for the reasoning split; and
        on_phase(name) where each phase of a step starts (see the module's
        docstring).

        prompt_text goes to the model as is (no chat template is applied here);
        the tokenizer adds its special tokens (BOS) as configured.
        Returns prompt_tokens, completion_tokens, token_ids, text, finish_reason.
        """
        if max_tokens < 1:
            raise DriverError("max_tokens must be at least 1")
        prompt_ids = self._encode(prompt_text)
        if not prompt_ids:
            raise DriverError("the prompt is empty after tokenization")
        max_len = self.engine.vllm_config.model_config.max_model_len
        if len(prompt_ids) + max_tokens > max_len:
            raise DriverError(
                f"prompt ({len(prompt_ids)} tokens) + max_tokens ({max_tokens}) exceeds "
                f"max_model_len {max_len}"
            )
        params = self._SamplingParams(
            n=1,
            temperature=float(temperature),
            max_tokens=int(max_tokens),
            ignore_eos=bool(ignore_eos),
            seed=seed,
            output_kind=self._DELTA,
            # Text is decoded once at the end, not inside every step.
            detokenize=False,
        )
        engine = self.engine
        if engine.has_unfinished_requests():
            raise DriverError("the engine still has unfinished requests from an earlier call")

        request_id = f"inproc-bench-{self._run_tag}-{next(self._ids)}"
        token_ids: list[int] = []
        finish_reason = None
        (engine_input,) = engine.renderer.render_cmpl([self._TokensPrompt(prompt_token_ids=prompt_ids)])
        engine.add_request(request_id, engine_input, params)
        core = engine.engine_core
        if on_phase is not None:
            # The engine core's return ends the core step: the rest of LLMEngine.step() is
            # output processing. Wrapped on the instance for this request only.
            inner = core.get_output

            def get_output():
                out = inner()
                on_phase("output")
                return out

            core.get_output = get_output
        mark = on_phase if on_phase is not None else (lambda _name: None)
        try:
            step = engine.step
            extend = token_ids.extend
            mark("prompt")
            while True:
                outputs = step()
                mark("own")
                for out in outputs:
                    if out.request_id != request_id:
                        continue
                    completion = out.outputs[0]
                    new = completion.token_ids
                    if new:
                        if with_ids:
                            on_tokens(len(new), new)
                        else:
                            on_tokens(len(new))
                        extend(new)
                    if out.finished:
                        finish_reason = completion.finish_reason
                if finish_reason is not None:
                    break
                if not engine.has_unfinished_requests():
                    finish_reason = "lost"
                    break
                mark("step" if token_ids else "prompt")
        except BaseException:
            self._abort(request_id)
            raise
        finally:
            if on_phase is not None:
                core.__dict__.pop("get_output", None)
        if engine.has_unfinished_requests():
            self._abort(request_id)
        if finish_reason == "lost":
            raise DriverError(f"request {request_id} left the engine without finishing")

        mark("detok")
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        return {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(token_ids),
            "token_ids": [int(t) for t in token_ids],
            "text": text,
            "finish_reason": str(finish_reason),
        }

    def _abort(self, request_id: str) -> None:
        try:
            self.engine.abort_request([request_id])
            # Let the engine process the abort so that nothing stays queued.
            for _ in range(4):
                if not self.engine.has_unfinished_requests():
                    break
                self.engine.step()
        except Exception:
            pass

    def close(self) -> None:
        """Shuts the engine down and gives its memory back: the engine core's executor stops,
        the last reference goes, and on a GPU torch's cached blocks are released, so that a
        `vllm serve` started next (`--pairing blocks`) finds the device memory free."""
        engine = getattr(self, "engine", None)
        self.engine = None
        if engine is not None:
            core = getattr(engine, "engine_core", None)
            try:
                if core is not None:
                    core.shutdown()
            except Exception:
                pass
            del core
            del engine
            import gc

            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except Exception:
                pass
        _shutdown_ray()


def _shutdown_ray() -> None:
    """Stops the Ray instance the ray executor started or joined in this process, if any: left
    running, Ray's own threads crash the process while the interpreter shuts down (exit 139 after
    a failed start)."""
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    except Exception:
        pass


if __name__ == "__main__":
    import json

    print(json.dumps(versions(), indent=2))
