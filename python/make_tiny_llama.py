#!/usr/bin/env python3
"""Makes a tiny random-weight Llama test model as a Hugging Face folder.

    python python/make_tiny_llama.py [OUT_DIR]      (default: models/hf/tiny-llama)

Nothing is downloaded: the byte-level BPE tokenizer is trained here, with the
`tokenizers` package, on a text that this script generates from a fixed seed,
and the weights are random (fixed seed). The model is a Llama (hidden 256,
2 layers, 4 heads, 2 KV heads, vocabulary 8192), saved in bfloat16 as
safetensors (~13 MB), with a ChatML-like chat template in tokenizer_config.json.
Its output is gibberish; it exists to test and time the machinery, not the model.

Idempotent: a finished folder carries a stamp and is left alone on a rerun.
Needs torch, transformers, safetensors, tokenizers (the .venv-vllm environment).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

MAKER_VERSION = "tiny-llama/1"
STAMP = ".inproc-bench-maker"
SEED = 1234

VOCAB_SIZE = 8192
HIDDEN = 256
INTERMEDIATE = 1024
LAYERS = 2
HEADS = 4
KV_HEADS = 2
MAX_POSITIONS = 4096

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Seed text: the kind of prompts the benchmark sends, and prose around them.
SEED_TEXT = """\
Explain quantum computing in simple terms.
Write a short story about a robot who learns to paint, in about three hundred words.
Describe the history of the internet, from the first packet-switched networks to the
modern web, and explain how routing, naming and encryption work together.
A quantum computer stores information in qubits. A qubit can be zero, one, or a
superposition of both, and several qubits can be entangled, so that measuring one
tells you something about the others. Algorithms such as Shor's and Grover's use
interference to make the right answers more likely than the wrong ones.
The robot looked at the canvas for a long time. It had painted walls, floors and
cars, always in one colour and always perfectly even. This time there was no
specification, only a window, an evening sky and a bowl of lemons on the table.
In 1969 the first message crossed the ARPANET between two universities; it was
meant to be "login" and only "lo" arrived before the system crashed. TCP/IP,
the domain name system, the hypertext transfer protocol and public-key
cryptography followed over the next decades.
Tokens per second, time to first token, inter-token latency, p50, p90, p99.
def main():\n    print("hello, world")\n    return 0\n
{"name": "short", "prompt": "Explain quantum computing in simple terms.", "max_tokens": 100}
"""

WORDS = (
    "the of and to in is that for it as with was on be by this are or from at an "
    "which have not but they one all were we when there can more been if will "
    "their so about would what up out into time only other some could them these "
    "two may first then do any like my now over such our man me even most made "
    "after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under "
    "never day same another know while last might us great old year off come since "
    "against go came right used take three system computer quantum bit qubit state "
    "energy light robot paint colour canvas network packet internet protocol "
    "message server client token model memory speed latency throughput engine "
    "process thread kernel cache request answer question simple explain history "
    "story learn small large fast slow measure number value result function data "
    "science theory practice water earth air fire city river mountain music art "
    "language word sentence book page letter because however therefore although"
).split()

SYLLABLES = (
    "ka ke ki ko ku ta te ti to tu na ne ni no nu ma me mi mo mu ra re ri ro ru "
    "sa se si so su la le li lo lu da de di do du ba be bi bo bu pa pe pi po pu "
    "ga ge gi go gu va ve vi vo vu za ze zi zo zu an en in on un ar er ir or ur "
    "al el il ol ul as es is os us str pl tr gr br cl sh ch th ph qu x y"
).split()


def corpus(seed: int = SEED) -> list[str]:
    """Returns the training text, deterministic for a seed (~3 MB)."""
    rng = random.Random(seed)
    lines = SEED_TEXT.splitlines() * 50
    pseudo = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(6000)]
    for _ in range(40000):
        n = rng.randint(6, 20)
        pool = WORDS if rng.random() < 0.7 else pseudo
        words = [rng.choice(pool) for _ in range(n)]
        words[0] = words[0].capitalize()
        sep = rng.choice([". ", "? ", "! ", ", ", ": "])
        extra = f" {rng.randint(0, 10000)}" if rng.random() < 0.1 else ""
        lines.append(" ".join(words) + extra + sep.strip())
    return lines


def train_tokenizer(lines: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer, length=len(lines))
    return tok


def tokenizer_config(tok) -> dict:
    added = {}
    for t in SPECIAL_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POSITIONS,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }


def build(out: Path) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    t0 = time.time()
    tok = train_tokenizer(corpus())
    vocab = tok.get_vocab_size()
    print(f"tokenizer: {vocab} tokens in {time.time() - t0:.1f} s", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix=".tiny-llama-", dir=out.parent))
    try:
        tok.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(tok), indent=2) + "\n")
        (tmp / "special_tokens_map.json").write_text(
            json.dumps(
                {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
                indent=2,
            )
            + "\n"
        )

        config = LlamaConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=HIDDEN,
            intermediate_size=INTERMEDIATE,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            num_key_value_heads=KV_HEADS,
            head_dim=HIDDEN // HEADS,
            max_position_embeddings=MAX_POSITIONS,
            rms_norm_eps=1e-5,
            rope_theta=10000.0,
            hidden_act="silu",
            tie_word_embeddings=False,
            bos_token_id=tok.token_to_id("<|endoftext|>"),
            eos_token_id=tok.token_to_id("<|im_end|>"),
            pad_token_id=tok.token_to_id("<|endoftext|>"),
            initializer_range=0.02,
        )
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
        model.config.dtype = torch.bfloat16
        model.save_pretrained(str(tmp), safe_serialization=True)
        model.generation_config.save_pretrained(str(tmp))

        # Stamp, then move into place in one step.
        (tmp / STAMP).write_text(json.dumps({"maker": MAKER_VERSION, "vocab": vocab, "seed": SEED}) + "\n")
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_done(out: Path) -> bool:
    try:
        stamp = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return False
    needed = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    return stamp.get("maker") == MAKER_VERSION and all((out / f).is_file() for f in needed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", default="models/hf/tiny-llama")
    ap.add_argument("--force", action="store_true", help="rebuild even when the folder is complete")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    if not args.force and is_done(out):
        print(f"up to date: {out}", file=sys.stderr)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    build(out)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB) in {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
