//! Variant names: how a subject is derived from a model's stored weights.
//!
//! A closed set, parsed strictly, so a typo in a claim is an error and not a case that
//! silently runs on the unchanged model.

use std::fmt;

/// Storage types a subject can be converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// ggml Q8_0.
    Q8_0,
    /// ggml Q5_1.
    Q5_1,
    /// ggml Q5_0.
    Q5_0,
    /// ggml Q4_1.
    Q4_1,
    /// ggml Q4_0.
    Q4_0,
    /// ggml Q6_K.
    Q6K,
    /// ggml Q5_K.
    Q5K,
    /// ggml Q4_K.
    Q4K,
    /// ggml Q3_K.
    Q3K,
    /// ggml Q2_K.
    Q2K,
}

/// Seeded damage applied to the stored weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Corruption {
    /// Flip the top exponent bit (bit 30) of one weight of one matrix.
    FlipExponent,
    /// Flip the lowest mantissa bit (bit 0) of one weight: below any sane detection floor.
    FlipMantissa,
    /// Zero one whole matrix.
    ZeroTensor,
    /// Swap two rows of the token embedding.
    SwapEmbedRows,
    /// Multiply the final norm weight by 2.
    ScaleNorm,
}

/// How a subject derives from its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The weights as stored.
    Base,
    /// Converted to another storage type (through f32).
    Convert(DType),
    /// Damaged with a seeded corruption; the seed picks the tensor and element.
    Corrupt(Corruption, u64),
}

const DTYPES: [(DType, &str); 12] = [
    (DType::F16, "f16"),
    (DType::Bf16, "bf16"),
    (DType::Q8_0, "q8_0"),
    (DType::Q5_1, "q5_1"),
    (DType::Q5_0, "q5_0"),
    (DType::Q4_1, "q4_1"),
    (DType::Q4_0, "q4_0"),
    (DType::Q6K, "q6_k"),
    (DType::Q5K, "q5_k"),
    (DType::Q4K, "q4_k"),
    (DType::Q3K, "q3_k"),
    (DType::Q2K, "q2_k"),
];

const CORRUPTIONS: [(Corruption, &str); 5] = [
    (Corruption::FlipExponent, "flip-exp"),
    (Corruption::FlipMantissa, "flip-mantissa"),
    (Corruption::ZeroTensor, "zero-tensor"),
    (Corruption::SwapEmbedRows, "swap-embed-rows"),
    (Corruption::ScaleNorm, "scale-norm"),
];

impl DType {
    /// The lowercase name used in variant names and reports.
    pub fn name(self) -> &'static str {
        DTYPES.iter().find(|(d, _)| *d == self).map(|(_, n)| *n).unwrap_or("?")
    }

    /// Whether candle stores it as a block-quantized `QTensor`.
    pub fn is_block_quantized(self) -> bool {
        !matches!(self, DType::F16 | DType::Bf16)
    }
}

impl Corruption {
    /// The name used in variant names.
    pub fn name(self) -> &'static str {
        CORRUPTIONS.iter().find(|(c, _)| *c == self).map(|(_, n)| *n).unwrap_or("?")
    }
}

impl Variant {
    /// Parses `base`, a dtype (`q8_0`), or a corruption with an optional seed (`flip-exp`, `flip-exp~7`).
    pub fn parse(s: &str) -> Result<Variant, String> {
        if s == "base" {
            return Ok(Variant::Base);
        }
        if let Some((d, _)) = DTYPES.iter().find(|(_, n)| *n == s) {
            return Ok(Variant::Convert(*d));
        }
        let (head, seed) = match s.split_once('~') {
            Some((h, seed)) => (h, seed.parse::<u64>().map_err(|_| format!("variant '{s}': seed '{seed}' is not an unsigned integer"))?),
            None => (s, 0),
        };
        if let Some((c, _)) = CORRUPTIONS.iter().find(|(_, n)| *n == head) {
            return Ok(Variant::Corrupt(*c, seed));
        }
        let known: Vec<&str> = std::iter::once("base")
            .chain(DTYPES.iter().map(|(_, n)| *n))
            .chain(CORRUPTIONS.iter().map(|(_, n)| *n))
            .collect();
        Err(format!("unknown variant '{s}' (known: {})", known.join(", ")))
    }

    /// Whether it damages weights.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Variant::Corrupt(..))
    }

    /// Whether it changes the storage type.
    pub fn is_dtype_change(&self) -> bool {
        matches!(self, Variant::Convert(_))
    }

    /// Whether its matrices are block-quantized.
    pub fn is_quantized(&self) -> bool {
        matches!(self, Variant::Convert(d) if d.is_block_quantized())
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variant::Base => f.write_str("base"),
            Variant::Convert(d) => f.write_str(d.name()),
            Variant::Corrupt(c, 0) => f.write_str(c.name()),
            Variant::Corrupt(c, seed) => write!(f, "{}~{seed}", c.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ["base", "f16", "bf16", "q8_0", "q4_1", "q2_k", "flip-exp", "flip-exp~7", "zero-tensor", "scale-norm"] {
            assert_eq!(Variant::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(Variant::parse("q9_9").unwrap_err().contains("known:"));
        assert!(Variant::parse("flip-exp~x").is_err());
        assert!(Variant::parse("Base").is_err());
    }
}
