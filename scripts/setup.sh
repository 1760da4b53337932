#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for inproc-bench: system packages, the Rust toolchain check,
# the default test model, and the release build. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

need_pkgs=()
for pkg in cmake clang libclang-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  log "installing system packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (rustup) first, then run this again" >&2
  exit 1
fi

log "fetching the default model"
scripts/fetch-model.sh

log "building inproc-bench (release; the first build compiles llama.cpp, several minutes)"
cargo build --release ${INPROC_FEATURES:+--features "$INPROC_FEATURES"}
echo "built: target/release/inproc-bench" >&2
