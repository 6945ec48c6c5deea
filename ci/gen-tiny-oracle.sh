#!/usr/bin/env bash
# Regenerate oracles/tiny-seeded/f32.json: transformers (f32, CPU) on the Hugging Face
# folder `groundtruth materialize --model tiny-seeded` writes (deterministic bytes: the
# oracle's model.sha256 names that folder's model.safetensors).
#
#   ci/gen-tiny-oracle.sh            # venv with torch + transformers in /work/venv-torch
#   VENV_TORCH=... ci/gen-tiny-oracle.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_TORCH="${VENV_TORCH:-/work/venv-torch}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo run --release --quiet -- materialize --model tiny-seeded --out "$WORK/tiny-seeded" >&2
"$VENV_TORCH/bin/python" ci/oracle_transformers.py \
    --model "$WORK/tiny-seeded" \
    --model-id "groundtruth/tiny-seeded" \
    --prompts configs/prompts.toml --eval configs/eval.toml \
    --out oracles/tiny-seeded/f32.json
