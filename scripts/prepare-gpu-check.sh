#!/usr/bin/env bash
# Prepare gpu-check/ (git-ignored): everything scripts/gpu-check.sh needs on a machine with an
# NVIDIA GPU, the CUDA toolkit (nvcc), CMake and Python 3, but no Rust toolchain and no network.
# The folder must stay under 64 MiB.
#
#   gpu-check/bin/inproc-bench     this project, release build, portable CPU code (x86-64-v3, as
#                                  .cargo/config.toml), with llama.cpp linked
#                                  as shared libraries (feature `dynamic-link`: libllama.so and
#                                  libggml*.so are found through LD_LIBRARY_PATH at run time) and
#                                  GPU telemetry (feature `cuda-telemetry`)
#   gpu-check/llama.cpp.tar.gz     the llama.cpp source the Rust bindings were generated from (the
#                                  copy inside the llama-cpp-sys-2 crate, build 11434), trimmed to
#                                  what libllama, ggml, ggml-cpu and ggml-cuda need (about 2 MB)
#   gpu-check/models/tiny-llama-q4_0.gguf
#                                  a random-weight llama made here with the `gguf` Python package:
#                                  8 layers, n_embd 384, Q4_0, about 10 MB; a SentencePiece vocab
#                                  (byte tokens plus the words of data/prompts.json) and a ChatML
#                                  chat template; end-of-turn never wins a greedy pick, so every
#                                  run generates its full max_tokens
#   gpu-check/MANIFEST             what was built, sizes and sha256
#
# Then it checks here, without a GPU: the binary starts and generates on the tiny model against
# the CPU build of the same libllama that cargo made, and the folder is under 64 MiB.
# `--self-test` also runs scripts/gpu-check.sh with GPU_CHECK_CUDA=OFF (builds libllama from the
# bundled source on the CPU: slow on a small machine).
#
# Usage: scripts/prepare-gpu-check.sh [--no-verify] [--self-test]
# Environment: GPU_CHECK_DIR (default gpu-check), PYTHON (default python3),
#              GPU_CHECK_RUSTFLAGS (default "-C target-cpu=x86-64-v3")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${GPU_CHECK_DIR:-$ROOT/gpu-check}"
TARGET_DIR="$ROOT/target/gpu-check"
PYTHON="${PYTHON:-python3}"
GGUF_PY_VERSION="0.19.0"
LIMIT_BYTES=$((64 * 1024 * 1024))
MODEL_NAME="tiny-llama-q4_0.gguf"

die() { echo "prepare-gpu-check: error: $*" >&2; exit 1; }
log() { echo "prepare-gpu-check: $*" >&2; }

VERIFY=1
SELF_TEST=0
for arg in "$@"; do
  case "$arg" in
    --no-verify) VERIFY=0 ;;
    --self-test) SELF_TEST=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

command -v cargo >/dev/null || die "cargo not found"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/models"

# 1. The binary. Its own target folder: other RUSTFLAGS and features than the main build, and a
#    llama.cpp built as shared libraries.
log "building inproc-bench (dynamic-link, cuda-telemetry) in $TARGET_DIR"
(
  cd "$ROOT"
  RUSTFLAGS="${GPU_CHECK_RUSTFLAGS:--C target-cpu=x86-64-v3}" CARGO_TARGET_DIR="$TARGET_DIR" \
    cargo build --release --features dynamic-link,cuda-telemetry
)
cp "$TARGET_DIR/release/inproc-bench" "$BUNDLE/bin/inproc-bench"
strip "$BUNDLE/bin/inproc-bench" 2>/dev/null || true

