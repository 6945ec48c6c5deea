#!/usr/bin/env python3
"""llama.cpp's speed on this machine, for `groundtruth bench eval` to be read against.

Usage: /work/venv-oracle/bin/python ci/bench_llamacpp.py [--model PATH] [--threads 2]

Measures with llama-cpp-python (the oracle's runtime, same settings as
ci/oracle_llamacpp.py: n_ctx = n_batch = n_ubatch = 512, flash attention, CPU):
* prefill: 8 chunks of 512 tokens of the configs/eval.toml slice, each from an empty
  KV cache in one batch, as llama.cpp's perplexity tool runs them; logits for every
  position (logits_all) and, separately, for the last one only;
* decode: 4 prompts of configs/prompts.toml, 32 greedy tokens each, one token per
  llama_decode call; tokens/s over the single-token steps.
The machine is shared: run it next to `groundtruth bench eval` and compare the two.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import numpy as np  # noqa: E402
from llama_cpp import Llama  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/groundtruth/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sl = oc.load_eval_slice(ROOT / "configs/eval.toml")
    prompts = oc.load_prompts(ROOT / "configs/prompts.toml")[:4]
    for logits_all in (True, False):
        llm = Llama(model_path=args.model, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=args.threads,
                    n_threads_batch=args.threads, n_gpu_layers=0, logits_all=logits_all, flash_attn=True, verbose=False)
        toks = llm.tokenize(sl["text"].encode("utf-8"), add_bos=False, special=False)
        t0 = time.perf_counter()
        for c in range(sl["chunks"]):
            llm.reset()
            llm.eval(toks[c * 512:(c + 1) * 512])
        dt = time.perf_counter() - t0
        print(f"prefill (logits_all={logits_all}): {sl['chunks'] * 512 / dt:.1f} tokens/s")
    steps = 0
    spent = 0.0
    for p in prompts:
        llm.reset()
        llm.eval(llm.tokenize(p["text"].encode("utf-8"), add_bos=False, special=True))
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t0 = time.perf_counter()
        for _ in range(31):
            llm.eval([tok])
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        spent += time.perf_counter() - t0
        steps += 31
    print(f"decode: {steps / spent:.1f} tokens/s")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
