//! Variant names: how a subject is derived from a model's stored weights. Public because
//! a case names its variant and `transform::apply` takes one.
//!
//! A closed set, parsed strictly, so a typo in a claim is an error and not a case that
//! silently runs on the unchanged model.

use crate::flipspec::{BitClass, Region, Severity};
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

/// Seeded bit flips in the stored bytes: which bits, where, how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlipSpec {
    /// The bit class.
    pub bits: BitClass,
    /// The region (the matrices' weights by default).
    pub region: Region,
    /// A count of flips or a rate per billion weights.
    pub severity: Severity,
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
    /// Seeded bit flips in the stored bytes, after converting to `storage` when given
    /// (`q4_0+flip-exp-msb:scales@count=1~3`: quantize, then flip the quantized blocks'
    /// bytes). The seed picks the bits.
    Flip {
        /// The storage type converted to first (`None`: the weights as stored).
        storage: Option<DType>,
        /// Which bits, where, how many.
        spec: FlipSpec,
        /// Seed of the flip draw (`~N` in the name): the same seed, the same bits.
        seed: u64,
    },
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
        DTYPES
            .iter()
            .find(|(d, _)| *d == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Whether candle stores it as a block-quantized `QTensor`.
    pub fn is_block_quantized(self) -> bool {
        !matches!(self, DType::F16 | DType::Bf16)
    }
}

impl Corruption {
    /// The name used in variant names.
    pub fn name(self) -> &'static str {
        CORRUPTIONS
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

impl Variant {
    /// Parses `base`, a dtype (`q8_0`), a corruption with an optional seed (`flip-exp`,
    /// `flip-exp~7`), or seeded bit flips `[DTYPE+]flip-BITS[:REGION]@SEVERITY[~SEED]`
    /// (`flip-mantissa-low@rate=1e6`, `q4_0+flip-exp-msb:scales@count=1~3`).
    pub fn parse(s: &str) -> Result<Variant, String> {
        if s == "base" {
            return Ok(Variant::Base);
        }
        if let Some(d) = dtype_named(s) {
            return Ok(Variant::Convert(d));
        }
        if let Some((storage, flip)) = s.split_once('+') {
            let d = dtype_named(storage).ok_or_else(|| {
                format!(
                    "variant '{s}': '{storage}' before '+' is not a storage type (known: {})",
                    dtype_names()
                )
            })?;
            return parse_flip(s, Some(d), flip);
        }
        if s.contains('@') {
            return parse_flip(s, None, s);
        }
        let (head, seed) = match s.split_once('~') {
            Some((h, seed)) => (
                h,
                seed.parse::<u64>().map_err(|_| {
                    format!("variant '{s}': seed '{seed}' is not an unsigned integer")
                })?,
            ),
            None => (s, 0),
        };
        if let Some((c, _)) = CORRUPTIONS.iter().find(|(_, n)| *n == head) {
            return Ok(Variant::Corrupt(*c, seed));
        }
        let known: Vec<&str> = std::iter::once("base")
            .chain(DTYPES.iter().map(|(_, n)| *n))
            .chain(CORRUPTIONS.iter().map(|(_, n)| *n))
            .collect();
        Err(format!("unknown variant '{s}' (known: {}, and bit flips [DTYPE+]flip-BITS[:REGION]@SEVERITY[~SEED])", known.join(", ")))
    }

    /// Whether it damages weights.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Variant::Corrupt(..) | Variant::Flip { .. })
    }

    /// What a damaged variant is compared with: the storage type it was converted to
    /// before the flips (so the comparison sees the flips, not the rounding), else the
    /// weights as stored.
    pub fn parent(&self) -> Variant {
        match self {
            Variant::Flip {
                storage: Some(d), ..
            } => Variant::Convert(*d),
            Variant::Flip { storage: None, .. }
            | Variant::Base
            | Variant::Convert(_)
            | Variant::Corrupt(..) => Variant::Base,
        }
    }

    /// The storage type its weights are converted to, if any.
    pub fn storage(&self) -> Option<DType> {
        match self {
            Variant::Convert(d) => Some(*d),
            Variant::Flip { storage, .. } => *storage,
            Variant::Base | Variant::Corrupt(..) => None,
        }
    }

    /// Whether it changes the storage type.
    pub fn is_dtype_change(&self) -> bool {
        matches!(self, Variant::Convert(_))
    }

    /// Whether its matrices are block-quantized.
    pub fn is_quantized(&self) -> bool {
        self.storage().is_some_and(DType::is_block_quantized)
    }
}

fn dtype_named(s: &str) -> Option<DType> {
    DTYPES.iter().find(|(_, n)| *n == s).map(|(d, _)| *d)
}

fn dtype_names() -> String {
    DTYPES
        .iter()
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bit class as variant names spell it: the short forms (`exp-msb`), the
/// `--bits` names (`exponent-msb`) accepted too.
fn bits_name(b: BitClass) -> &'static str {
    match b {
        BitClass::Sign => "sign",
        BitClass::Exponent => "exp",
        BitClass::ExponentMsb => "exp-msb",
        BitClass::Mantissa => "mantissa",
        BitClass::MantissaLow => "mantissa-low",
        BitClass::Any => "any",
    }
}

