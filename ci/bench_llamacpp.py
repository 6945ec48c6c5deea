#!/usr/bin/env python3
"""llama.cpp's speed on this machine, for `groundtruth bench eval` to be read against.

Usage: /work/venv-oracle/bin/python ci/bench_llamacpp.py [--model PATH] [--threads 2]
       [--prompts 4] [--tokens 32] [--no-prefill] [--json]

Measures with llama-cpp-python (the oracle's runtime, same settings as
ci/oracle_llamacpp.py: n_ctx = n_batch = n_ubatch = 512, flash attention, CPU):
* prefill: the configs/eval.toml slice's chunks (8 × 512 tokens), each from an empty
  KV cache in one batch, as llama.cpp's perplexity tool runs them; logits for every
  position (logits_all) and, separately, for the last one only;
* decode: the first `--prompts` prompts of configs/prompts.toml, `--tokens` greedy tokens
  each, one token per llama_decode call; tokens/s over the single-token steps.
`groundtruth bench eval --with-llama-cpp PYTHON` runs it right after its own measurement
with the same shapes and threads and reads the `--json` line; a ratio against figures
from another run, load or machine would not compare like with like.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import numpy as np  # noqa: E402
import llama_cpp  # noqa: E402
from llama_cpp import Llama  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def prefill(model: str, threads: int, sl: dict, logits_all: bool) -> float:
    """Tokens/s over the slice's chunks, each evaluated from an empty cache in one batch."""
    llm = Llama(model_path=model, n_ctx=sl["ctx"], n_batch=sl["ctx"], n_ubatch=sl["ctx"], n_threads=threads,
                n_threads_batch=threads, n_gpu_layers=0, logits_all=logits_all, flash_attn=True, verbose=False)
    toks = llm.tokenize(sl["text"].encode("utf-8"), add_bos=False, special=False)
    n = sl["ctx"]
    if len(toks) < sl["chunks"] * n:
        sys.exit(f"configs/eval.toml: the slice has {len(toks)} tokens, fewer than {sl['chunks']} x {n}")
    t0 = time.perf_counter()
    for c in range(sl["chunks"]):
        llm.reset()
        llm.eval(toks[c * n:(c + 1) * n])
    return sl["chunks"] * n / (time.perf_counter() - t0)


def decode(model: str, threads: int, prompts: list, tokens: int) -> float:
    """Tokens/s over the single-token greedy steps after each prompt."""
    llm = Llama(model_path=model, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=threads,
                n_threads_batch=threads, n_gpu_layers=0, logits_all=True, flash_attn=True, verbose=False)
    steps = 0
    spent = 0.0
    for p in prompts:
        llm.reset()
        llm.eval(llm.tokenize(p["text"].encode("utf-8"), add_bos=False, special=True))
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t0 = time.perf_counter()
        for _ in range(tokens - 1):
            llm.eval([tok])
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        spent += time.perf_counter() - t0
        steps += tokens - 1
    return steps / spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/groundtruth/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--no-prefill", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON line (what groundtruth reads)")
    args = ap.parse_args()
    sl = oc.load_eval_slice(ROOT / "configs/eval.toml")
    prompts = oc.load_prompts(ROOT / "configs/prompts.toml")[:args.prompts]
    out = {"runtime": f"llama.cpp (llama-cpp-python {llama_cpp.__version__})", "threads": args.threads}
    if not args.no_prefill:
        out["prefill_logits_all"] = prefill(args.model, args.threads, sl, True)
        out["prefill_last_logits"] = prefill(args.model, args.threads, sl, False)
    if prompts and args.tokens > 1:
        out["decode"] = decode(args.model, args.threads, prompts, args.tokens)
    out["load_average_1min"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
