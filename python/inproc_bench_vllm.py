"""Drives vLLM's engine inside the calling process, for inproc-bench.

The inproc-bench binary embeds this file (include_str!) and loads it into its
embedded CPython; it also works standalone (see python/check_driver.py).
Timing is not done here: `Driver.generate` calls `on_tokens(n_new)` as soon as
an engine step yields new token ids for the request, and the caller (a Rust
function) stamps its own monotonic clock.

The engine is vLLM's `LLMEngine` (the v1 engine) with
VLLM_ENABLE_V1_MULTIPROCESSING=0, so the scheduler, the model runner and the
output processing all run in this process and thread; nothing is spawned.

    versions() -> dict
    Driver(model, engine_args, verbose=False, threads=None, env=None)
        .info() -> dict
        .chat_prompt(user_text) -> str | None
        .count_tokens(text, add_special_tokens=True) -> int
        .generate(prompt_text, max_tokens, ignore_eos, temperature, seed, on_tokens) -> dict
        .close()
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import os
import platform
import sys
import uuid
from typing import Any, Callable

__all__ = ["versions", "Driver", "DriverError"]

# Set before vllm is imported (vllm.envs reads them lazily, some only once).
_ENGINE_ENV_FORCED = {
    # One process: LLMEngine then uses the in-process engine-core client.
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}
_ENGINE_ENV_DEFAULTS = {
    # No usage reporting from a benchmark harness.
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    # Nothing is fetched from a model hub: models are local folders.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


# KV cache size on CPU unless engine_args or VLLM_CPU_KVCACHE_SPACE say otherwise.
DEFAULT_CPU_KV_CACHE_BYTES = 1 << 30


# The oldest vLLM whose in-process engine API (LLMEngine.renderer.render_cmpl) the driver uses.
MIN_VLLM = (0, 32)


def _release(version: str) -> tuple[int, ...]:
    """(major, minor) of a version string such as '0.32.0+cpu'; (0, 0) when unreadable."""
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (2 - len(parts)))


class DriverError(RuntimeError):
    """A clear, user-facing failure to set up or run the engine."""


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """Versions of Python and the engine's packages, read from package metadata
    (nothing heavy is imported)."""
    vllm_cpu = _dist_version("vllm-cpu")
    return {
        "python": platform.python_version(),
        "vllm": vllm_cpu or _dist_version("vllm"),
        "vllm_distribution": "vllm-cpu" if vllm_cpu else ("vllm" if _dist_version("vllm") else None),
        "torch": _dist_version("torch"),
        "transformers": _dist_version("transformers"),
        "tokenizers": _dist_version("tokenizers"),
        "executable": sys.executable,
        "prefix": sys.prefix,
    }


def _mapped(name: str) -> bool | None:
    """Whether a library whose path contains `name` is mapped into this process
    (None where /proc is not readable)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return any(name in line for line in f)
    except OSError:
        return None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# What decides the CPU threads and their binding; recorded by info().
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "VLLM_CPU_OMP_THREADS_BIND",
    "VLLM_CPU_NUM_OF_RESERVED_CPU",
    "OMP_PLACES",
    "OMP_PROC_BIND",
    "GOMP_CPU_AFFINITY",
    "KMP_AFFINITY",
    "LD_PRELOAD",
)


def _prepare_environment(
    verbose: bool, threads: int | None = None, env: dict | None = None
) -> None:
    """Sets vLLM's environment variables, OMP_NUM_THREADS for `threads`, and
    `env` (the thread variables the caller also gives `vllm serve`, so both
    sides run alike); must run before vllm (and torch, whose OpenMP runtime
    reads them) is imported."""
    os.environ.update(_ENGINE_ENV_FORCED)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    for k, v in (env or {}).items():
        os.environ[str(k)] = str(v)
    for k, v in _ENGINE_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    if verbose:
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")
    else:
        # vLLM leaves its loggers alone (see _quiet_logging for the level);
        # torch's C++ warnings (NUMA binding, ...) are dropped too.
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    if _dist_version("vllm-cpu") is not None and "vllm" not in sys.modules:
        # vLLM picks its platform from the *version* of the `vllm`
        # distribution ("+cpu" in it means the CPU build). A `vllm` alias
        # without "+cpu" makes the CPU build look like no platform at all,
        # and the generic path then loads vllm._C, the AVX512-BF16 build of
        # the CPU kernels: SIGILL on CPUs without it. VLLM_TARGET_DEVICE=cpu
        # is authoritative and avoids the version lookup.
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")


