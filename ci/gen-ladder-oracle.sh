#!/usr/bin/env bash
# Regenerate oracles/RUNG/f32.json for a trained ladder rung (default tiny_1m): train the
# registered recipe of that name with the harness (configs/recipes.toml; deterministic, so
# the folder's model.safetensors is bit-identical to the one the claims train), then run
# transformers on that folder.
#
#   ci/gen-ladder-oracle.sh              # tiny_1m; venv in /work/venv-torch (made if missing)
#   ci/gen-ladder-oracle.sh small_8m     # ~10 min of training on two cores first
#   VENV_TORCH=... ci/gen-ladder-oracle.sh
#
# The oracle records model.sha256; the claims refuse a trained folder with other bytes,
# so a change to training that moves any weight bit shows up as an error, not a pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# `train` refuses a recipe configs/recipes.toml lacks, or a GPU recipe without a GPU (exit 2).
RUNG="${1:-tiny_1m}"
VENV_TORCH="${VENV_TORCH:-/work/venv-torch}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo run --release --quiet -- train --recipe "$RUNG" --out "$WORK/$RUNG"

if [[ ! -x "$VENV_TORCH/bin/python" ]] || ! "$VENV_TORCH/bin/python" -c 'import torch, transformers' 2>/dev/null; then
    python3 -m venv "$VENV_TORCH"
    "$VENV_TORCH/bin/python" -m pip install -U pip
    "$VENV_TORCH/bin/python" -m pip install -r ci/requirements-oracle-transformers.txt
fi
mkdir -p "oracles/$RUNG"
"$VENV_TORCH/bin/python" ci/oracle_transformers.py \
    --model "$WORK/$RUNG" \
    --model-id "groundtruth/ladder-$RUNG (configs/recipes.toml recipe $RUNG)" \
    --prompts configs/prompts.toml --eval configs/eval.toml \
    --out "oracles/$RUNG/f32.json"
