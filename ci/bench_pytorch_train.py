#!/usr/bin/env python3
"""PyTorch's training throughput on the shapes `groundtruth bench train` times.

Usage: /work/venv-torch/bin/python ci/bench_pytorch_train.py --config CONFIG.json
       [--batch 16] [--seq-len 128] [--warmup 2] [--steps 10] [--threads 2]

`groundtruth bench train --with-pytorch PYTHON` writes each rung's Hugging Face
config.json, runs this right after its own timing with the same batch, sequence length,
step counts and threads, and reads the one JSON line it prints. The step is the
harness's: transformers' LlamaForCausalLM in f32 on the CPU (its default attention),
built from the config with its own seeded init (throughput does not depend on the
values), next-token cross-entropy over batch x seq_len positions of random token ids
(two batches alternating), backward, gradient clipping at 1.0, AdamW (betas 0.9/0.95,
eps 1e-8, weight decay 0.1, lr 1e-3). Tokens/s = batch x seq_len / mean seconds of the
timed steps; warmup steps are not timed.
"""

import argparse
import json
import os
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="Hugging Face config.json of the rung")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.steps < 1 or args.batch < 1 or args.seq_len < 1:
        raise SystemExit("--steps, --batch and --seq-len must be at least 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    with open(args.config, encoding="utf-8") as f:
        config = LlamaConfig(**json.load(f))
    model = LlamaForCausalLM(config).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    g = torch.Generator().manual_seed(2)
    batches = [torch.randint(0, config.vocab_size, (args.batch, args.seq_len + 1), generator=g) for _ in range(2)]
    timed = 0.0
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        b = batches[i % 2]
        logits = model(input_ids=b[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config.vocab_size), b[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= args.warmup:
            timed += time.perf_counter() - t0
    per_step = timed / args.steps
    print(json.dumps({
        "runtime": f"PyTorch {torch.__version__} (transformers {transformers.__version__}, attention {config._attn_implementation})",
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "tokens_per_s": args.batch * args.seq_len / per_step,
        "step_seconds": per_step,
        "load_average_1min": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
