#!/usr/bin/env bash
# One-shot GPU check on a machine with an NVIDIA GPU (H100/H200: compute capability 9.0), the CUDA
# toolkit (nvcc), CMake, a C/C++ compiler and Python 3, and neither Rust nor network. It uses what
# scripts/prepare-gpu-check.sh put in gpu-check/ and takes a few minutes (most of it nvcc):
#
#   1. builds libllama + ggml (+ ggml-cuda) as shared libraries from gpu-check/llama.cpp.tar.gz with
#      -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90, Ninja when present, all cores (kept in
#      GPU_CHECK_WORK, so a second call on the same machine skips it);
#   2. runs gpu-check/bin/inproc-bench with LD_LIBRARY_PATH at those libraries on the tiny model for
#      --n-gpu-layers 0, half the layers and -1 (all), one process each;
#   3. prints one table (offload, TTFT ms, decode tok/s, VRAM used MiB, ...) and writes the results
#      JSON, the table and the logs under $OUT.
#
# Exit status 0 when every run succeeded, the GPU figures are present and the VRAM the load takes
# rises with offload; 1 otherwise.
#
# Usage: scripts/gpu-check.sh
# Environment: OUT (default gpu-check/out), GPU_CHECK_DIR (default gpu-check),
#   GPU_CHECK_WORK (build folder, default /tmp/gpu-check-build), CUDA_ARCHS (default 90),
#   NGL_MIDDLE (default: half the model's layers), RUNS (default 3), GPU_CHECK_CMAKE_ARGS (more
#   -D options for llama.cpp's CMake),
#   GPU_CHECK_CUDA=OFF builds a CPU libllama instead: tests this script where there is no GPU.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${GPU_CHECK_DIR:-$ROOT/gpu-check}"
OUT="${OUT:-$BUNDLE/out}"
WORK="${GPU_CHECK_WORK:-/tmp/gpu-check-build}"
CUDA="${GPU_CHECK_CUDA:-ON}"
CUDA_ARCHS="${CUDA_ARCHS:-90}"
RUNS="${RUNS:-3}"
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
BIN="$BUNDLE/bin/inproc-bench"
MODEL="$BUNDLE/models/tiny-llama-q4_0.gguf"
START=$(date +%s)

die() { echo "gpu-check: error: $*" >&2; exit 1; }
log() { echo "gpu-check: [$(( $(date +%s) - START ))s] $*" >&2; }

[[ -x "$BIN" && -f "$MODEL" && -f "$BUNDLE/llama.cpp.tar.gz" ]] ||
  die "$BUNDLE is incomplete: run scripts/prepare-gpu-check.sh first"
mkdir -p "$OUT" "$WORK"
cp "$BUNDLE/MANIFEST" "$OUT/MANIFEST" 2>/dev/null || true

if [[ "$CUDA" == ON ]]; then
  if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
  command -v nvcc >/dev/null || die "nvcc not found"
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$OUT/nvidia-smi.csv" >&2 || true
  nvcc --version | tail -2 >&2
fi
command -v cmake >/dev/null || die "cmake not found"

# 1. libllama + ggml, shared.
SRC_SUM="$(sha256sum "$BUNDLE/llama.cpp.tar.gz" | cut -c1-16)"
STAMP="$SRC_SUM cuda=$CUDA archs=$CUDA_ARCHS no-amx ${GPU_CHECK_CMAKE_ARGS:-}"
LIB_DIR="$WORK/build/bin"
if [[ -f "$WORK/stamp" && "$(cat "$WORK/stamp")" == "$STAMP" && -f "$LIB_DIR/libllama.so" ]]; then
  log "libllama already built in $WORK"
elif [[ -f "$WORK/configured" && "$(cat "$WORK/configured")" == "$STAMP" ]]; then
  log "resuming the libllama build in $WORK"
else
  rm -rf "$WORK/llama.cpp" "$WORK/build" "$WORK/stamp" "$WORK/configured"
  tar -xzf "$BUNDLE/llama.cpp.tar.gz" -C "$WORK"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  flags=(
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF
    # No AMX: some virtual machines list it in the CPU flags but fault on its instructions
    # (SIGILL in the CPU matmul), and the in-process static build has none either.
    "-DCMAKE_C_FLAGS=${NO_AMX}" "-DCMAKE_CXX_FLAGS=${NO_AMX}"
  )
  # shellcheck disable=SC2206
  flags+=(${GPU_CHECK_CMAKE_ARGS:-})
  if [[ "$CUDA" == ON ]]; then
    flags+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" -DGGML_CUDA_NCCL=OFF)
  fi
  log "configuring llama.cpp (GGML_CUDA=$CUDA, architectures $CUDA_ARCHS)"
  if ! cmake -S "$WORK/llama.cpp" -B "$WORK/build" "${generator[@]}" "${flags[@]}" > "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log" >&2
    die "cmake configure failed (log: $OUT/build.log)"
  fi
  echo "$STAMP" > "$WORK/configured"
