#!/usr/bin/env python3
"""Build a tiny random LlamaForCausalLM folder (config.json, model.safetensors,
tokenizer.json) to smoke-test ci/oracle_transformers.py without any download.

Usage:
  /work/venv-torch/bin/python ci/make_tiny_llama.py --out /tmp/tiny-llama [--zero-head]

The tokenizer is a byte-level BPE (GPT-2 style pre-tokenizer and decoder) trained
on the first 64 KiB of the perplexity corpus up to 300 entries, with the special
tokens <|endoftext|> (id 0, BOS/EOS), <|im_start|> (1) and <|im_end|> (2).
The model: hidden 64, 2 layers, 4 heads (2 KV heads), seed 0. --zero-head zeroes
lm_head so every logit ties: greedy picks id 0 = EOS at once (tests the EOS path
and the tie order). Never commit the output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 300
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[1] / "data/tinyshakespeare.txt"))
    ap.add_argument("--zero-head", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = Path(args.corpus).read_bytes()[:65536].decode("utf-8")
    tok.train_from_iterator([text], trainer=trainer)
    assert tok.token_to_id("<|endoftext|>") == 0
    tok.save(str(out / "tokenizer.json"))

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0,
        bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        # Default init (std 0.02) gives nearly flat distributions; widen them.
        model.lm_head.weight.normal_(0.0, 1.0)
        if args.zero_head:
            model.lm_head.weight.zero_()
    model.save_pretrained(str(out), safe_serialization=True)
    print(out)


if __name__ == "__main__":
    main()
