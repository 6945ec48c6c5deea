#!/usr/bin/env bash
# Regenerate oracles/tiny-seeded-gguf/llamacpp-f32.json: llama.cpp (llama-cpp-python)
# running the GGUF that `groundtruth export` writes for tiny-seeded. The oracle names the
# file by SHA-256, and the harness rebuilds model tiny-seeded-gguf byte for byte on every
# run, so regenerate it whenever the export format changes (the EP-* claims then skip
# with "not the oracle's file" until this is rerun).
#
#   ci/gen-export-oracle.sh            # venv with llama-cpp-python in /work/venv-oracle
#   VENV_ORACLE=... ci/gen-export-oracle.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV_ORACLE="${VENV_ORACLE:-/work/venv-oracle}"
OUT="$ROOT/oracles/tiny-seeded-gguf/llamacpp-f32.json"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$ROOT"
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/groundtruth"
"$BIN" export --model tiny-seeded --to gguf --out "$TMP/tiny-seeded.gguf" >&2
"$BIN" inspect "$TMP/tiny-seeded.gguf" > "$TMP/inspect.txt"
"$VENV_ORACLE/bin/python" ci/oracle_llamacpp.py \
    --model "$TMP/tiny-seeded.gguf" \
    --prompts configs/prompts.toml --eval configs/eval.toml \
    --model-id "tiny-seeded (groundtruth export, f32 GGUF)" --weights f32 \
    --check-determinism --out "$OUT"
echo "wrote $OUT for sha256 $(sha256sum "$TMP/tiny-seeded.gguf" | cut -d' ' -f1)" >&2
