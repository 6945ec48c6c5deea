//! How each storage type lays out a block in memory and in files ([`BlockLayout`]): the
//! fields a flip can land in, with their role and encoding, as ggml defines them.
//!
//! Offsets follow ggml's `block_*` structs (candle's `k_quants.rs` mirrors them):
//! `Q4_0 = {f16 d; u8 qs[16]}` and so on. A test checks every layout's size against
//! candle's `type_size`, so a misremembered field cannot go unnoticed.

use super::bits::{FieldFormat, FloatFormat};
use candle_core::quantized::GgmlDType;
use serde::Serialize;

/// What a field does in its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A float weight itself (f32, f16, bf16 tensors).
    Value,
    /// A quantized block's f16 scale `d`.
    Scale,
    /// A quantized block's f16 minimum `m` (Q4_1, Q5_1) or `dmin` (K-quants).
    Min,
    /// A K-quant's packed 4- or 6-bit sub-block scales and mins (or Q6_K's i8 scales).
    SubScale,
    /// Packed quantized values (`qs`, the high bits `qh`/`hmask`, Q6_K's `ql`).
    Packed,
}

/// A run of `count` consecutive fields of one kind inside a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRun {
    /// ggml's field name (`d`, `m`, `dmin`, `qs`, `qh`, `scales`; `value` for floats).
    pub name: &'static str,
    /// Its role.
    pub role: Role,
    /// Its encoding.
    pub format: FieldFormat,
    /// Byte offset in the block.
    pub offset: usize,
    /// Fields in the run (bytes for packed runs).
    pub count: usize,
}

impl FieldRun {
    /// Bytes one field takes.
    pub fn field_bytes(&self) -> usize {
        self.format.width() as usize / 8
    }
}

/// One storage type's block: elements it holds, bytes it takes, and its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLayout {
    /// Weights per block (1 for float types).
    pub elems: usize,
    /// Bytes per block.
    pub bytes: usize,
    /// The fields, in memory order.
    pub fields: &'static [FieldRun],
}

const fn run(
    name: &'static str,
    role: Role,
    format: FieldFormat,
    offset: usize,
    count: usize,
) -> FieldRun {
    FieldRun {
        name,
        role,
        format,
        offset,
        count,
    }
}

const F16: FieldFormat = FieldFormat::Float(FloatFormat::F16);
const B: FieldFormat = FieldFormat::Byte;

const F32_FIELDS: [FieldRun; 1] = [run(
    "value",
    Role::Value,
    FieldFormat::Float(FloatFormat::F32),
    0,
    1,
)];
const F16_FIELDS: [FieldRun; 1] = [run("value", Role::Value, F16, 0, 1)];
const BF16_FIELDS: [FieldRun; 1] = [run(
    "value",
    Role::Value,
    FieldFormat::Float(FloatFormat::Bf16),
    0,
    1,
)];
const Q4_0: [FieldRun; 2] = [
    run("d", Role::Scale, F16, 0, 1),
    run("qs", Role::Packed, B, 2, 16),
];
const Q4_1: [FieldRun; 3] = [
    run("d", Role::Scale, F16, 0, 1),
    run("m", Role::Min, F16, 2, 1),
    run("qs", Role::Packed, B, 4, 16),
];
const Q5_0: [FieldRun; 3] = [
    run("d", Role::Scale, F16, 0, 1),
    run("qh", Role::Packed, B, 2, 4),
    run("qs", Role::Packed, B, 6, 16),
];
const Q5_1: [FieldRun; 4] = [
    run("d", Role::Scale, F16, 0, 1),
    run("m", Role::Min, F16, 2, 1),
    run("qh", Role::Packed, B, 4, 4),
    run("qs", Role::Packed, B, 8, 16),
];
const Q8_0: [FieldRun; 2] = [
    run("d", Role::Scale, F16, 0, 1),
    run("qs", Role::Packed, B, 2, 32),
];
const Q2K: [FieldRun; 4] = [
    run("scales", Role::SubScale, B, 0, 16),
    run("qs", Role::Packed, B, 16, 64),
    run("d", Role::Scale, F16, 80, 1),
    run("dmin", Role::Min, F16, 82, 1),
];
const Q3K: [FieldRun; 4] = [
    run("hmask", Role::Packed, B, 0, 32),
    run("qs", Role::Packed, B, 32, 64),
    run("scales", Role::SubScale, B, 96, 12),
    run("d", Role::Scale, F16, 108, 1),
];
const Q4K: [FieldRun; 4] = [
    run("d", Role::Scale, F16, 0, 1),
    run("dmin", Role::Min, F16, 2, 1),
    run("scales", Role::SubScale, B, 4, 12),
    run("qs", Role::Packed, B, 16, 128),
];
const Q5K: [FieldRun; 5] = [
    run("d", Role::Scale, F16, 0, 1),
    run("dmin", Role::Min, F16, 2, 1),
    run("scales", Role::SubScale, B, 4, 12),
    run("qh", Role::Packed, B, 16, 32),
    run("qs", Role::Packed, B, 48, 128),
];
const Q6K: [FieldRun; 4] = [
    run("ql", Role::Packed, B, 0, 128),
    run("qh", Role::Packed, B, 128, 64),
    run("scales", Role::SubScale, B, 192, 16),
    run("d", Role::Scale, F16, 208, 1),
];