def _set_torch_threads(threads: int | None) -> None:
    """Sets torch's thread count; must run before the engine starts: in one
    process vLLM's CPU worker binds no threads itself, and it replaces
    torch.set_num_threads with a no-op when it starts."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _quiet_logging() -> None:
    """Only errors from vLLM reach stderr (through Python's last-resort
    handler); its warnings about LD_PRELOAD, Triton and the like, and the
    FutureWarnings its code triggers in torch, are dropped."""
    import logging
    import warnings

    level = os.environ.get("VLLM_LOGGING_LEVEL", "ERROR").upper()
    logging.getLogger("vllm").setLevel(getattr(logging, level, logging.ERROR))
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"vllm(\.|$)")


def _check_cpu_kernels() -> None:
    """Raises DriverError where loading vLLM's CPU kernels would kill the
    process with SIGILL (an illegal instruction cannot be caught later)."""
    if _dist_version("vllm-cpu") is None:
        return
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    flags = _cpu_flags()
    if not flags:
        return
    if "avx2" not in flags:
        raise DriverError(
            "this CPU lacks AVX2; vllm-cpu's x86 kernels need at least AVX2 "
            "(they would stop the process with SIGILL)"
        )
    has_bf16 = "avx512f" in flags and "avx512_bf16" in flags
    from vllm.platforms import current_platform  # cheap: no kernels loaded

    if not current_platform.is_cpu() and not has_bf16:
        raise DriverError(
            "vLLM did not detect its CPU platform (it found "
            f"{type(current_platform).__name__}); it would then load vllm._C, the "
            "AVX512-BF16 build of its CPU kernels, which this CPU cannot run "
            "(SIGILL). Cause: the `vllm` distribution's version lacks '+cpu' "
            f"(it is {_dist_version('vllm')!r}) or VLLM_TARGET_DEVICE is set to "
            f"{os.environ.get('VLLM_TARGET_DEVICE')!r}. Rerun "
            "python/setup-vllm-env.sh, or set VLLM_TARGET_DEVICE=cpu."
        )


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-serialisable copy of an engine argument or config value."""
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, str) else value.name
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if depth > 6:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v, depth + 1) for v in items]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            try:
                out[f.name] = _jsonable(getattr(value, f.name), depth + 1)
            except Exception as e:  # a lazily computed field that fails
                out[f.name] = f"<{type(e).__name__}>"
        return out
    mod = type(value).__module__
    if mod == "torch" or mod.startswith("torch."):
        return str(value).removeprefix("torch.")
    return str(value)


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

    # -- generation ----------------------------------------------------------

    def generate(
        self,
        prompt_text: str,
        max_tokens: int,
        ignore_eos: bool,
        temperature: float,
        seed: int | None,
        on_tokens: Callable[[int], Any],
    ) -> dict:
        """Runs one request to completion, calling on_tokens(n_new) as soon as
        an engine step returns n_new new tokens for it (before any decoding).

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
        try:
            step = engine.step
            extend = token_ids.extend
            while True:
                outputs = step()
                for out in outputs:
                    if out.request_id != request_id:
                        continue
                    completion = out.outputs[0]
                    new = completion.token_ids
                    if new:
                        on_tokens(len(new))
                        extend(new)
                    if out.finished:
                        finish_reason = completion.finish_reason
                if finish_reason is not None:
                    break
                if not engine.has_unfinished_requests():
                    finish_reason = "lost"
                    break
        except BaseException:
            self._abort(request_id)
            raise
        if engine.has_unfinished_requests():
            self._abort(request_id)
        if finish_reason == "lost":
            raise DriverError(f"request {request_id} left the engine without finishing")

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


if __name__ == "__main__":
    import json

    print(json.dumps(versions(), indent=2))
