//! Storage-type conversion of every matrix, with llama.cpp's fallbacks.
//!
//! Like `llama-quantize --pure`: every 2-D tensor (embedding included) gets the target
//! type and 1-D norm weights stay f32; there is no per-tensor mix (llama.cpp's default
//! recipes put e.g. `output.weight` in Q6_K). A matrix whose rows are not a whole number
//! of the target's blocks gets llama.cpp's fallback type instead, and each fallback is
//! reported.

use crate::model::{ggml_type_name, ModelError, Weight, Weights};
use crate::variant::{DType, Variant};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType as CDType, Device};
use std::sync::Arc;

/// The candle type of a variant dtype.
pub fn ggml_dtype(d: DType) -> GgmlDType {
    match d {
        DType::F16 => GgmlDType::F16,
        DType::Bf16 => GgmlDType::BF16,
        DType::Q8_0 => GgmlDType::Q8_0,
        DType::Q5_1 => GgmlDType::Q5_1,
        DType::Q5_0 => GgmlDType::Q5_0,
        DType::Q4_1 => GgmlDType::Q4_1,
        DType::Q4_0 => GgmlDType::Q4_0,
        DType::Q6K => GgmlDType::Q6K,
        DType::Q5K => GgmlDType::Q5K,
        DType::Q4K => GgmlDType::Q4K,
        DType::Q3K => GgmlDType::Q3K,
        DType::Q2K => GgmlDType::Q2K,
    }
}

/// Whether `tests/fixtures/quant-ref` holds reference bytes for the variant's type: the
/// types the PyPI `gguf` package (llama.cpp's `gguf-py`) can quantize.
pub fn has_reference_quantizer(v: &Variant) -> bool {
    matches!(
        v,
        Variant::Convert(DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0)
    )
}

/// The type llama.cpp uses when a row does not divide into `t`'s blocks
/// (`llama_tensor_get_type`, `convert_incompatible_tensor`). llama.cpp sends Q2_K and
/// Q3_K to IQ4_NL, which candle cannot write; Q4_0 has the same block (32) and size
/// (4.5 bits per weight), so it stands in. Types with 32-element blocks have no fallback
/// in llama.cpp (it refuses the tensor); F16 is the last resort here, as it is there for
/// a fallback that does not fit either.
pub fn llama_cpp_fallback(t: GgmlDType) -> GgmlDType {
    match t {
        GgmlDType::Q2K | GgmlDType::Q3K => GgmlDType::Q4_0,
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K => GgmlDType::Q8_0,
        _ => GgmlDType::F16,
    }
}

/// The type a row of `cols` elements is stored in when `target` is asked for.
pub fn storage_type(target: GgmlDType, cols: usize) -> GgmlDType {
    if cols.is_multiple_of(target.block_size()) {
        return target;
    }
    let fb = llama_cpp_fallback(target);
    if cols.is_multiple_of(fb.block_size()) {
        fb
    } else {
        GgmlDType::F16
    }
}

/// One matrix that could not take the requested type.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// HF tensor name.
    pub tensor: String,
    /// Row length.
    pub cols: usize,
    /// The type asked for.
    pub wanted: GgmlDType,
    /// The type stored.
    pub stored: GgmlDType,
}

/// Fallbacks grouped by row length and types (`"64 columns: q4_k → q5_0"`), each with the
/// tensors it covers, in first-seen order.
pub fn group_fallbacks(fallbacks: &[Fallback]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for f in fallbacks {
        let key = format!(
            "{} columns: {} → {}",
            f.cols,
            ggml_type_name(f.wanted),
            ggml_type_name(f.stored)
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(f.tensor.clone()),
            None => groups.push((key, vec![f.tensor.clone()])),
        }
    }
    groups
}

/// One line per group of [`group_fallbacks`], naming at most three tensors.
pub fn describe_fallbacks(fallbacks: &[Fallback]) -> Vec<String> {
    group_fallbacks(fallbacks)
        .into_iter()
        .map(|(key, names)| {
            let more = if names.len() > 3 { ", …" } else { "" };
            format!("{} matrices of {key} (llama.cpp's fallback: rows are not whole blocks), e.g. {}{more}", names.len(), names[..names.len().min(3)].join(", "))
        })
        .collect()
}

/// Converts every 2-D tensor (through f32) to `to`, with [`storage_type`]'s fallbacks.
pub fn convert(base: &Weights, to: DType) -> Result<(Weights, Vec<Fallback>), ModelError> {
    let target = ggml_dtype(to);
    let mut out = base.clone();
    let mut fallbacks = Vec::new();
    for (name, w) in &base.tensors {
        let shape = w.shape();
        if shape.len() != 2 {
            continue;
        }
        let f32 = w.to_f32_tensor(&Device::Cpu)?;
        let cols = shape[1];
        let chosen = storage_type(target, cols);
        if chosen != target {
            fallbacks.push(Fallback {
                tensor: name.clone(),
                cols,
                wanted: target,
                stored: chosen,
            });
        }
        let converted = match chosen {
            GgmlDType::F16 => Weight::Float(f32.to_dtype(CDType::F16)?),
            GgmlDType::BF16 => Weight::Float(f32.to_dtype(CDType::BF16)?),
            q => Weight::Quant(Arc::new(QTensor::quantize(&f32, q)?)),
        };
        out.tensors.insert(name.clone(), converted);
    }
    Ok((out, fallbacks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_follow_llama_cpp() {
        // tiny-seeded's 64-column rows: no K-quant fits, each falls back as llama.cpp does.
        assert_eq!(storage_type(GgmlDType::Q6K, 64), GgmlDType::Q8_0);
        assert_eq!(storage_type(GgmlDType::Q5K, 64), GgmlDType::Q5_1);
        assert_eq!(storage_type(GgmlDType::Q4K, 64), GgmlDType::Q5_0);
        assert_eq!(storage_type(GgmlDType::Q3K, 64), GgmlDType::Q4_0);
        assert_eq!(storage_type(GgmlDType::Q2K, 576), GgmlDType::Q4_0);
        assert_eq!(storage_type(GgmlDType::Q4K, 1536), GgmlDType::Q4K);
        assert_eq!(storage_type(GgmlDType::Q8_0, 48), GgmlDType::F16);
        assert_eq!(storage_type(GgmlDType::Q6K, 48), GgmlDType::F16);
    }
}
