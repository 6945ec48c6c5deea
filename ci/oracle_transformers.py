#!/usr/bin/env python3
"""Generate a `groundtruth-oracle/1` file from a Hugging Face model folder with
transformers (PyTorch), on the CPU, 2 threads, float32 weights.

Usage:
  /work/venv-torch/bin/python ci/oracle_transformers.py --model DIR --model-id ID \
      --prompts configs/prompts.toml --eval configs/eval.toml --out FILE.json
  (--no-perplexity instead of --eval; --max-new-tokens N, default 32)

The folder must hold `config.json`, `model.safetensors` (a single file; its
SHA-256 is `model.sha256`) and `tokenizer.json`. Nothing is fetched from a hub
(HF_HUB_OFFLINE=1, local_files_only=True).

What exactly is done:

* Model: `transformers.LlamaForCausalLM.from_pretrained(DIR, torch_dtype=torch.float32)`,
  `.eval()`, `torch.set_num_threads(2)`, under `torch.inference_mode()`;
  `model.weights` is "f32". The model's default attention implementation is used.
* model.config: the hyperparameters transformers computes with (see model_config()),
  BOS/EOS as config.json states them; keys it leaves to a default are left out.
* Tokenizer: `tokenizers.Tokenizer.from_file(DIR/tokenizer.json)`,
  `encode(text, add_special_tokens=False)`: added/special tokens that occur in the
  text (e.g. <|im_start|>) are parsed as such, and no post-processor tokens are
  added. `decoding.add_bos` is false, unless DIR/tokenizer_config.json says
  `"add_bos_token": true`; then config.json's `bos_token_id` is prepended and
  add_bos is true.
* Generation: greedy with FULL RECOMPUTE, no KV cache (`use_cache=False`) and no
  sampler: at each step the whole sequence prompt_tokens + tokens[..i] is run in
  one forward pass and the float32 logits of the last position are turned into a
  full log-softmax over the vocabulary in float64; the greedy token is its argmax
  (lowest id on an exact tie); stop after max_new_tokens or when the token is an
  EOS id of config.json's `eos_token_id` (int or list; it stays as the last token).
  top_logprobs[i] = the 10 largest entries, most likely first (ties: lower id first).
* Teacher-forcing check: one forward pass over prompt_tokens + tokens; the argmax
  at every generated position must equal tokens[i] (fails otherwise); the max
  |delta logprob| against the per-step values is printed.
* text: `Tokenizer.decode(tokens, skip_special_tokens=False)` (special tokens
  rendered as their text; a byte-level decoder replaces an incomplete UTF-8
  character with U+FFFD).
* perplexity (unless --no-perplexity), llama.cpp-style like
  tools/perplexity/perplexity.cpp: tokenize the exact slice text from eval.toml
  with the folder tokenizer (add_special_tokens=False, BOS prepended only if
  add_bos); chunk c = tokens[c*ctx:(c+1)*ctx]; if add_bos the chunk's first token
  is replaced by BOS, otherwise kept as is; one forward pass a chunk; positions
  ctx/2 .. ctx-2 are scored against the next token (ctx-1-ctx/2 a chunk); NLL in
  float64, ppl = exp(mean NLL).
* Output: validated (top_logprobs[i][0][0] == tokens[i], logprobs <= 0 and
  sorted descending, exact contract fields), written in the contract's key order,
  atomically (tmp file + rename).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import numpy as np  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

THREADS = 2
TOP_K = 10


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def model_config(rt: "Runtime") -> dict:
    """model.config as transformers computes with it: the loaded LlamaConfig (its
    rope_parameters give rope_theta, and rope_scaling unless the type is "default"), with
    BOS/EOS as this script decodes (config.json's own values: transformers' class defaults
    bos=1/eos=2 are never used here, so they are not stated). Keys config.json leaves to
    a default the runtime does not report are left out."""
    c = rt.model.config
    params = dict(getattr(c, "rope_parameters", None) or {})
    theta = params.pop("rope_theta", getattr(c, "rope_theta", None))
    rope_type = params.pop("rope_type", "default")
    rope_scaling = None if rope_type == "default" and not params else {"type": rope_type, **params}
    eos = rt.config.get("eos_token_id")
    bos = rt.config.get("bos_token_id")
    return oc.config_object({
        "architecture": c.model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_layers": c.num_hidden_layers,
        "num_heads": c.num_attention_heads,
        "num_kv_heads": c.num_key_value_heads,
        "head_dim": getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads,
        "context_length": c.max_position_embeddings,
        "rope_theta": float(theta) if theta is not None else None,
        "rope_scaling": rope_scaling,
        "rms_norm_eps": float(c.rms_norm_eps),
        "tie_word_embeddings": bool(c.tie_word_embeddings),
        "bos_token_id": bos if isinstance(bos, int) else None,
        "eos_token_id": eos if isinstance(eos, int) else None,
    })


class Runtime:
    def __init__(self, folder: Path):
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            if not (folder / name).is_file():
                raise oc.OracleError(f"{folder}: missing {name}")
        torch.set_num_threads(THREADS)
        torch.manual_seed(0)
        self.config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.model = LlamaForCausalLM.from_pretrained(
            str(folder), torch_dtype=torch.float32, local_files_only=True)
        self.model.eval()
        self.tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))

        self.add_bos = False
        tc_path = folder / "tokenizer_config.json"
        if tc_path.is_file():
            tc = json.loads(tc_path.read_text(encoding="utf-8"))
            self.add_bos = tc.get("add_bos_token") is True
        self.bos = self.config.get("bos_token_id")
        if self.add_bos and not isinstance(self.bos, int):
            raise oc.OracleError("tokenizer_config.json adds BOS but config.json has no bos_token_id")
        eos = self.config.get("eos_token_id")
        if eos is None:
            self.eos = set()
        elif isinstance(eos, int):
            self.eos = {eos}
        else:
            self.eos = {int(e) for e in eos}

    @torch.inference_mode()
    def logits(self, ids: list[int]) -> np.ndarray:
        """One forward pass, no cache; float32 logits [len(ids), vocab]."""
        x = torch.tensor([ids], dtype=torch.long)
        out = self.model(input_ids=x, use_cache=False)
        lg = out.logits[0]
        if lg.dtype != torch.float32:
            raise oc.OracleError(f"logits dtype {lg.dtype}, expected float32")
        return lg.numpy().copy()

    def encode(self, text: str) -> list[int]:
        ids = list(self.tok.encode(text, add_special_tokens=False).ids)
        return ([self.bos] if self.add_bos else []) + ids


def generate_case(rt: Runtime, prompt: dict, max_new: int) -> tuple[dict, dict]:
    ptoks = rt.encode(prompt["text"])
    if not ptoks:
        raise oc.OracleError(f"{prompt['id']}: prompt tokenizes to nothing")
    tokens: list[int] = []
    tops: list[list] = []
    step_lps: list[np.ndarray] = []
    while len(tokens) < max_new:
        lp = oc.log_softmax_f64(rt.logits(ptoks + tokens)[-1])
        top = oc.top_k_pairs(lp, TOP_K)
        tok = int(np.argmax(lp))
        assert top[0][0] == tok, (top[0], tok)
        tokens.append(tok)
        tops.append(top)
        step_lps.append(lp)
        if tok in rt.eos:
            break

    full = rt.logits(ptoks + tokens)
    d_top = d_all = 0.0
    for i, tok in enumerate(tokens):
        lp_b = oc.log_softmax_f64(full[len(ptoks) - 1 + i])
        if int(np.argmax(lp_b)) != tok:
            raise oc.OracleError(
                f"{prompt['id']}: teacher-forcing mismatch at generated position {i}: "
                f"step argmax {tok}, one-pass argmax {int(np.argmax(lp_b))}")
        ids = [p[0] for p in tops[i]]
        d_top = max(d_top, float(np.max(np.abs(lp_b[ids] - step_lps[i][ids]))))
        d_all = max(d_all, float(np.max(np.abs(lp_b - step_lps[i]))))

    case = {
        "id": prompt["id"],
        "prompt": prompt["text"],
        "prompt_tokens": ptoks,
        "tokens": tokens,
        "text": rt.tok.decode(tokens, skip_special_tokens=False),
        "top_logprobs": tops,
    }
    return case, {"d_top": d_top, "d_all": d_all}


def perplexity(rt: Runtime, sl: dict) -> dict:
    ctx, chunks = sl["ctx"], sl["chunks"]
    toks = rt.encode(sl["text"])
    if len(toks) < chunks * ctx:
        raise oc.OracleError(
            f"perplexity slice tokenizes to {len(toks)} tokens < chunks*ctx = {chunks * ctx}")
    max_pos = rt.config.get("max_position_embeddings")
    if isinstance(max_pos, int) and ctx > max_pos:
        raise oc.OracleError(f"ctx {ctx} > max_position_embeddings {max_pos}")
    first = ctx // 2
    nll = 0.0
    count = 0
    for c in range(chunks):
        chunk = list(toks[c * ctx:(c + 1) * ctx])
        if rt.add_bos:
            chunk[0] = rt.bos
        logits = rt.logits(chunk)
        for pos in range(first, ctx - 1):
            lp = oc.log_softmax_f64(logits[pos])
            nll -= float(lp[chunk[pos + 1]])
            count += 1
        log(f"  ppl chunk {c + 1}/{chunks}: running ppl {np.exp(nll / count):.4f}")
    return {
        "text_sha256": sl["text_sha256"],
        "ctx": ctx,
        "chunks": chunks,
        "scored": "second-half",
        "ppl": float(np.exp(nll / count)),
        "n_scored": count,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model folder (config.json, model.safetensors, tokenizer.json)")
    ap.add_argument("--model-id", required=True, help="model.id to record")
    ap.add_argument("--prompts", required=True, help="configs/prompts.toml")
    ap.add_argument("--eval", help="configs/eval.toml (perplexity)")
    ap.add_argument("--no-perplexity", action="store_true")
    ap.add_argument("--out", required=True, help="output oracle JSON")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    if args.no_perplexity:
        args.eval = None
    elif not args.eval:
        ap.error("--eval is required unless --no-perplexity")
    if args.max_new_tokens < 1:
        ap.error("--max-new-tokens must be >= 1")

    t0 = time.monotonic()
    folder = Path(args.model)
    try:
        prompts = oc.load_prompts(args.prompts)
        sl = oc.load_eval_slice(args.eval) if args.eval else None
        rt = Runtime(folder)
        model_sha = oc.sha256_file(folder / "model.safetensors")
        log(f"transformers {transformers.__version__} / torch {torch.__version__}; "
            f"add_bos={rt.add_bos}; eos={sorted(rt.eos)}")
        cases = []
        d_top = d_all = 0.0
        for p in prompts:
            case, d = generate_case(rt, p, args.max_new_tokens)
            d_top, d_all = max(d_top, d["d_top"]), max(d_all, d["d_all"])
            cases.append(case)
            log(f"  {p['id']}: {len(case['prompt_tokens'])} prompt tokens -> "
                f"{len(case['tokens'])} tokens {case['text']!r}")
        cfg = model_config(rt)
        doc = {
            "format": oc.FORMAT,
            "model": {
                "id": args.model_id,
                "file": "model.safetensors",
                "sha256": model_sha,
                "weights": "f32",
                "config": cfg,
            },
            "runtime": {
                "name": "transformers",
                "version": f"transformers {transformers.__version__} / torch {torch.__version__}",
                "device": "cpu",
                "threads": THREADS,
            },
            "decoding": {"strategy": "greedy", "max_new_tokens": args.max_new_tokens, "add_bos": rt.add_bos},
            "top_k": TOP_K,
            "cases": cases,
        }
        if sl is not None:
            doc["perplexity"] = perplexity(rt, sl)
        oc.validate_oracle(doc, eos_ids=rt.eos)
        text = oc.render_oracle(doc)
    except (oc.OracleError, OSError) as e:
        oc.die(str(e))
    oc.write_atomic(args.out, text)
    log(f"step vs one-pass max |dlogprob|: top-{TOP_K} ids {d_top:.3g}, full vocab {d_all:.3g}")
    if "perplexity" in doc:
        p = doc["perplexity"]
        log(f"perplexity {p['ppl']:.4f} over {p['n_scored']} tokens")
    log(f"wrote {args.out} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