/// `flip-BITS[:REGION]@SEVERITY[~SEED]` (whole variant `s`, for messages).
fn parse_flip(s: &str, storage: Option<DType>, flip: &str) -> Result<Variant, String> {
    let grammar =
        "[DTYPE+]flip-BITS[:REGION]@SEVERITY[~SEED], e.g. q4_0+flip-exp-msb:scales@count=1~3";
    let body = flip
        .strip_prefix("flip-")
        .ok_or_else(|| format!("variant '{s}': expected {grammar}"))?;
    let (body, seed) = match body.rsplit_once('~') {
        Some((b, seed)) => (
            b,
            seed.parse::<u64>()
                .map_err(|_| format!("variant '{s}': seed '{seed}' is not an unsigned integer"))?,
        ),
        None => (body, 0),
    };
    let (head, severity) = body.split_once('@').ok_or_else(|| {
        format!("variant '{s}': no severity (@count=N or @rate=R); expected {grammar}")
    })?;
    let severity = Severity::parse(severity).map_err(|e| format!("variant '{s}': {e}"))?;
    let (bits, region) = match head.split_once(':') {
        Some((b, r)) => (
            b,
            Region::parse(r).map_err(|e| format!("variant '{s}': {e}"))?,
        ),
        None => (head, Region::Weights),
    };
    let bits = BitClass::ALL
        .into_iter()
        .find(|c| bits_name(*c) == bits || c.name() == bits)
        .ok_or_else(|| {
            format!(
                "variant '{s}': unknown bit class '{bits}' (known: {})",
                BitClass::ALL.map(bits_name).join(", ")
            )
        })?;
    Ok(Variant::Flip {
        storage,
        spec: FlipSpec {
            bits,
            region,
            severity,
        },
        seed,
    })
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variant::Base => f.write_str("base"),
            Variant::Convert(d) => f.write_str(d.name()),
            Variant::Corrupt(c, 0) => f.write_str(c.name()),
            Variant::Corrupt(c, seed) => write!(f, "{}~{seed}", c.name()),
            Variant::Flip {
                storage,
                spec,
                seed,
            } => {
                if let Some(d) = storage {
                    write!(f, "{}+", d.name())?;
                }
                write!(f, "flip-{}", bits_name(spec.bits))?;
                if spec.region != Region::Weights {
                    write!(f, ":{}", spec.region)?;
                }
                write!(f, "@{}", spec.severity.name())?;
                match seed {
                    0 => Ok(()),
                    s => write!(f, "~{s}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            "base",
            "f16",
            "bf16",
            "q8_0",
            "q4_1",
            "q2_k",
            "flip-exp",
            "flip-exp~7",
            "zero-tensor",
            "scale-norm",
        ] {
            assert_eq!(Variant::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn flip_variants_compose_with_a_storage_type_and_round_trip() {
        for s in [
            "flip-exp-msb@count=1",
            "q4_0+flip-exp-msb@count=1~3",
            "q8_0+flip-any:scales@rate=1e6~2",
            "flip-mantissa-low:embedding@rate=25e3",
            "f16+flip-sign:norm@count=4",
        ] {
            assert_eq!(Variant::parse(s).unwrap().to_string(), s);
        }
        let v = Variant::parse("q4_0+flip-exponent-msb:scales@count=1~3").unwrap();
        assert_eq!(
            v,
            Variant::Flip {
                storage: Some(DType::Q4_0),
                spec: FlipSpec {
                    bits: BitClass::ExponentMsb,
                    region: Region::Scales,
                    severity: Severity::Count(1)
                },
                seed: 3
            }
        );
        assert_eq!(v.to_string(), "q4_0+flip-exp-msb:scales@count=1~3");
        assert_eq!(
            (
                v.parent(),
                v.is_corruption(),
                v.is_quantized(),
                v.is_dtype_change()
            ),
            (Variant::Convert(DType::Q4_0), true, true, false)
        );
        assert_eq!(
            Variant::parse("flip-mantissa@rate=1000000")
                .unwrap()
                .to_string(),
            "flip-mantissa@rate=1e6"
        );
        assert_eq!(
            Variant::parse("flip-exp@count=2").unwrap().parent(),
            Variant::Base
        );
        // The legacy names keep their meaning: without '@' they are the fixed corruptions.
        assert_eq!(
            Variant::parse("flip-exp").unwrap(),
            Variant::Corrupt(Corruption::FlipExponent, 0)
        );
        for bad in [
            "q9_0+flip-exp@count=1",
            "q4_0+flip-exp",
            "q4_0+zero-tensor",
            "flip-exp@",
            "flip-exp@count=0",
            "flip-exps@count=1",
            "flip-exp:scale@count=1",
            "flip-exp@count=1~x",
            "q4_0+base",
            "flip@count=1",
        ] {
            assert!(Variant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(Variant::parse("q9_9").unwrap_err().contains("known:"));
        assert!(Variant::parse("flip-exp~x").is_err());
        assert!(Variant::parse("Base").is_err());
    }
}
