#!/usr/bin/env python3
"""Generate the reference-quantizer fixtures in tests/fixtures/quant-ref/ with the PyPI
`gguf` package (llama.cpp's gguf-py), whose `gguf.quants` module is a numpy port of
ggml's reference quantizers (`quantize_row_*_ref`) for Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0.

Usage (a venv outside the repository):

  python3 -m venv /work/venv-gguf && /work/venv-gguf/bin/pip install gguf numpy
  target/release/groundtruth materialize --model tiny-seeded --out /tmp/tiny-seeded
  /work/venv-gguf/bin/python ci/gen_quant_fixtures.py \
      --tiny-folder /tmp/tiny-seeded \
      --smollm2 ~/.cache/groundtruth/models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --out tests/fixtures/quant-ref

Every set is a flat float32 array (a whole number of 32-value blocks, each quantized on
its own, so rows of any length can be concatenated) plus, per type, the reference
quantizer's bytes for it. Sets:

* llama-cpp-cos: test-quantize-fns' data, 0.1 + 2*cos(i) for i < 4096.
* adversarial: blocks built to separate implementations: zeros, constants, +-max of
  both signs (Q4_0/Q5_0's asymmetric grid clamps), exact .5 ties for each grid, a spike,
  values whose f16 scale is subnormal, underflows to 0 or overflows to inf, and seeded
  normal and log-uniform blocks.
* tiny-seeded: rows of the harness's seeded model, read from the safetensors that
  `groundtruth materialize` writes (HF names, f32).
* smollm2-135m: rows of SmolLM2-135M-Instruct, dequantized from its Q4_1/Q8_0 GGUF by
  gguf.quants (so the Rust side also checks that candle dequantizes to the same floats).
  Only tensors whose rows llama.cpp does not permute (not attn_q/attn_k) are sampled.

manifest.json records the generator versions, the rows each model set was taken from and
the SHA-256 of every file. Deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf.quants import quantize, dequantize
    from gguf import GGMLQuantizationType as QT
except ImportError:  # pragma: no cover
    sys.exit("error: the PyPI package `gguf` is not installed (pip install gguf numpy)")

TYPES = {"q4_0": QT.Q4_0, "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1, "q8_0": QT.Q8_0}
BLOCK = 32

# (HF tensor name, rows) sampled from each model.
TINY_ROWS = [
    ("model.embed_tokens.weight", [0, 1, 65, 255]),
    ("model.layers.0.self_attn.q_proj.weight", [0, 1, 2, 3]),
    ("model.layers.1.mlp.down_proj.weight", [0, 63]),
    ("model.layers.1.mlp.gate_proj.weight", [7]),
]
SMOLLM2_ROWS = [
    ("model.embed_tokens.weight", [0, 504, 49151]),
    ("model.layers.0.mlp.down_proj.weight", [0]),
    ("model.layers.29.self_attn.v_proj.weight", [0, 191]),
    ("model.layers.15.mlp.up_proj.weight", [3]),
]
HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight",
    "mlp.down_proj": "ffn_down",
    "mlp.up_proj": "ffn_up",
    "mlp.gate_proj": "ffn_gate",
    "self_attn.v_proj": "attn_v",
}


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def gguf_name(hf: str) -> str:
    if hf in HF_TO_GGUF:
        return HF_TO_GGUF[hf]
    _, _, layer, *rest = hf.split(".")
    part = ".".join(rest[:-1])
    return f"blk.{layer}.{HF_TO_GGUF[part]}.weight"


def cos_set() -> np.ndarray:
    i = np.arange(4096, dtype=np.float32)
    return (np.float32(0.1) + np.float32(2.0) * np.cos(i)).astype(np.float32)


def adversarial_set() -> np.ndarray:
    rng = np.random.default_rng(20261122)
    k = np.arange(BLOCK, dtype=np.float32)
    blocks = [
        np.zeros(BLOCK),
        np.ones(BLOCK),
        -np.ones(BLOCK),
        np.where(k % 2 == 0, 1.0, -1.0),            # +max first: Q4_0 clamps the -max side
        np.where(k % 2 == 0, -1.0, 1.0),            # -max first
        np.concatenate([[127.0], (k[1:] - 16) + 0.5]),  # Q8_0: d = 1, every x*id is a .5 tie
        np.concatenate([[-8.0], (k[1:] % 16) - 8 + 0.5]),  # Q4_0: d = 1, x*id + 8.5 on integers
        np.concatenate([[-16.0], (k[1:] % 32) - 16 + 0.5]),  # Q5_0: d = 1
        np.concatenate([[0.0, 15.0], (k[2:] % 15) + 0.5]),  # Q4_1: min 0, d = 1, .5 ties
        np.concatenate([[0.0, 31.0], (k[2:] % 31) + 0.5]),  # Q5_1: min 0, d = 1
        np.concatenate([[1000.0], 0.001 * k[1:]]),  # one spike
        1e-6 * (k - 15.5),                           # f16 scale subnormal
        1e-9 * (k - 15.5),                           # f16 scale underflows to 0
        6e4 * np.cos(k),                             # near the f16 range
        1e6 * np.cos(k),                             # Q4_x/Q5_x scale overflows f16 to inf
        np.cos(k) + 100.0,                           # large offset: Q4_1/Q5_1's min matters
    ]
    for _ in range(16):
        blocks.append(rng.standard_normal(BLOCK))
    for _ in range(8):
        blocks.append(rng.choice([-1.0, 1.0], BLOCK) * 10.0 ** rng.uniform(-3, 3, BLOCK))
    return np.concatenate(blocks).astype(np.float32)


def safetensors_rows(folder: Path, spec) -> np.ndarray:
    raw = (folder / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = []
    for name, rows in spec:
        h = header[name]
        assert h["dtype"] == "F32", (name, h["dtype"])
        a, b = h["data_offsets"]
        t = np.frombuffer(data[a:b], dtype="<f4").reshape(h["shape"])
        out.extend(t[r] for r in rows)
    return np.concatenate(out).astype(np.float32)


def gguf_rows(path: Path, spec) -> np.ndarray:
    reader = gguf.GGUFReader(str(path))
    by_name = {t.name: t for t in reader.tensors}
    out = []
    for hf, rows in spec:
        t = by_name[gguf_name(hf)]
        values = dequantize(t.data, t.tensor_type)  # (rows, cols) float32
        out.extend(np.asarray(values[r], dtype=np.float32) for r in rows)
    return np.concatenate(out).astype(np.float32)


def write_set(out: Path, name: str, model, source: str, rows, values: np.ndarray) -> dict:
    assert values.dtype == np.float32 and values.size % BLOCK == 0, (name, values.size)
    inp = values.astype("<f4").tobytes()
    (out / f"{name}.f32").write_bytes(inp)
    outputs = {}
    for tname, qt in TYPES.items():
        q = quantize(values.reshape(-1, BLOCK), qt).tobytes()
        (out / f"{name}.{tname}").write_bytes(q)
        outputs[tname] = {"file": f"{name}.{tname}", "sha256": sha256(q)}
    return {
        "name": name,
        "model": model,
        "source": source,
        "rows": [{"tensor": t, "rows": r} for t, r in rows],
        "n_values": int(values.size),
        "input": {"file": f"{name}.f32", "sha256": sha256(inp)},
        "outputs": outputs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny-folder", required=True, type=Path, help="`groundtruth materialize --model tiny-seeded` output")
    ap.add_argument("--smollm2", type=Path, help="SmolLM2-135M-Instruct.Q4_1.gguf (optional)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = [
        write_set(args.out, "llama-cpp-cos", None, "test-quantize-fns data: 0.1 + 2*cos(i), i < 4096", [], cos_set()),
        write_set(args.out, "adversarial", None, "blocks built to separate implementations (see ci/gen_quant_fixtures.py)", [], adversarial_set()),
        write_set(args.out, "tiny-seeded", "tiny-seeded", "rows of the seeded model's f32 safetensors", TINY_ROWS, safetensors_rows(args.tiny_folder, TINY_ROWS)),
    ]
    if args.smollm2:
        sets.append(write_set(args.out, "smollm2-135m", "smollm2-135m", "rows of SmolLM2-135M-Instruct.Q4_1.gguf dequantized by gguf.quants", SMOLLM2_ROWS, gguf_rows(args.smollm2, SMOLLM2_ROWS)))
    manifest = {
        "format": "groundtruth-quant-ref/1",
        "generator": {"script": "ci/gen_quant_fixtures.py", "gguf": gguf.__version__ if hasattr(gguf, "__version__") else _pkg_version("gguf"), "numpy": np.__version__},
        "block": BLOCK,
        "sets": sets,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    tmp = args.out / ".manifest.json.tmp"
    tmp.write_text(text)
    os.replace(tmp, args.out / "manifest.json")
    total = sum(s["n_values"] for s in sets) // BLOCK
    print(f"wrote {len(sets)} sets, {total} blocks per type, to {args.out}", file=sys.stderr)
    return 0


def _pkg_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    sys.exit(main())