# 2. The llama.cpp source of the bindings: the llama-cpp-sys-2 crate's copy.
SYS_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 | "$PYTHON" -c '
import json, os, sys
meta = json.load(sys.stdin)
dirs = [os.path.dirname(p["manifest_path"]) for p in meta["packages"] if p["name"] == "llama-cpp-sys-2"]
print(dirs[0] if dirs else "")
')"
[[ -n "$SYS_DIR" && -f "$SYS_DIR/llama.cpp/CMakeLists.txt" ]] || die "llama.cpp source of llama-cpp-sys-2 not found"
SYS_VERSION="$(basename "$SYS_DIR")"
log "packing the llama.cpp source from $SYS_VERSION"
(
  cd "$SYS_DIR"
  top_level_ggml_src=$(find llama.cpp/ggml/src -maxdepth 1 -type f | sort)
  # vendor/: its CMakeLists adds these folders unconditionally; only `hash` has sources CMake
  # checks, the others are header-only interface targets libllama does not use.
  # shellcheck disable=SC2086
  tar -czf "$BUNDLE/llama.cpp.tar.gz" --owner=0 --group=0 --sort=name \
    llama.cpp/CMakeLists.txt llama.cpp/LICENSE llama.cpp/cmake llama.cpp/include llama.cpp/src \
    llama.cpp/vendor/CMakeLists.txt llama.cpp/vendor/hash \
    llama.cpp/vendor/miniaudio/CMakeLists.txt llama.cpp/vendor/nlohmann/CMakeLists.txt \
    llama.cpp/vendor/sheredom/CMakeLists.txt llama.cpp/vendor/stb/CMakeLists.txt \
    llama.cpp/ggml/CMakeLists.txt llama.cpp/ggml/cmake llama.cpp/ggml/include \
    $top_level_ggml_src llama.cpp/ggml/src/ggml-cpu llama.cpp/ggml/src/ggml-cuda
)

# 3. The tiny model.
VENV="$TARGET_DIR/gguf-venv"
if ! "$VENV/bin/python" -c "import gguf, sys; sys.exit(gguf.__version__ != '$GGUF_PY_VERSION')" 2>/dev/null; then
  log "installing gguf==$GGUF_PY_VERSION into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet "gguf==$GGUF_PY_VERSION"
fi
GEN="$(mktemp)"
trap 'rm -f "$GEN"' EXIT
cat > "$GEN" <<'PY'
"""A tiny random-weight llama GGUF: real vocab and chat template, meaningless weights."""
import json
import re
import sys

import gguf
import numpy as np

out, prompts_path = sys.argv[1], sys.argv[2]
N_LAYER, N_EMBD, N_HEAD, N_FF, N_CTX = 8, 384, 6, 1024, 4096
rng = np.random.default_rng(11434)

# SentencePiece-style vocab ("llama" tokenizer): specials, the 256 byte tokens, printable ASCII,
# and every word of the prompts with all its prefixes, so that merges reach whole words.
T_NORMAL, T_UNKNOWN, T_CONTROL, T_BYTE = 1, 2, 3, 6
tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
types = [T_UNKNOWN, T_CONTROL, T_CONTROL, T_CONTROL, T_CONTROL]
tokens += [f"<0x{b:02X}>" for b in range(256)]
types += [T_BYTE] * 256
pieces = {"\u2581"} | {chr(c) for c in range(33, 127)}
with open(prompts_path, encoding="utf-8") as f:
    text = " ".join(p["prompt"] for p in json.load(f))
