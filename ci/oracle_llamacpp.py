#!/usr/bin/env python3
"""Generate a `groundtruth-oracle/1` file from a GGUF model with llama.cpp
(llama-cpp-python), on the CPU, 2 threads.

Usage:
  /work/venv-oracle/bin/python ci/oracle_llamacpp.py --model PATH.gguf \
      --prompts configs/prompts.toml --eval configs/eval.toml \
      --out oracles/smollm2-135m-instruct/q4_1.json

What exactly is done (so another runtime can reproduce it):

* Model: `llama_cpp.Llama(model_path, n_ctx=512 (or more if a prompt needs it),
  n_batch=n_ubatch=n_ctx, n_threads=n_threads_batch=2, logits_all=True,
  flash_attn=True, n_gpu_layers=0)`, KV cache F16 (default). No sampler is used anywhere: every number
  comes from the raw logits in `Llama.scores` (float32), turned into a full
  log-softmax over the whole vocabulary in float64 by this script.
  Flash attention ON is llama.cpp's own default (flash_attn_type "auto" resolves
  to enabled on the CPU backend; llama-cpp-python would otherwise force it off).
  It matters: with it, KV-cache decoding one token at a time gives bit-identical
  logits to a one-pass evaluation of the whole sequence (max |delta| = 0), so a
  teacher-forced llama.cpp run reproduces this oracle exactly. With it OFF, the
  two paths differ by up to ~0.1 nat on top-10 logprobs (and ~1 nat in the tail)
  and a near-tie in "planets" flips. Either way llama.cpp's CPU numerics (q8_1
  activations, F16 KV/attention) differ from exact f32 math on the dequantized
  weights by ~0.1 nat on average (up to ~0.8) on top-10 logprobs for this model.
* model.config: the hyperparameters llama.cpp runs the file with (see model_config():
  llama.cpp's API for sizes and BOS/EOS, the GGUF metadata through gguf-py for floats).
* add_bos: what llama.cpp itself uses for the model, `llama_vocab_get_add_bos`
  (GGUF `tokenizer.ggml.add_bos_token`, or llama.cpp's per-tokenizer default when
  the key is absent). It is recorded as `decoding.add_bos`.
* prompt_tokens: `llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)`,
  i.e. llama_tokenize(add_special=True, parse_special=True): special tokens such as
  <|im_start|> are parsed, and BOS is prepended exactly when add_bos is true
  (checked; an add_eos model is rejected).
* Generation, INCREMENTAL (this is what is recorded): clear the KV cache,
  decode all prompt tokens in ONE batch, take the logits of the last prompt
  position; then repeatedly: log_softmax(float64) -> greedy token = argmax
  (lowest id on an exact tie) -> append -> stop if llama.cpp says the token is
  end-of-generation (`llama_vocab_is_eog`; it stays as the last token) or
  max_new_tokens is reached -> otherwise decode that single token (batch of 1,
  KV cache) and continue. top_logprobs[i] = the 10 largest entries of that
  float64 log-softmax, most likely first (ties: lower id first).
* Teacher-forcing check, BATCHED: clear the KV cache and decode
  prompt_tokens + tokens in ONE batch; at every generated position the argmax
  must equal tokens[i] (the script fails otherwise) and the max |delta logprob|
  between the incremental and the batched log-softmax is printed (over the
  recorded top-10 ids and over the full vocabulary).
* text: the bytes of the generated tokens' pieces (`llama_token_to_piece`,
  special tokens rendered as their text, e.g. "<|im_end|>"), decoded as UTF-8 with
  invalid sequences (a character cut at max_new_tokens) replaced by U+FFFD.
* perplexity, as llama.cpp's tools/perplexity/perplexity.cpp: tokenize the exact
  slice text with `llm.tokenize(slice, add_bos=True, special=False)` (=
  common_tokenize(ctx, text, add_special=true): BOS only if the model adds BOS,
  special tokens not parsed); chunk c = tokens[c*ctx : (c+1)*ctx] for c < chunks
  (fails if there are fewer than chunks*ctx tokens); if add_bos the chunk's first
  token is replaced by BOS; clear the KV cache, decode the chunk in one batch; the
  logits at positions ctx/2 .. ctx-2 are scored against the next token (ctx-1-ctx/2
  tokens a chunk, exactly as perplexity.cpp's process_logits); NLL in float64,
  ppl = exp(mean NLL); n_scored = chunks * (ctx - 1 - ctx/2).
* Output: the contract's key order, written atomically (tmp file + rename);
  validated first (top_logprobs[i][0][0] == tokens[i], every logprob <= 0, sorted
  descending, exact fields).

Determinism: ggml's CPU kernels with a fixed thread count and fixed batch shapes
give the same logits run to run; `--check-determinism` generates twice and
compares the two documents byte for byte.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import numpy as np  # noqa: E402

try:
    import llama_cpp  # noqa: E402
    from llama_cpp import Llama  # noqa: E402
except ImportError:  # pragma: no cover
    oc.die("llama-cpp-python is not installed; see ci/gen-oracles.sh")

THREADS = 2
TOP_K = 10
MODEL_ID_DEFAULT = "HuggingFaceTB/SmolLM2-135M-Instruct"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Runtime:
    def __init__(self, model_path: str, n_ctx: int):
        self.llm = Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_ubatch=n_ctx,
            n_threads=THREADS,
            n_threads_batch=THREADS,
            n_gpu_layers=0,
            logits_all=True,
            flash_attn=True,
            verbose=False,
        )
        self.n_ctx = n_ctx
        self.vocab = self.llm._model.vocab
        self.n_vocab = self.llm.n_vocab()
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.add_eos = bool(llama_cpp.llama_vocab_get_add_eos(self.vocab))
        self.bos = int(self.llm.token_bos())
        self.eog = {t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self.vocab, t)}
        if self.add_eos:
            oc.die("model adds EOS when tokenizing; not supported (perplexity.cpp asserts !add_eos)")

    def evaluate(self, tokens: list[int]) -> np.ndarray:
        """Clear the KV cache, decode `tokens` in one batch; float32 logits [n, vocab]."""
        if len(tokens) > self.n_ctx:
            raise oc.OracleError(f"{len(tokens)} tokens exceed n_ctx={self.n_ctx}")
        self.llm.reset()
        self.llm.eval(tokens)  # len <= n_batch: a single llama_decode call
        return np.array(self.llm.scores[: len(tokens)], dtype=np.float32, copy=True)

    def step(self, token: int) -> np.ndarray:
        """Decode one more token on top of the KV cache; its float32 logits."""
        n = self.llm.n_tokens
        if n + 1 > self.n_ctx:
            raise oc.OracleError("context full")
        self.llm.eval([token])
        return np.array(self.llm.scores[n], dtype=np.float32, copy=True)

    def tokenize(self, text: str, special: bool) -> list[int]:
        return [int(t) for t in self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=special)]

    def piece_bytes(self, tokens: list[int]) -> bytes:
        return self.llm.detokenize(tokens, special=True)


def generate_case(rt: Runtime, prompt: dict, max_new: int) -> tuple[dict, dict]:
    ptoks = rt.tokenize(prompt["text"], special=True)
    if rt.add_bos and (not ptoks or ptoks[0] != rt.bos):
        raise oc.OracleError(f"{prompt['id']}: add_bos but prompt_tokens[0] != BOS")
    if len(ptoks) + max_new > rt.n_ctx:
        raise oc.OracleError(f"{prompt['id']}: prompt too long for n_ctx={rt.n_ctx}")

    # Incremental greedy generation (recorded).
    logits = rt.evaluate(ptoks)[-1]
    tokens: list[int] = []
    tops: list[list] = []
    inc_lps: list[np.ndarray] = []
    while True:
        lp = oc.log_softmax_f64(logits)
        top = oc.top_k_pairs(lp, TOP_K)
        tok = int(np.argmax(lp))
        assert top[0][0] == tok, (top[0], tok)
        tokens.append(tok)
        tops.append(top)
        inc_lps.append(lp)
        if tok in rt.eog or len(tokens) >= max_new:
            break
        logits = rt.step(tok)

    # Batched teacher-forcing check: prompt_tokens + tokens in ONE batch.
    full = rt.evaluate(ptoks + tokens)
    d_top = 0.0
    d_all = 0.0
    for i, tok in enumerate(tokens):
        lp_b = oc.log_softmax_f64(full[len(ptoks) - 1 + i])
        if int(np.argmax(lp_b)) != tok:
            raise oc.OracleError(
                f"{prompt['id']}: teacher-forcing mismatch at generated position {i}: "
                f"incremental argmax {tok}, batched argmax {int(np.argmax(lp_b))}")
        ids = [p[0] for p in tops[i]]
        d_top = max(d_top, float(np.max(np.abs(lp_b[ids] - inc_lps[i][ids]))))
        d_all = max(d_all, float(np.max(np.abs(lp_b - inc_lps[i]))))

    case = {
        "id": prompt["id"],
        "prompt": prompt["text"],
        "prompt_tokens": ptoks,
        "tokens": tokens,
        "text": oc.decode_text(rt.piece_bytes(tokens)),
        "top_logprobs": tops,
    }
    return case, {"d_top": d_top, "d_all": d_all}


def perplexity(rt: Runtime, sl: dict) -> dict:
    ctx, chunks = sl["ctx"], sl["chunks"]
    toks = rt.tokenize(sl["text"], special=False)
    if len(toks) < chunks * ctx:
        raise oc.OracleError(
            f"perplexity slice tokenizes to {len(toks)} tokens < chunks*ctx = {chunks * ctx}")
    first = ctx // 2
    nll = 0.0
    count = 0
    for c in range(chunks):
        chunk = list(toks[c * ctx:(c + 1) * ctx])
        if rt.add_bos:
            chunk[0] = rt.bos
        logits = rt.evaluate(chunk)
        for pos in range(first, ctx - 1):
            lp = oc.log_softmax_f64(logits[pos])
            nll -= float(lp[chunk[pos + 1]])
            count += 1
        log(f"  ppl chunk {c + 1}/{chunks}: running ppl {np.exp(nll / count):.4f}")
    assert count == chunks * (ctx - 1 - first)
    return {
        "text_sha256": sl["text_sha256"],
        "ctx": ctx,
        "chunks": chunks,
        "scored": "second-half",
        "ppl": float(np.exp(nll / count)),
        "n_scored": count,
    }


def model_config(path: str, rt: Runtime) -> dict:
    """model.config as llama.cpp reads the file. Sizes, heads, layers, context length and
    BOS/EOS come from llama.cpp's own API (llama_model_* / llama_vocab_*); floats and the
    keys the API does not expose come from the GGUF metadata through gguf-py (llama.cpp's
    reader; llama.cpp's metadata strings print floats with 6 decimals, 1e-6 would read as
    0.000001 and 1e-7 as 0). Each API value that the metadata also states is checked
    against it. tie_word_embeddings is llama.cpp's rule: no output.weight tensor means the
    output reuses token_embd. BOS/EOS are written only where the metadata states them.
    Keys neither source states are left out."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def meta(key):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = meta("general.architecture")
    m = rt.llm._model.model
    api = {
        "hidden_size": int(llama_cpp.llama_model_n_embd(m)),
        "num_layers": int(llama_cpp.llama_model_n_layer(m)),
        "num_heads": int(llama_cpp.llama_model_n_head(m)),
        "num_kv_heads": int(llama_cpp.llama_model_n_head_kv(m)),
        "context_length": int(llama_cpp.llama_model_n_ctx_train(m)),
    }
    for key, name in (("hidden_size", "embedding_length"), ("num_layers", "block_count"),
                      ("num_heads", "attention.head_count"), ("num_kv_heads", "attention.head_count_kv"),
                      ("context_length", "context_length")):
        stated = meta(f"{arch}.{name}")
        if stated is not None and stated != api[key]:
            raise oc.OracleError(f"{path}: {arch}.{name} = {stated} but llama.cpp uses {api[key]}")
    ff = meta(f"{arch}.feed_forward_length")
    head_dim = meta(f"{arch}.attention.key_length")
    if head_dim is None:
        head_dim = api["hidden_size"] // api["num_heads"]  # llama.cpp's default n_embd_head_k
    scale = float(llama_cpp.llama_model_rope_freq_scale_train(m))
    scaling_type = meta(f"{arch}.rope.scaling.type")
    if scaling_type is None and scale == 1.0:
        rope_scaling = None
    elif scaling_type is not None:
        rope_scaling = {"type": scaling_type, "factor": 1.0 / scale}
        orig = meta(f"{arch}.rope.scaling.original_context_length")
        if orig is not None:
            rope_scaling["original_context_length"] = orig
    else:
        rope_scaling = "absent"  # a scale without a type: not stated clearly enough to write
    # BOS/EOS only where the file states them: for a vocabulary without them llama.cpp
    # falls back to ids of its own choosing (255 for a 256-token byte vocabulary), which
    # says nothing about the model.
    bos = eos = None
    for key, api_id in (("bos", llama_cpp.llama_vocab_bos(rt.vocab)), ("eos", llama_cpp.llama_vocab_eos(rt.vocab))):
        stated = meta(f"tokenizer.ggml.{key}_token_id")
        if stated is None:
            continue
        if stated != int(api_id):
            raise oc.OracleError(f"{path}: tokenizer.ggml.{key}_token_id = {stated} but llama.cpp uses {api_id}")
        if key == "bos":
            bos = stated
        else:
            eos = stated
    return oc.config_object({
        "architecture": arch,
        "vocab_size": rt.n_vocab,
        "hidden_size": api["hidden_size"],
        "intermediate_size": ff if isinstance(ff, int) else None,
        "num_layers": api["num_layers"],
        "num_heads": api["num_heads"],
        "num_kv_heads": api["num_kv_heads"],
        "head_dim": head_dim,
        "context_length": api["context_length"],
        "rope_theta": meta(f"{arch}.rope.freq_base"),
        "rope_scaling": rope_scaling,
        "rms_norm_eps": meta(f"{arch}.attention.layer_norm_rms_epsilon"),
        "tie_word_embeddings": "output.weight" not in {t.name for t in reader.tensors},
        "bos_token_id": bos,
        "eos_token_id": eos,
    })


