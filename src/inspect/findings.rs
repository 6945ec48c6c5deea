//! The structure checks `structure` claims count: each returns one line per problem, so
//! a claim's statistic is the number of lines and its evidence can quote them.

use super::{Inspection, TensorInfo};
use crate::model::{expected_shapes, ggml_type_name, hf_to_gguf, value_u64, LlamaConfig};
use crate::transform::{declared_type, storage_type};
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;

/// The file's `general.file_type`, if it is an unsigned integer.
pub fn file_type(insp: &Inspection) -> Option<u32> {
    insp.metadata
        .get("general.file_type")
        .and_then(value_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// Architecture metadata that disagrees with `cfg` (a required key missing counts too).
/// Floats are compared as the f32 GGUF stores; token ids are not architecture.
pub fn config_mismatches(insp: &Inspection, cfg: &LlamaConfig) -> Vec<String> {
    let mut out = Vec::new();
    match insp.metadata.get("general.architecture") {
        Some(Value::String(a)) if a == "llama" => {}
        other => out.push(format!(
            "general.architecture is {}, expected \"llama\"",
            other.map(super::render_value).unwrap_or("missing".into())
        )),
    }
    let ints: [(&str, usize, bool); 8] = [
        ("llama.embedding_length", cfg.hidden_size, true),
        ("llama.feed_forward_length", cfg.intermediate_size, true),
        ("llama.block_count", cfg.num_hidden_layers, true),
        ("llama.attention.head_count", cfg.num_attention_heads, true),
        (
            "llama.attention.head_count_kv",
            cfg.num_key_value_heads,
            false,
        ),
        ("llama.context_length", cfg.max_position_embeddings, true),
        ("llama.rope.dimension_count", cfg.head_dim(), false),
        ("llama.vocab_size", cfg.vocab_size, false),
    ];
    for (key, want, required) in ints {
        match insp.metadata.get(key).map(|v| (value_u64(v), v)) {
            None if required => out.push(format!("{key} is missing (config: {want})")),
            None => {}
            Some((Some(n), _)) if n == want as u64 => {}
            Some((_, v)) => out.push(format!(
                "{key} = {}, config says {want}",
                super::render_value(v)
            )),
        }
    }
    let floats = [
        ("llama.rope.freq_base", cfg.rope_theta, 10_000.0),
        (
            "llama.attention.layer_norm_rms_epsilon",
            cfg.rms_norm_eps,
            f64::NAN,
        ),
    ];
    for (key, want, default) in floats {
        let got = match insp.metadata.get(key) {
            Some(Value::F32(x)) => f64::from(*x),
            Some(Value::F64(x)) => *x,
            Some(v) => {
                out.push(format!("{key} = {} is not a float", super::render_value(v)));
                continue;
            }
            None => default,
        };
        if (got as f32).to_bits() != (want as f32).to_bits() {
            out.push(format!("{key} = {got}, config says {want}"));
        }
    }
    if let Some(Value::Array(tokens)) = insp.metadata.get("tokenizer.ggml.tokens") {
        if tokens.len() != cfg.vocab_size {
            out.push(format!(
                "tokenizer.ggml.tokens has {} entries, config's vocabulary is {}",
                tokens.len(),
                cfg.vocab_size
            ));
        }
    }
    out
}

/// llama.cpp's mixed recipes (Q3_K_M/L, Q4_K_M, Q5_K_M, Q2_K_S) may give any K type or
/// Q8_0 to a tensor.
fn is_mix(ftype: u32) -> bool {
    matches!(ftype, 12 | 13 | 15 | 17 | 21)
}

/// Whether a 2-D tensor of `cols` columns may be stored as `t` in a file whose matrices
/// are declared `declared`: the declared type, llama.cpp's fallback for it, or for the
/// embedding and output matrices the higher-precision types llama.cpp's recipes use.
fn allowed(name: &str, t: GgmlDType, cols: usize, declared: GgmlDType, ftype: u32) -> bool {
    use GgmlDType::*;
    t == storage_type(declared, cols)
        || (matches!(name, "token_embd.weight" | "output.weight")
            && matches!(t, Q8_0 | Q6K | F16 | BF16 | F32))
        || (is_mix(ftype) && matches!(t, Q2K | Q3K | Q4K | Q5K | Q6K | Q8_0))
}

/// Tensors missing, extra, misshapen, or of a type the declared quantization level
/// (`general.file_type`, else the predominant matrix type) does not allow; and a declared
/// level other than `want` (the type the variant asked for), when given. 1-D tensors must be f32, as llama.cpp keeps them.
pub fn dtype_mismatches(
    insp: &Inspection,
    cfg: &LlamaConfig,
    want: Option<GgmlDType>,
) -> Vec<String> {
    let mut out = Vec::new();
    // A file that declares nothing cannot contradict itself: its predominant matrix type
    // stands in for the declaration. A declaration llama.cpp does not know is a problem.
    let (ftype, declared) = match file_type(insp) {
        Some(f) => match declared_type(f) {
            Some(d) => (f, d),
            None => {
                return vec![format!(
                    "general.file_type {f} declares no storage type llama.cpp knows"
                )]
            }
        },
        None => {
            let d = predominant(insp);
            (crate::transform::llama_ftype(d).unwrap_or(0), d)
        }
    };
    if let Some(w) = want.filter(|w| *w != declared) {
        out.push(format!(
            "general.file_type {ftype} declares {}, the variant is {}",
            ggml_type_name(declared),
            ggml_type_name(w)
        ));
    }
    let expected: Vec<(String, Vec<usize>)> = expected_shapes(cfg)
        .into_iter()
        .filter_map(|(hf, shape)| hf_to_gguf(&hf).map(|g| (g, shape)))
        .collect();
    let by_name = |n: &str| insp.tensors.iter().find(|t| t.name == n);
    for (name, shape) in &expected {
        let Some(t) = by_name(name) else {
            out.push(format!("{name} is missing"));
            continue;
        };
        if &t.shape != shape {
            out.push(format!(
                "{name} has shape {:?}, config says {shape:?}",
                t.shape
            ));
            continue;
        }
        let Some(ty) = type_of(t) else {
            out.push(format!("{name} has unknown type {}", t.dtype));
            continue;
        };
        let ok = match shape.len() {
            1 => ty == GgmlDType::F32,
            _ => allowed(name, ty, shape[shape.len() - 1], declared, ftype),
        };
        if !ok {
            out.push(format!(
                "{name} is {} in a file declared {} (file_type {ftype})",
                t.dtype,
                ggml_type_name(declared)
            ));
        }
    }
    out.extend(
        insp.tensors
            .iter()
            .filter(|t| !expected.iter().any(|(n, _)| *n == t.name))
            .map(|t| format!("{} is not a tensor of this config", t.name)),
    );
    out
}

/// The type holding the most elements among 2-D tensors.
fn predominant(insp: &Inspection) -> GgmlDType {
    let mut by: Vec<(GgmlDType, usize)> = Vec::new();
    for t in insp.tensors.iter().filter(|t| t.shape.len() == 2) {
        if let Some(ty) = type_of(t) {
            match by.iter_mut().find(|(x, _)| *x == ty) {
                Some((_, n)) => *n += t.stats.elems,
                None => by.push((ty, t.stats.elems)),
            }
        }
    }
    by.into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(t, _)| t)
        .unwrap_or(GgmlDType::F32)
}

fn type_of(t: &TensorInfo) -> Option<GgmlDType> {
    use GgmlDType::*;
    [
        F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2K, Q3K, Q4K, Q5K, Q6K, Q8K,
    ]
    .into_iter()
    .find(|d| ggml_type_name(*d) == t.dtype)
}

/// Tensors that are all zero or hold NaN or infinity.
pub fn bad_tensors(insp: &Inspection) -> Vec<String> {
    insp.tensors
        .iter()
        .filter_map(|t| t.stats.defect().map(|d| format!("{}: {d}", t.name)))
        .collect()
}

/// Differences in tensor names, order and shapes between two files of one model (which
/// may differ only in storage types).
pub fn layout_mismatches(parent: &Inspection, variant: &Inspection) -> Vec<String> {
    let mut out = Vec::new();
    if parent.tensor_count != variant.tensor_count {
        out.push(format!(
            "{} tensors in the parent's file, {} in the variant's",
            parent.tensor_count, variant.tensor_count
        ));
    }
    for (i, (a, b)) in parent.tensors.iter().zip(&variant.tensors).enumerate() {
        if a.name != b.name || a.shape != b.shape {
            out.push(format!(
                "tensor {i}: '{}' {:?} in the parent's file, '{}' {:?} in the variant's",
                a.name, a.shape, b.name, b.shape
            ));
        }
    }
    out
}

/// Tensors whose name, type, shape or stored bytes (by SHA-256) differ between two files,
/// matched by name; a tensor only one file has counts once.
pub fn tensor_mismatches(a: &Inspection, b: &Inspection) -> Vec<String> {
    use std::collections::BTreeMap;
    let index = |i: &Inspection| {
        i.tensors
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    (t.dtype.clone(), t.shape.clone(), t.sha256.clone()),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let (x, y) = (index(a), index(b));
    let mut names: Vec<&String> = x.keys().chain(y.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| match (x.get(n), y.get(n)) {
            (Some(p), Some(q)) if p == q => None,
            (Some(p), Some(q)) if p.0 != q.0 || p.1 != q.1 => Some(format!(
                "{n}: {} {:?} first, {} {:?} after",
                p.0, p.1, q.0, q.1
            )),
            (Some(_), Some(_)) => Some(format!("{n}: stored bytes differ")),
            (Some(_), None) => Some(format!("{n}: missing after the round trip")),
            (None, _) => Some(format!("{n}: not in the first file")),
        })
        .collect()
}
