#!/usr/bin/env bash
# Prints the number of physical CPU cores (the default thread count of the benchmark scripts, as
# of inproc-bench itself); falls back to logical CPUs, then 1.
set -uo pipefail
n=""
if command -v lscpu >/dev/null 2>&1; then
  n="$(lscpu -p=core,socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)"
fi
[[ "$n" =~ ^[1-9][0-9]*$ ]] || n="$(nproc 2>/dev/null || echo 1)"
echo "$n"
