#!/usr/bin/env bash
# Regenerate tests/fixtures/unseen/smollm2-q4_1.json: llama.cpp on SmolLM2's Q4_1 GGUF
# with prompts no committed oracle uses (tests/fixtures/unseen/prompts.toml), for the
# planted checks in tests/check.rs.
#
#   ci/gen-unseen-oracle.sh            # venv with llama-cpp-python in /work/venv-oracle
#   VENV_ORACLE=... ci/gen-unseen-oracle.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_ORACLE="${VENV_ORACLE:-/work/venv-oracle}"
GGUF="$(ci/fetch-models.sh)"
"$VENV_ORACLE/bin/python" ci/oracle_llamacpp.py \
    --model "$GGUF" \
    --prompts tests/fixtures/unseen/prompts.toml --no-perplexity \
    --check-determinism \
    --out tests/fixtures/unseen/smollm2-q4_1.json
