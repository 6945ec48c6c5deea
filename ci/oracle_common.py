"""Helpers shared by the oracle generators in ci/ (no third-party imports).

- reading configs/prompts.toml and configs/eval.toml,
- the exact perplexity text slice and its SHA-256,
- log-softmax / top-k in float64,
- validation of a `groundtruth-oracle/1` document (exact keys, exact order,
  top_logprobs[i][0][0] == tokens[i], every logprob <= 0, sorted descending),
- deterministic JSON rendering and atomic writing (tmp file + rename).

The format itself is specified in docs/oracle-format.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import tomllib
from pathlib import Path

FORMAT = "groundtruth-oracle/1"

# Key order of every object, exactly as in the contract. No other keys are allowed.
KEYS_TOP = ["format", "model", "runtime", "decoding", "top_k", "cases", "perplexity"]
KEYS_TOP_REQUIRED = ["format", "model", "runtime", "decoding", "top_k", "cases"]
KEYS_MODEL = ["id", "file", "sha256", "weights", "config"]
KEYS_MODEL_REQUIRED = ["id", "file", "sha256", "weights"]
# model.config: every key optional (a runtime leaves out what it does not know).
KEYS_CONFIG = ["architecture", "vocab_size", "hidden_size", "intermediate_size", "num_layers",
               "num_heads", "num_kv_heads", "head_dim", "context_length", "rope_theta",
               "rope_scaling", "rms_norm_eps", "tie_word_embeddings", "bos_token_id",
               "eos_token_id"]
KEYS_RUNTIME = ["name", "version", "device", "threads"]
KEYS_DECODING = ["strategy", "max_new_tokens", "add_bos"]
KEYS_CASE = ["id", "prompt", "prompt_tokens", "tokens", "text", "top_logprobs"]
KEYS_PPL = ["text_sha256", "ctx", "chunks", "scored", "ppl", "n_scored"]


class OracleError(Exception):
    pass


def die(msg: str) -> "NoReturn":  # type: ignore[name-defined]
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- configs

def load_prompts(path: str | os.PathLike) -> list[dict]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    prompts = doc.get("prompt")
    if not isinstance(prompts, list) or not prompts:
        raise OracleError(f"{path}: no [[prompt]] tables")
    seen = set()
    out = []
    for i, p in enumerate(prompts):
        for key in ("id", "category", "text"):
            if not isinstance(p.get(key), str):
                raise OracleError(f"{path}: prompt[{i}].{key} missing or not a string")
        if p["id"] in seen:
            raise OracleError(f"{path}: duplicate prompt id {p['id']!r}")
        seen.add(p["id"])
        out.append({"id": p["id"], "category": p["category"], "text": p["text"]})
    return out


def load_eval_slice(path: str | os.PathLike) -> dict:
    """Read [perplexity] of configs/eval.toml and return the exact slice text.

    `corpus` is resolved relative to the project root, i.e. the parent of the
    folder that holds eval.toml (configs/..), so "data/x.txt" is the repository's
    data/ folder. Fails loudly if the corpus's SHA-256 is not the pinned
    `corpus_sha256`, or if the byte range is out of the file or cuts a UTF-8
    character.
    """
    path = Path(path)
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    p = doc.get("perplexity")
    if not isinstance(p, dict):
        raise OracleError(f"{path}: no [perplexity] table")
    for key, typ in (("corpus", str), ("corpus_sha256", str), ("start_byte", int), ("len_bytes", int), ("ctx", int), ("chunks", int)):
        if not isinstance(p.get(key), typ) or isinstance(p.get(key), bool):
            raise OracleError(f"{path}: perplexity.{key} missing or not {typ.__name__}")
    corpus = Path(p["corpus"])
    if not corpus.is_absolute():
        corpus = (path.resolve().parent.parent / corpus).resolve()
    data = corpus.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != p["corpus_sha256"]:
        raise OracleError(
            f"{path}: {corpus} has SHA-256 {got}, not the pinned perplexity.corpus_sha256 {p['corpus_sha256']}")
    start, n = p["start_byte"], p["len_bytes"]
    if start < 0 or n <= 0 or start + n > len(data):
        raise OracleError(
            f"{path}: slice [{start}, {start + n}) out of range for {corpus} ({len(data)} bytes)")
    raw = data[start:start + n]
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise OracleError(
            f"{path}: slice [{start}, {start + n}) of {corpus} is not valid UTF-8 "
            f"(cuts a character?): {e}") from e
    ctx, chunks = p["ctx"], p["chunks"]
    if ctx < 4 or ctx % 2 or chunks < 1:
        raise OracleError(f"{path}: perplexity.ctx must be even and >= 4, chunks >= 1")
    return {
        "corpus": str(corpus),
        "bytes": raw,
        "text": text,
        "text_sha256": hashlib.sha256(raw).hexdigest(),
        "ctx": ctx,
        "chunks": chunks,
    }


# ----------------------------------------------------------------------------- math

def log_softmax_f64(logits) -> "np.ndarray":  # noqa: F821
    """Full log-softmax over the vocabulary in float64 (input may be float32)."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    m = x.max()
    z = x - m
    return z - math.log(np.exp(z).sum())


