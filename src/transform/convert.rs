//! Storage-type conversion of every matrix, with llama.cpp-style fallbacks.

use crate::model::{ModelError, Weight, Weights};
use crate::variant::DType;
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

/// Converts every 2-D tensor (through f32) to `to`; 1-D norm weights stay f32, as in
/// llama.cpp. A matrix whose rows are not a whole number of blocks falls back to Q8_0
/// (32-element blocks) or else F16, and each fallback is reported by name.
pub fn convert(base: &Weights, to: DType) -> Result<(Weights, Vec<String>), ModelError> {
    let target = ggml_dtype(to);
    let mut out = base.clone();
    let mut notes = Vec::new();
    for (name, w) in &base.tensors {
        let shape = w.shape();
        if shape.len() != 2 {
            continue;
        }
        let f32 = w.to_f32_tensor(&Device::Cpu)?;
        let cols = shape[1];
        let chosen = [target, GgmlDType::Q8_0, GgmlDType::F16]
            .into_iter()
            .find(|t| cols % t.block_size() == 0)
            .unwrap_or(GgmlDType::F16);
        if chosen != target {
            notes.push(format!("{name}: {cols} columns are not a multiple of {}'s block of {}, stored as {chosen:?}", to.name(), target.block_size()));
        }
        let converted = match chosen {
            GgmlDType::F16 => Weight::Float(f32.to_dtype(CDType::F16)?),
            GgmlDType::BF16 => Weight::Float(f32.to_dtype(CDType::BF16)?),
            q => Weight::Quant(Arc::new(QTensor::quantize(&f32, q)?)),
        };
        out.tensors.insert(name.clone(), converted);
    }
    Ok((out, notes))
}