def build(args) -> tuple[dict, dict]:
    prompts = oc.load_prompts(args.prompts)
    sl = oc.load_eval_slice(args.eval) if args.eval else None
    model_sha = oc.sha256_file(args.model)
    n_ctx = 512 if sl is None else max(512, sl["ctx"])
    rt = Runtime(args.model, n_ctx)
    log(f"llama-cpp-python {llama_cpp.__version__}; add_bos={rt.add_bos}; "
        f"n_vocab={rt.n_vocab}; eog={sorted(rt.eog)}")

    cases = []
    d_top = d_all = 0.0
    for p in prompts:
        case, d = generate_case(rt, p, args.max_new_tokens)
        d_top, d_all = max(d_top, d["d_top"]), max(d_all, d["d_all"])
        cases.append(case)
        log(f"  {p['id']}: {len(case['prompt_tokens'])} prompt tokens -> "
            f"{len(case['tokens'])} tokens {case['text']!r}")

    doc = {
        "format": oc.FORMAT,
        "model": {
            "id": args.model_id,
            "file": os.path.basename(args.model),
            "sha256": model_sha,
            "weights": args.weights,
            "config": model_config(args.model, rt),
        },
        "runtime": {
            "name": "llama.cpp",
            "version": f"llama-cpp-python {llama_cpp.__version__}",
            "device": "cpu",
            "threads": THREADS,
        },
        "decoding": {"strategy": "greedy", "max_new_tokens": args.max_new_tokens, "add_bos": rt.add_bos},
        "top_k": TOP_K,
        "cases": cases,
    }
    if sl is not None:
        doc["perplexity"] = perplexity(rt, sl)
    oc.validate_oracle(doc, eos_ids=rt.eog)
    return doc, {"d_top": d_top, "d_all": d_all}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="path to the .gguf file")
    ap.add_argument("--prompts", required=True, help="configs/prompts.toml")
    ap.add_argument("--eval", help="configs/eval.toml (perplexity); omit with --no-perplexity")
    ap.add_argument("--no-perplexity", action="store_true")
    ap.add_argument("--out", required=True, help="output oracle JSON")
    ap.add_argument("--model-id", default=MODEL_ID_DEFAULT)
    ap.add_argument("--weights", default="q4_1", help="model.weights (storage type)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--check-determinism", action="store_true",
                    help="generate twice and require identical output")
    args = ap.parse_args()
    if args.no_perplexity:
        args.eval = None
    elif not args.eval:
        ap.error("--eval is required unless --no-perplexity")

    t0 = time.monotonic()
    try:
        doc, d = build(args)
        text = oc.render_oracle(doc)
        if args.check_determinism:
            doc2, _ = build(args)
            if oc.render_oracle(doc2) != text:
                raise oc.OracleError("two runs gave different oracles (non-deterministic)")
            log("determinism: two runs identical")
    except (oc.OracleError, OSError, ValueError) as e:
        oc.die(str(e))
    oc.write_atomic(args.out, text)
    dt = time.monotonic() - t0
    log(f"incremental vs batched max |dlogprob|: top-{TOP_K} ids {d['d_top']:.3g}, "
        f"full vocab {d['d_all']:.3g}")
    if "perplexity" in doc:
        p = doc["perplexity"]
        log(f"perplexity {p['ppl']:.4f} over {p['n_scored']} tokens")
    log(f"wrote {args.out} in {dt:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
