//! Bit classes: which bits of a stored field a corruption may flip ([`BitClass`]), and
//! the masks they select in each stored format ([`BitMask`]).
//!
//! A class names bits of a float field (an f32/f16/bf16 weight, or the f16 scale and min
//! of a quantized block). Integer fields (packed quantized values, K-quant sub-scales)
//! have no sign, exponent or mantissa: only [`BitClass::Any`] reaches them.

use crate::flipspec::BitClass;
use serde::Serialize;

/// The float formats a stored field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatFormat {
    /// IEEE single: sign 31, exponent 23..=30, mantissa 0..=22.
    F32,
    /// IEEE half: sign 15, exponent 10..=14, mantissa 0..=9.
    F16,
    /// bfloat16: sign 15, exponent 7..=14, mantissa 0..=6.
    Bf16,
}

impl FloatFormat {
    /// Width in bits.
    pub fn width(self) -> u32 {
        match self {
            FloatFormat::F32 => 32,
            FloatFormat::F16 | FloatFormat::Bf16 => 16,
        }
    }

    /// Mantissa (fraction) bits; the exponent sits above them, the sign on top.
    pub fn mantissa_bits(self) -> u32 {
        match self {
            FloatFormat::F32 => 23,
            FloatFormat::F16 => 10,
            FloatFormat::Bf16 => 7,
        }
    }

    /// The value of a little-endian field as f64 (exact: every format widens exactly).
    pub fn decode(self, bytes: &[u8]) -> f64 {
        match self {
            FloatFormat::F32 => {
                f64::from(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            FloatFormat::F16 => half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
            FloatFormat::Bf16 => half::bf16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
        }
    }
}

/// How a stored field is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldFormat {
    /// A float.
    Float(FloatFormat),
    /// One byte of packed integers (quantized values, sub-scales, high bits).
    Byte,
}

impl FieldFormat {
    /// Width in bits.
    pub fn width(self) -> u32 {
        match self {
            FieldFormat::Float(f) => f.width(),
            FieldFormat::Byte => 8,
        }
    }

    /// The field's value as a number: the float, or the byte as an unsigned integer.
    pub fn decode(self, bytes: &[u8]) -> f64 {
        match self {
            FieldFormat::Float(f) => f.decode(bytes),
            FieldFormat::Byte => f64::from(bytes[0]),
        }
    }
}

impl BitClass {
    /// The bits it selects in each format.
    pub fn mask(self) -> BitMask {
        BitMask {
            f32: self.float_mask(FloatFormat::F32) as u32,
            f16: self.float_mask(FloatFormat::F16) as u16,
            bf16: self.float_mask(FloatFormat::Bf16) as u16,
            bytes: self == BitClass::Any,
        }
    }

    fn float_mask(self, f: FloatFormat) -> u64 {
        let (w, m) = (f.width(), f.mantissa_bits());
        let ones = |n: u32| (1u64 << n) - 1;
        match self {
            BitClass::Sign => 1 << (w - 1),
            BitClass::Exponent => ones(w - 1) & !ones(m),
            BitClass::ExponentMsb => 1 << (w - 2),
            BitClass::Mantissa => ones(m),
            BitClass::MantissaLow => ones(m / 2),
            BitClass::Any => ones(w),
        }
    }
}

/// The bits a corruption may flip in each stored format: bit `i` set means bit `i` of a
/// little-endian field of that format is eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BitMask {
    /// Bits of an f32 field.
    pub f32: u32,
    /// Bits of an f16 field (also the scales and mins of quantized blocks).
    pub f16: u16,
    /// Bits of a bf16 field.
    pub bf16: u16,
    /// Whether every bit of integer bytes is eligible.
    pub bytes: bool,
}

impl BitMask {
    /// The eligible bits of a field of format `f`, as the low bits of a u32.
    pub fn of(&self, f: FieldFormat) -> u32 {
        match f {
            FieldFormat::Float(FloatFormat::F32) => self.f32,
            FieldFormat::Float(FloatFormat::F16) => u32::from(self.f16),
            FieldFormat::Float(FloatFormat::Bf16) => u32::from(self.bf16),
            FieldFormat::Byte if self.bytes => 0xFF,
            FieldFormat::Byte => 0,
        }
    }
}

/// The `k`-th set bit of `mask` (0-based, counting from bit 0).
pub(crate) fn nth_set_bit(mask: u32, k: u32) -> u32 {
    let mut m = mask;
    for _ in 0..k {
        m &= m - 1;
    }
    m.trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_ieee_layouts() {
        let m = BitClass::ExponentMsb.mask();
        assert_eq!((m.f32, m.f16, m.bf16), (1 << 30, 1 << 14, 1 << 14));
        let e = BitClass::Exponent.mask();
        assert_eq!((e.f32, e.f16, e.bf16), (0x7F80_0000, 0x7C00, 0x7F80));
        let s = BitClass::Sign.mask();
        assert_eq!((s.f32, s.f16, s.bf16), (1 << 31, 1 << 15, 1 << 15));
        let lo = BitClass::MantissaLow.mask();
        assert_eq!((lo.f32, lo.f16, lo.bf16), (0x7FF, 0x1F, 0x7));
        assert_eq!(BitClass::Any.mask().f32, u32::MAX);
        // Classes partition a float: sign + exponent + mantissa = every bit.
        for f in [FloatFormat::F32, FloatFormat::F16, FloatFormat::Bf16] {
            let ff = FieldFormat::Float(f);
            let parts =
                [BitClass::Sign, BitClass::Exponent, BitClass::Mantissa].map(|c| c.mask().of(ff));
            assert_eq!(
                parts[0] & parts[1] | parts[1] & parts[2] | parts[0] & parts[2],
                0
            );
            assert_eq!(parts[0] | parts[1] | parts[2], BitClass::Any.mask().of(ff));
            assert_eq!(BitClass::ExponentMsb.mask().of(ff) & !parts[1], 0);
            assert_eq!(BitClass::MantissaLow.mask().of(ff) & !parts[2], 0);
        }
    }

    #[test]
    fn only_any_reaches_integer_bytes() {
        for c in BitClass::ALL {
            assert_eq!(
                c.mask().of(FieldFormat::Byte) != 0,
                c == BitClass::Any,
                "{c}"
            );
        }
    }

    #[test]
    fn an_exponent_msb_flip_scales_by_the_documented_power() {
        let w = 0.02f32;
        let flipped = f32::from_bits(w.to_bits() ^ BitClass::ExponentMsb.mask().f32);
        assert_eq!(f64::from(flipped) / f64::from(w), 2f64.powi(128));
        let d = half::f16::from_f32(0.003);
        let fd = half::f16::from_bits(d.to_bits() ^ BitClass::ExponentMsb.mask().f16);
        assert_eq!(fd.to_f64() / d.to_f64(), 65536.0);
    }

    #[test]
    fn nth_set_bit_walks_the_mask() {
        assert_eq!(
            (0..4)
                .map(|k| nth_set_bit(0b1011_0100, k))
                .collect::<Vec<_>>(),
            vec![2, 4, 5, 7]
        );
    }
}