fi
if [[ ! -f "$WORK/stamp" || "$(cat "$WORK/stamp")" != "$STAMP" ]]; then
  log "building libllama with $(nproc) jobs"
  if ! cmake --build "$WORK/build" --target llama -j "$(nproc)" >> "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log" >&2
    die "build failed (log: $OUT/build.log)"
  fi
  echo "$STAMP" > "$WORK/stamp"
  log "built: $(find "$LIB_DIR" -maxdepth 1 -name 'lib*.so*' -printf '%f ')"
fi
export LD_LIBRARY_PATH="$LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$BIN" | grep -q "not found"; then
  ldd "$BIN" >&2
  die "the binary does not find all its libraries"
fi

# 2. Runs: no offload, half the layers, all.
N_LAYER="$(sed -n 's/^model: .*n_layer=\([0-9]*\).*/\1/p' "$BUNDLE/MANIFEST" 2>/dev/null || true)"
MIDDLE="${NGL_MIDDLE:-$(( ${N_LAYER:-8} / 2 ))}"
failed=0
for ngl in 0 "$MIDDLE" -1; do
  log "run: --n-gpu-layers $ngl"
  if ! "$BIN" --engine llamacpp --model "$MODEL" --n-gpu-layers "$ngl" --prompt short \
      --warmup 1 --runs "$RUNS" --quiet --output "$OUT/ngl_${ngl}.json" > "$OUT/run_ngl_${ngl}.log" 2>&1; then
    tail -20 "$OUT/run_ngl_${ngl}.log" >&2
    echo "gpu-check: --n-gpu-layers $ngl failed (log: $OUT/run_ngl_${ngl}.log)" >&2
    failed=1
  fi
done

# 3. Table and verdict.
status=0
python3 - "$OUT" "$CUDA" 0 "$MIDDLE" -1 <<'PY' | tee "$OUT/table.txt" || status=1
import json, os, sys

out, cuda, settings = sys.argv[1], sys.argv[2] == "ON", sys.argv[3:]
MiB = 1024 * 1024


def mib(v):
    return "-" if v is None else f"{v / MiB:.0f}"


def num(v, fmt):
    return "-" if v is None else format(v, fmt)


rows, problems, loads = [], [], []
for ngl in settings:
    path = os.path.join(out, f"ngl_{ngl}.json")
    if not os.path.exists(path):
        problems.append(f"--n-gpu-layers {ngl}: no results")
        continue
    engine = next(iter(json.load(open(path))["results"].values()))
    short = engine["prompts"].get("short", {})
    gpu = engine.get("gpu") or {}
    before, after = gpu.get("memory_used_before_load_bytes"), gpu.get("memory_used_after_load_bytes")
    load = after - before if before is not None and after is not None else None
    rows.append([
        ngl,
        num((short.get("ttft_ms") or {}).get("mean"), ".1f"),
        num((short.get("tps") or {}).get("mean"), ".0f"),
        mib(after),
        mib(load),
        mib(gpu.get("memory_peak_during_runs_bytes")),
        num(gpu.get("power_mean_w"), ".0f"),
        num(gpu.get("energy_per_token_j"), ".3f"),
    ])
    if short.get("successful_runs", 0) < 1:
        problems.append(f"--n-gpu-layers {ngl}: no successful run")
    if cuda:
        for field in ("memory_used_before_load_bytes", "memory_used_after_load_bytes",
                      "memory_peak_during_runs_bytes"):
            if gpu.get(field) is None:
                problems.append(f"--n-gpu-layers {ngl}: gpu.{field} is null ({gpu.get('note')})")
    loads.append((ngl, load))

head = ["offload", "TTFT ms", "decode tok/s", "VRAM used MiB", "load took MiB", "peak MiB",
        "power W", "J/token"]
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
if cuda:
    for (a, la), (b, lb) in zip(loads, loads[1:]):
        if la is None or lb is None or lb <= la:
            problems.append(f"the load took {mib(lb)} MiB at --n-gpu-layers {b}, "
                            f"not more than {mib(la)} MiB at {a}")
    device = next(((json.load(open(os.path.join(out, f"ngl_{s}.json"))).get("system") or {}).get("gpu")
                   for s in settings if os.path.exists(os.path.join(out, f"ngl_{s}.json"))), None)
    if device and device.get("devices"):
        d = device["devices"][0]
        print(f"device: {d['name']} (cc {d['compute_capability']}, {d['total_memory_bytes'] / MiB:.0f} MiB, "
              f"driver {d['driver_version']}, CUDA {d['cuda_driver_api_version']})")
else:
    print("CPU build of libllama (GPU_CHECK_CUDA=OFF): GPU figures not checked")
for p in problems:
    print(f"FAIL: {p}")
print("PASS" if not problems else "FAILED")
sys.exit(1 if problems else 0)
PY
log "done; files in $OUT"
(( failed == 0 && status == 0 ))
