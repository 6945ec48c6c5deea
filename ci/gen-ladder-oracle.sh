#!/usr/bin/env bash
# Regenerate oracles/tiny_1m/f32.json: train the registered tiny_1m recipe with the
# harness (configs/recipes.toml; deterministic, so the folder's model.safetensors is
# bit-identical to the one the claims train), then run transformers on that folder.
#
#   ci/gen-ladder-oracle.sh          # venv in /work/venv-torch (made if missing)
#   VENV_TORCH=... ci/gen-ladder-oracle.sh
#
# The oracle records model.sha256; the claims refuse a trained folder with other bytes,
# so a change to training that moves any weight bit shows up as an error, not a pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_TORCH="${VENV_TORCH:-/work/venv-torch}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo run --release --quiet -- train --recipe tiny_1m --out "$WORK/tiny_1m"

if [[ ! -x "$VENV_TORCH/bin/python" ]] || ! "$VENV_TORCH/bin/python" -c 'import torch, transformers' 2>/dev/null; then
    python3 -m venv "$VENV_TORCH"
    "$VENV_TORCH/bin/python" -m pip install -U pip
    "$VENV_TORCH/bin/python" -m pip install -r ci/requirements-oracle-transformers.txt
fi
"$VENV_TORCH/bin/python" ci/oracle_transformers.py \
    --model "$WORK/tiny_1m" \
    --model-id "groundtruth/ladder-tiny_1m (configs/recipes.toml recipe tiny_1m)" \
    --prompts configs/prompts.toml --eval configs/eval.toml \
    --out oracles/tiny_1m/f32.json