/// The block layout of a storage type; `None` for Q8_1 and Q8_K, which ggml uses only for
/// activations and no model file stores.
pub fn layout(t: GgmlDType) -> Option<BlockLayout> {
    let (elems, bytes, fields): (usize, usize, &'static [FieldRun]) = match t {
        GgmlDType::F32 => (1, 4, &F32_FIELDS),
        GgmlDType::F16 => (1, 2, &F16_FIELDS),
        GgmlDType::BF16 => (1, 2, &BF16_FIELDS),
        GgmlDType::Q4_0 => (32, 18, &Q4_0),
        GgmlDType::Q4_1 => (32, 20, &Q4_1),
        GgmlDType::Q5_0 => (32, 22, &Q5_0),
        GgmlDType::Q5_1 => (32, 24, &Q5_1),
        GgmlDType::Q8_0 => (32, 34, &Q8_0),
        GgmlDType::Q2K => (256, 84, &Q2K),
        GgmlDType::Q3K => (256, 110, &Q3K),
        GgmlDType::Q4K => (256, 144, &Q4K),
        GgmlDType::Q5K => (256, 176, &Q5K),
        GgmlDType::Q6K => (256, 210, &Q6K),
        GgmlDType::Q8_1 | GgmlDType::Q8K => return None,
    };
    Some(BlockLayout {
        elems,
        bytes,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::stored_ggml_types;

    #[test]
    fn layouts_tile_candles_blocks_exactly() {
        for t in stored_ggml_types() {
            let l = layout(t).unwrap();
            assert_eq!((l.elems, l.bytes), (t.block_size(), t.type_size()), "{t:?}");
            let mut at = 0;
            for f in l.fields {
                assert_eq!(
                    f.offset, at,
                    "{t:?} field {} is not where the previous one ends",
                    f.name
                );
                at += f.count * f.field_bytes();
            }
            assert_eq!(at, l.bytes, "{t:?}: fields do not fill the block");
        }
    }

    #[test]
    fn the_scale_field_is_what_dequantization_multiplies() {
        // Q4_0: value = (nibble - 8) · d. Doubling the stored d doubles every value.
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) / 40.0).collect();
        let t = candle_core::Tensor::from_vec(x, (1, 32), &candle_core::Device::Cpu).unwrap();
        let q = candle_core::quantized::QTensor::quantize(&t, GgmlDType::Q4_0).unwrap();
        let mut bytes = q.data().unwrap().into_owned();
        let d = half::f16::from_le_bytes([bytes[0], bytes[1]]);
        bytes[..2].copy_from_slice(&half::f16::from_f64(d.to_f64() * 2.0).to_le_bytes());
        let before = q
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let q2 = candle_core::quantized::ggml_file::qtensor_from_ggml(
            GgmlDType::Q4_0,
            &bytes,
            vec![1, 32],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let after = q2
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(*b, a * 2.0);
        }
    }
}