text += " user assistant system the a of and to in is that for it as with on be"
for word in set(re.findall(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']", text)):
    for piece in ("\u2581" + word, word):
        for end in range(2, len(piece) + 1):
            pieces.add(piece[:end])
pieces = sorted(pieces, key=lambda p: (len(p), p))
scores = [0.0] * len(tokens) + [float(len(p)) for p in pieces]
tokens += pieces
types += [T_NORMAL] * len(pieces)
n_vocab = len(tokens)

w = gguf.GGUFWriter(out, "llama")
w.add_name("inproc-bench tiny random llama")
w.add_context_length(N_CTX)
w.add_embedding_length(N_EMBD)
w.add_block_count(N_LAYER)
w.add_feed_forward_length(N_FF)
w.add_head_count(N_HEAD)
w.add_head_count_kv(N_HEAD)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_dimension_count(N_EMBD // N_HEAD)
w.add_rope_freq_base(10000.0)
w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_unk_token_id(0)
w.add_bos_token_id(1)
w.add_eos_token_id(4)
w.add_add_bos_token(True)
w.add_add_eos_token(False)
w.add_chat_template(
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def rand(*shape):
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)


def quantized(name, a, qtype=gguf.GGMLQuantizationType.Q4_0):
    w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)


w.add_tensor("token_embd.weight", rand(n_vocab, N_EMBD).astype(np.float16))
w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
head = rand(n_vocab, N_EMBD)
head[[t == T_CONTROL for t in types]] = 0.0  # logit 0: end-of-turn never wins a greedy pick
quantized("output.weight", head, gguf.GGMLQuantizationType.Q8_0)
for i in range(N_LAYER):
    p = f"blk.{i}."
    w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
        quantized(p + n + ".weight", rand(N_EMBD, N_EMBD))
    quantized(p + "ffn_gate.weight", rand(N_FF, N_EMBD))
    quantized(p + "ffn_up.weight", rand(N_FF, N_EMBD))
    quantized(p + "ffn_down.weight", rand(N_EMBD, N_FF))

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"n_layer={N_LAYER} n_embd={N_EMBD} n_vocab={n_vocab}")
PY
log "making the tiny model"
MODEL_INFO="$("$VENV/bin/python" "$GEN" "$BUNDLE/models/$MODEL_NAME" "$ROOT/data/prompts.json")"

# 4. Manifest.
{
  echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "binary: inproc-bench --features dynamic-link,cuda-telemetry, RUSTFLAGS=${GPU_CHECK_RUSTFLAGS:--C target-cpu=x86-64-v3}"
  echo "binary needs: $(objdump -p "$BUNDLE/bin/inproc-bench" 2>/dev/null | awk '/NEEDED/ {printf "%s ", $2}')"
  echo "binary glibc: $(objdump -T "$BUNDLE/bin/inproc-bench" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
  echo "llama.cpp: $SYS_VERSION/llama.cpp"
  echo "model: $MODEL_NAME $MODEL_INFO"
  echo
  (cd "$BUNDLE" && find . -type f ! -name MANIFEST | sort | xargs sha256sum)
} > "$BUNDLE/MANIFEST"

# 5. Checks here.
if [[ "$VERIFY" == 1 ]]; then
  # The shared libraries cargo's llama.cpp build installed (the copies next to the binary in
  # target/*/release are links to the versioned names, which are not copied there).
  CPU_LIB_DIR="$(find "$TARGET_DIR/release/build" -path '*/llama-cpp-sys-2-*/out/lib' -type d \
    -printf '%T@ %p\n' | sort -nr | head -1 | cut -d' ' -f2-)"
  [[ -f "$CPU_LIB_DIR/libllama.so.0" ]] || die "CPU libllama not found under $TARGET_DIR/release/build"
  log "checking the binary against the CPU build of the same libllama ($CPU_LIB_DIR)"
  CHECK_DIR="$(mktemp -d)"
  LD_LIBRARY_PATH="$CPU_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$BUNDLE/bin/inproc-bench" --engine llamacpp --model "$BUNDLE/models/$MODEL_NAME" \
    --n-gpu-layers 0 --prompt short --warmup 1 --runs 2 --quiet --output "$CHECK_DIR/check.json" >/dev/null
  "$PYTHON" - "$CHECK_DIR/check.json" <<'PY'
import json, sys
engine = next(iter(json.load(open(sys.argv[1]))["results"].values()))
short = engine["prompts"]["short"]
tokens = short["tokens_generated"]["mean"]
assert short["successful_runs"] == short["total_runs"] > 0, short
assert tokens > 0, "no tokens generated"
gpu = engine["gpu"]
print(f"prepare-gpu-check: tiny model ok on CPU: {tokens:.0f} tokens/run, "
      f"{short['tps']['mean']:.0f} tok/s, gpu note: {gpu['note']}", file=sys.stderr)
PY
  rm -rf "$CHECK_DIR"
fi

SIZE=$(du -sb "$BUNDLE" | awk '{print $1}')
(( SIZE < LIMIT_BYTES )) || die "$BUNDLE is $SIZE bytes, over 64 MiB"
log "ready: $BUNDLE ($((SIZE / 1024 / 1024)) MiB of 64)"
cat "$BUNDLE/MANIFEST" >&2

if [[ "$SELF_TEST" == 1 ]]; then
  log "self-test: scripts/gpu-check.sh with a CPU build of libllama"
  GPU_CHECK_CUDA=OFF OUT="$(mktemp -d)" GPU_CHECK_DIR="$BUNDLE" bash "$ROOT/scripts/gpu-check.sh"
fi
