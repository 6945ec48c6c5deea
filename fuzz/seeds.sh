#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from a micro
# model the harness builds from a seed (hidden 32, one layer, byte vocabulary: a GGUF of
# ~45 KB, so the fuzzer runs thousands of inputs a second), the committed oracles and
# the claims files. Needs the release binary: `cargo build --release` first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin="$repo/target/release/groundtruth"
[ -x "$bin" ] || { echo "seeds.sh: build the harness first (cargo build --release)" >&2; exit 2; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/configs"
cat > "$root/configs/micro.json" <<'JSON'
{"vocab_size": 256, "hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 1,
 "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "max_position_embeddings": 64, "tie_word_embeddings": true}
JSON
cat > "$root/configs/models.toml" <<'TOML'
[[model]]
name = "micro"
description = "fuzz seed"
seeded = { seed = 1, config = "configs/micro.json" }
TOML
for t in gguf safetensors_folder oracle_json claims_toml records_jsonl; do mkdir -p "$here/corpus/$t"; done
"$bin" --root "$root" export --model micro --out "$here/corpus/gguf/micro-f32.gguf" > /dev/null
"$bin" --root "$root" quantize --model micro --to q8_0 --out "$here/corpus/gguf/micro-q8_0.gguf" > /dev/null
"$bin" --root "$root" materialize --model micro --out "$root/folder" > /dev/null
{
    cat "$root/folder/config.json"; printf '\n--8<--\n'
    cat "$root/folder/model.safetensors"; printf '\n--8<--\n'
    cat "$root/folder/tokenizer.json"
} > "$here/corpus/safetensors_folder/micro"
cat > "$here/corpus/oracle_json/small.json" <<'JSON'
{"format": "groundtruth-oracle/1",
 "model": {"id": "micro", "file": "model.safetensors", "sha256": "3462e8762629dbcacae5b74e206ac9c0c35b9be4f39f5edcc9b53b0ca9546ec8", "weights": "f32"},
 "runtime": {"name": "transformers", "version": "4.46", "device": "cpu", "threads": 2},
 "decoding": {"strategy": "greedy", "max_new_tokens": 4, "add_bos": false},
 "top_k": 3,
 "cases": [{"id": "a", "prompt": "Hi", "prompt_tokens": [72, 105], "tokens": [33, 10], "text": "!\n",
            "top_logprobs": [[[33, -0.1], [46, -2.5]], [[10, -0.2]]]}],
 "perplexity": {"text_sha256": "0000000000000000000000000000000000000000000000000000000000000000", "ctx": 64, "chunks": 2, "scored": "second-half", "ppl": 3.5, "n_scored": 62}}
JSON
for f in "$repo"/oracles/*/*.json; do cp "$f" "$here/corpus/oracle_json/$(basename "$(dirname "$f")")-$(basename "$f")"; done
for f in "$repo"/claims/*.toml "$repo"/claims/check/*.toml; do cp "$f" "$here/corpus/claims_toml/$(basename "$(dirname "$f")")-$(basename "$f")"; done
cp "$repo/tests/fixtures/metrics/handmade.jsonl" "$here/corpus/records_jsonl/handmade.jsonl"
ls -l "$here"/corpus/*
