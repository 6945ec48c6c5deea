//! Export to GGUF: the file llama.cpp loads, with complete llama metadata, the tokenizer,
//! and Q/K rows permuted for its RoPE layout ([`crate::model::save_gguf`] does that). A
//! model read from a GGUF keeps its file's metadata order and tensor order.
//!
//! Bytes are a function of the weights and the metadata alone (no timestamps, keys in a
//! fixed order), so an oracle made by llama.cpp from an exported file can name the file
//! by its SHA-256 and the harness can rebuild exactly that file.

use crate::model::{
    ggml_type_code, ggml_type_name, save_gguf_in_order, ModelError, Weight, Weights,
};
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use std::collections::BTreeMap;
use std::path::Path;

/// The GGUF quantization format version llama.cpp writes for block-quantized files.
pub const GGML_QUANTIZATION_VERSION: u32 = 2;

/// llama.cpp's `llama_ftype` for a declared storage type. K-quants are written "pure"
/// (every matrix the same type), which llama.cpp names by its `_S` recipe.
pub fn llama_ftype(t: GgmlDType) -> Option<u32> {
    Some(match t {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q8_0 => 7,
        GgmlDType::Q5_0 => 8,
        GgmlDType::Q5_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 14,
        GgmlDType::Q5K => 16,
        GgmlDType::Q6K => 18,
        GgmlDType::BF16 => 32,
        GgmlDType::Q8_1 | GgmlDType::Q8K => return None,
    })
}

/// The storage type a `llama_ftype` declares for the model's matrices (the inverse of
/// [`llama_ftype`], plus the K-quant mixes llama.cpp writes by default, by their main type).
pub fn declared_type(ftype: u32) -> Option<GgmlDType> {
    Some(match ftype {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        7 => GgmlDType::Q8_0,
        8 => GgmlDType::Q5_0,
        9 => GgmlDType::Q5_1,
        10 | 21 => GgmlDType::Q2K,
        11..=13 => GgmlDType::Q3K,
        14 | 15 => GgmlDType::Q4K,
        16 | 17 => GgmlDType::Q5K,
        18 => GgmlDType::Q6K,
        32 => GgmlDType::BF16,
        _ => return None,
    })
}

/// The storage type of the matrices holding the most elements (`f32` when all are float
/// f32), which is what a file without a requested type declares.
pub fn predominant_type(w: &Weights) -> GgmlDType {
    let mut by_type: BTreeMap<u32, (GgmlDType, usize)> = BTreeMap::new();
    for t in w.tensors.values().filter(|t| t.shape().len() == 2) {
        let ty = weight_type(t);
        by_type.entry(ggml_type_code(ty)).or_insert((ty, 0)).1 += t.elem_count();
    }
    by_type
        .into_values()
        .max_by_key(|(_, n)| *n)
        .map(|(t, _)| t)
        .unwrap_or(GgmlDType::F32)
}

/// The GGML type a weight is (or would be) stored as.
pub fn weight_type(w: &Weight) -> GgmlDType {
    match w {
        Weight::Quant(q) => q.dtype(),
        Weight::Float(t) => match t.dtype() {
            candle_core::DType::F16 => GgmlDType::F16,
            candle_core::DType::BF16 => GgmlDType::BF16,
            _ => GgmlDType::F32,
        },
    }
}

/// Keys an export computes itself; a source file's values for them are dropped.
const RECOMPUTED: [&str; 2] = ["general.file_type", "general.quantization_version"];

/// The metadata of an exported file besides what [`crate::model::save_gguf`] derives from the config:
/// `general.name` (unless the source has one), the source's other keys (tokenizer,
/// provenance) in their order, then `general.file_type` for `declared` (or the
/// predominant type) and `general.quantization_version` when any tensor is block-quantized.
pub fn export_metadata(
    name: &str,
    weights: &Weights,
    source: &[(String, Value)],
    declared: Option<GgmlDType>,
) -> Result<Vec<(String, Value)>, ModelError> {
    let declared = declared.unwrap_or_else(|| predominant_type(weights));
    let ftype = llama_ftype(declared).ok_or_else(|| ModelError::Unsupported {
        what: format!("a file declared as {}", ggml_type_name(declared)),
    })?;
    let mut out: Vec<(String, Value)> = Vec::with_capacity(source.len() + 3);
    if !source.iter().any(|(k, _)| k == "general.name") {
        out.push(("general.name".into(), Value::String(name.into())));
    }
    out.extend(
        source
            .iter()
            .filter(|(k, _)| !RECOMPUTED.contains(&k.as_str()))
            .cloned(),
    );
    out.push(("general.file_type".into(), Value::U32(ftype)));
    if weights.tensors.values().any(|w| matches!(w, Weight::Quant(q) if !matches!(q.dtype(), GgmlDType::F16 | GgmlDType::BF16 | GgmlDType::F32))) {
        out.push(("general.quantization_version".into(), Value::U32(GGML_QUANTIZATION_VERSION)));
    }
    Ok(out)
}

/// What an export carries over from the model's source besides the weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct Source<'a> {
    /// Metadata besides the config-derived keys (tokenizer, provenance), in file order.
    pub metadata: &'a [(String, Value)],
    /// The source file's tensor order (llama.cpp names), kept as `llama-quantize` keeps it.
    pub tensor_order: Option<&'a [String]>,
}

/// Writes `weights` as a llama GGUF at `path` (atomically) with [`export_metadata`].
///
/// Special token ids the source declares and the config lacks (a byte vocabulary's EOS)
/// are written as config keys, where reading the file back puts them: so a file the
/// harness wrote survives reimport byte for byte.
pub fn export_gguf(
    path: &Path,
    name: &str,
    weights: &Weights,
    source: Source,
    declared: Option<GgmlDType>,
) -> Result<(), ModelError> {
    let meta = export_metadata(name, weights, source.metadata, declared)?;
    let id = |key: &str| match source.metadata.iter().find(|(k, _)| k == key) {
        Some((_, Value::U32(v))) => Some(*v),
        _ => None,
    };
    let mut w = std::borrow::Cow::Borrowed(weights);
    if w.config.bos_token_id.is_none() && id("tokenizer.ggml.bos_token_id").is_some() {
        w.to_mut().config.bos_token_id = id("tokenizer.ggml.bos_token_id");
    }
    if w.config.eos_token_id.is_none() && id("tokenizer.ggml.eos_token_id").is_some() {
        w.to_mut().config.eos_token_id = id("tokenizer.ggml.eos_token_id");
    }
    save_gguf_in_order(path, &w, &meta, source.tensor_order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftype_round_trips_for_every_writable_type() {
        for t in crate::model::stored_ggml_types() {
            let f = llama_ftype(t).unwrap();
            assert_eq!(declared_type(f), Some(t), "{t:?}");
        }
        assert_eq!(
            declared_type(15),
            Some(GgmlDType::Q4K),
            "Q4_K_M is a Q4_K file"
        );
        assert_eq!(
            declared_type(4),
            None,
            "MOSTLY_Q4_1_SOME_F16 was removed from llama.cpp"
        );
    }
}