def top_k_pairs(lp, k: int) -> list[list]:
    """The k most likely [id, logprob] pairs, most likely first.

    Ties are broken by the lower token id first (stable sort), which also matches
    numpy's argmax (first maximum), so pairs[0][0] is the greedy token.
    """
    import numpy as np

    order = np.argsort(-lp, kind="stable")[:k]
    out = []
    for t in order:
        v = float(lp[t])
        if v > 0.0:  # log_softmax of the max is exactly 0 at most; guard rounding
            v = 0.0
        if v == 0.0:
            v = 0.0  # normalise -0.0
        out.append([int(t), v])
    return out


# ----------------------------------------------------------------------------- validation

def _check_keys(obj, keys, where, required=None):
    if not isinstance(obj, dict):
        raise OracleError(f"{where}: not an object")
    required = keys if required is None else required
    extra = [k for k in obj if k not in keys]
    if extra:
        raise OracleError(f"{where}: unknown field(s) {extra}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise OracleError(f"{where}: missing field(s) {missing}")
    order = [k for k in keys if k in obj]
    if list(obj.keys()) != order:
        raise OracleError(f"{where}: keys out of contract order: {list(obj.keys())}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def config_object(values: dict) -> dict:
    """model.config in contract order, keys whose value the runtime did not state
    (None) left out. rope_scaling is special: None there means "no scaling" and is
    written as null; pass the string "absent" to leave it out."""
    out = {}
    for k in KEYS_CONFIG:
        v = values.get(k)
        if k == "rope_scaling":
            if v != "absent":
                out[k] = v
        elif v is not None:
            out[k] = v
    extra = [k for k in values if k not in KEYS_CONFIG]
    if extra:
        raise OracleError(f"model.config: unknown key(s) {extra}")
    validate_config(out)
    return out


def validate_config(cfg) -> None:
    _check_keys(cfg, KEYS_CONFIG, "model.config", [])
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads",
              "num_kv_heads", "head_dim", "context_length"):
        if k in cfg and (not _is_int(cfg[k]) or cfg[k] < 1):
            raise OracleError(f"model.config.{k}: not a positive integer")
    for k in ("bos_token_id", "eos_token_id"):
        if k in cfg and (not _is_int(cfg[k]) or cfg[k] < 0):
            raise OracleError(f"model.config.{k}: not a token id")
    for k in ("rope_theta", "rms_norm_eps"):
        if k in cfg and (not isinstance(cfg[k], float) or not math.isfinite(cfg[k]) or cfg[k] <= 0):
            raise OracleError(f"model.config.{k}: not a positive finite float")
    if "architecture" in cfg and (not isinstance(cfg["architecture"], str) or not cfg["architecture"]):
        raise OracleError("model.config.architecture: not a non-empty string")
    if "tie_word_embeddings" in cfg and not isinstance(cfg["tie_word_embeddings"], bool):
        raise OracleError("model.config.tie_word_embeddings: not a bool")
    if "rope_scaling" in cfg and cfg["rope_scaling"] is not None and not isinstance(cfg["rope_scaling"], dict):
        raise OracleError("model.config.rope_scaling: neither null nor an object")


def validate_oracle(doc: dict, eos_ids: set[int] | None = None) -> None:
    """Raise OracleError unless `doc` is a well-formed groundtruth-oracle/1 document."""
    _check_keys(doc, KEYS_TOP, "oracle", KEYS_TOP_REQUIRED)
    if doc["format"] != FORMAT:
        raise OracleError(f"format: expected {FORMAT!r}")
    _check_keys(doc["model"], KEYS_MODEL, "model", KEYS_MODEL_REQUIRED)
    for k in KEYS_MODEL_REQUIRED:
        if not isinstance(doc["model"][k], str) or not doc["model"][k]:
            raise OracleError(f"model.{k}: not a non-empty string")
    if "config" in doc["model"]:
        validate_config(doc["model"]["config"])
        if "eos_token_id" in doc["model"]["config"]:
            eos_ids = set(eos_ids or ()) | {doc["model"]["config"]["eos_token_id"]}
    sha = doc["model"]["sha256"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise OracleError("model.sha256: not 64 lowercase hex digits")
    _check_keys(doc["runtime"], KEYS_RUNTIME, "runtime")
    for k in ("name", "version", "device"):
        if not isinstance(doc["runtime"][k], str):
            raise OracleError(f"runtime.{k}: not a string")
    if not _is_int(doc["runtime"]["threads"]) or doc["runtime"]["threads"] < 1:
        raise OracleError("runtime.threads: not a positive integer")
    dec = doc["decoding"]
    _check_keys(dec, KEYS_DECODING, "decoding")
    if dec["strategy"] != "greedy":
        raise OracleError("decoding.strategy: must be 'greedy'")
    if not _is_int(dec["max_new_tokens"]) or dec["max_new_tokens"] < 1:
        raise OracleError("decoding.max_new_tokens: not a positive integer")
    if not isinstance(dec["add_bos"], bool):
        raise OracleError("decoding.add_bos: not a bool")
    top_k = doc["top_k"]
    if not _is_int(top_k) or top_k < 1:
        raise OracleError("top_k: not a positive integer")
    if not isinstance(doc["cases"], list) or not doc["cases"]:
        raise OracleError("cases: not a non-empty array")
    ids = set()
    for ci, case in enumerate(doc["cases"]):
        w = f"cases[{ci}]"
        _check_keys(case, KEYS_CASE, w)
        if not isinstance(case["id"], str) or case["id"] in ids:
            raise OracleError(f"{w}.id: not a string or duplicate")
        ids.add(case["id"])
        w = f"cases[{ci}] ({case['id']})"
        if not isinstance(case["prompt"], str) or not isinstance(case["text"], str):
            raise OracleError(f"{w}: prompt/text not strings")
        for k in ("prompt_tokens", "tokens"):
            if not isinstance(case[k], list) or not all(_is_int(t) and t >= 0 for t in case[k]):
                raise OracleError(f"{w}.{k}: not an array of token ids")
        if not case["prompt_tokens"]:
            raise OracleError(f"{w}.prompt_tokens: empty")
        toks, tlp = case["tokens"], case["top_logprobs"]
        if not toks:
            raise OracleError(f"{w}.tokens: empty")
        if len(toks) > dec["max_new_tokens"]:
            raise OracleError(f"{w}.tokens: longer than max_new_tokens")
        if eos_ids is not None:
            for i, t in enumerate(toks[:-1]):
                if t in eos_ids:
                    raise OracleError(f"{w}.tokens[{i}]: EOS/EOG before the last token")
            if len(toks) < dec["max_new_tokens"] and toks[-1] not in eos_ids:
                raise OracleError(f"{w}.tokens: shorter than max_new_tokens without EOS last")
        if not isinstance(tlp, list) or len(tlp) != len(toks):
            raise OracleError(f"{w}.top_logprobs: need one entry per generated token")
        for i, entry in enumerate(tlp):
            we = f"{w}.top_logprobs[{i}]"
            if not isinstance(entry, list) or len(entry) != top_k:
                raise OracleError(f"{we}: not an array of top_k={top_k} pairs")
            prev = 0.0
            seen = set()
            for j, pair in enumerate(entry):
                if (not isinstance(pair, list) or len(pair) != 2 or not _is_int(pair[0])
                        or isinstance(pair[1], bool) or not isinstance(pair[1], (int, float))):
                    raise OracleError(f"{we}[{j}]: not an [id, logprob] pair")
                tid, lp = pair
                if not math.isfinite(lp) or lp > 0.0:
                    raise OracleError(f"{we}[{j}]: logprob {lp} not finite and <= 0")
                if lp > prev:
                    raise OracleError(f"{we}[{j}]: logprobs not sorted descending")
                if tid in seen:
                    raise OracleError(f"{we}[{j}]: duplicate token id {tid}")
                seen.add(tid)
                prev = lp
            if entry[0][0] != toks[i]:
                raise OracleError(f"{we}[0][0] = {entry[0][0]} != tokens[{i}] = {toks[i]}")
            mass = sum(math.exp(p[1]) for p in entry)
            if mass > 1.0 + 1e-9:
                raise OracleError(f"{we}: top-k probability mass {mass} > 1")
    if "perplexity" in doc:
        p = doc["perplexity"]
        _check_keys(p, KEYS_PPL, "perplexity")
        if not isinstance(p["text_sha256"], str) or len(p["text_sha256"]) != 64:
            raise OracleError("perplexity.text_sha256: not a SHA-256 hex digest")
        for k in ("ctx", "chunks", "n_scored"):
            if not _is_int(p[k]) or p[k] < 1:
                raise OracleError(f"perplexity.{k}: not a positive integer")
        if p["scored"] != "second-half":
            raise OracleError("perplexity.scored: must be 'second-half'")
        if not isinstance(p["ppl"], float) or not math.isfinite(p["ppl"]) or p["ppl"] < 1.0:
            raise OracleError("perplexity.ppl: not a finite number >= 1")
        if p["n_scored"] != p["chunks"] * (p["ctx"] - 1 - p["ctx"] // 2):
            raise OracleError("perplexity.n_scored: != chunks * (ctx - 1 - ctx/2)")


# ----------------------------------------------------------------------------- output

def _inline_ok(v, depth=0) -> bool:
    """Arrays with no objects and nesting depth <= 2 are written on one line."""
    if isinstance(v, dict):
        return False
    if isinstance(v, list):
        if depth >= 2:
            return all(not isinstance(x, (list, dict)) for x in v)
        return all(_inline_ok(x, depth + 1) for x in v)
    return True


def _render(v, indent: int) -> str:
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f'{pad}  {json.dumps(k, ensure_ascii=False)}: {_render(x, indent + 1)}' for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list):
        if _inline_ok(v):
            return json.dumps(v, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)
        items = [f"{pad}  {_render(x, indent + 1)}" for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(v, ensure_ascii=False, allow_nan=False)


def render_oracle(doc: dict) -> str:
    """Deterministic JSON: contract key order, 2-space indent, token arrays and each
    top_logprobs position on one line, UTF-8 (not \\u-escaped), trailing newline.
    Floats are Python's shortest round-trip repr of the float64 value."""
    text = _render(doc, 0) + "\n"
    if json.loads(text) != doc:  # the rendering must round-trip exactly
        raise OracleError("internal: rendered JSON does not round-trip")
    return text


def write_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def decode_text(raw: bytes) -> str:
    """Continuation bytes -> str. A continuation cut at max_new_tokens may end inside
    a UTF-8 character: invalid bytes become U+FFFD (like Rust's from_utf8_lossy)."""
    return raw.decode("utf-8", errors="replace")
