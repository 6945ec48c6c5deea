//! The names of a bit-flip corruption, as variant names, flags and reports spell them: a
//! bit class ([`BitClass`]), a region ([`Region`]) and a severity ([`Severity`]). What they
//! select in stored bytes is `transform::flip`'s (masks, block fields, flip counts).

use serde::Serialize;

/// A class of bits, by the role they play in a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BitClass {
    /// The sign bit: the value's magnitude is kept.
    Sign,
    /// Any exponent bit: the value is scaled by a power of two (×2^±1 … ×2^±128 in f32).
    Exponent,
    /// The exponent's top bit only: 0 → 1 scales by 2^128 (f32) or 2^16 (f16), the flips
    /// the fault-injection literature finds behind almost all damage.
    ExponentMsb,
    /// Any mantissa bit: the value changes by less than a factor of two.
    Mantissa,
    /// The lower half of the mantissa (f32 bits 0..=10: a relative change ≤ 2^-13; f16
    /// bits 0..=4: ≤ 2^-6; bf16 bits 0..=2: ≤ 2^-5).
    MantissaLow,
    /// Every stored bit, integer fields included: a uniformly random flip in memory.
    Any,
}

impl BitClass {
    /// Every class, in a fixed order (for listings and sweeps).
    pub const ALL: [BitClass; 6] = [
        BitClass::Sign,
        BitClass::Exponent,
        BitClass::ExponentMsb,
        BitClass::Mantissa,
        BitClass::MantissaLow,
        BitClass::Any,
    ];

    /// The class's name (`--bits`, reports, plots).
    pub fn name(self) -> &'static str {
        match self {
            BitClass::Sign => "sign",
            BitClass::Exponent => "exponent",
            BitClass::ExponentMsb => "exponent-msb",
            BitClass::Mantissa => "mantissa",
            BitClass::MantissaLow => "mantissa-low",
            BitClass::Any => "any",
        }
    }

    /// The class by name, or an error listing the names.
    pub fn parse(s: &str) -> Result<BitClass, String> {
        BitClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = BitClass::ALL.iter().map(|c| c.name()).collect();
                format!("unknown bit class '{s}' (known: {})", known.join(", "))
            })
    }
}

impl std::fmt::Display for BitClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where flips may land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Region {
    /// Every stored field of the matrices (`TensorClass::Matrix`): float weights, or a
    /// quantized block's scales, mins and packed values alike.
    Weights,
    /// The scales of the matrices' quantized blocks (the f16 `d`; K-quants' packed
    /// sub-scales too, which only the `any` class reaches).
    Scales,
    /// The f16 minimums of the matrices' quantized blocks (`m`, `dmin`).
    Mins,
    /// The packed quantized values of the matrices' blocks (only the `any` class reaches them).
    Packed,
    /// Every stored field of the token embedding.
    Embedding,
    /// Every stored field of the RMSNorm gains.
    Norm,
}

impl Region {
    /// Every region, in a fixed order.
    pub const ALL: [Region; 6] = [
        Region::Weights,
        Region::Scales,
        Region::Mins,
        Region::Packed,
        Region::Embedding,
        Region::Norm,
    ];

    /// The region's name (`--region`, variant names, reports).
    pub fn name(self) -> &'static str {
        match self {
            Region::Weights => "weights",
            Region::Scales => "scales",
            Region::Mins => "mins",
            Region::Packed => "packed",
            Region::Embedding => "embedding",
            Region::Norm => "norm",
        }
    }

    /// The region by name, or an error listing the names.
    pub fn parse(s: &str) -> Result<Region, String> {
        Region::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Region::ALL.iter().map(|r| r.name()).collect();
                format!("unknown region '{s}' (known: {})", known.join(", "))
            })
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How much damage: a number of flips, or a rate per billion weights of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Exactly this many flips.
    Count(u64),
    /// round(rate · weights / 10^9) flips, where weights are the region's tensors' elements.
    Rate(u64),
}

impl Severity {
    /// `count=N` or `rate=R`, as variant names and reports write it.
    pub fn name(self) -> String {
        match self {
            Severity::Count(n) => format!("count={n}"),
            Severity::Rate(r) => {
                // 1e6 reads better than 1000000 in variant names; parse accepts both.
                let (mut m, mut k) = (r, 0);
                while m % 10 == 0 && m > 0 {
                    m /= 10;
                    k += 1;
                }
                match k {
                    0..=2 => format!("rate={r}"),
                    _ => format!("rate={m}e{k}"),
                }
            }
        }
    }

    /// Parses `count=N` or `rate=R` (R in flips per billion weights, an integer ≥ 1,
    /// written out or as `Ne K`, e.g. `rate=1e6`).
    pub fn parse(s: &str) -> Result<Severity, String> {
        let bad = || {
            format!("severity '{s}': expected count=N or rate=R (flips per billion weights, e.g. rate=1e6)")
        };
        let (key, value) = s.split_once('=').ok_or_else(bad)?;
        let n = parse_integer(value).ok_or_else(bad)?;
        match (key, n) {
            (_, 0) => Err(format!("severity '{s}': zero flips corrupt nothing")),
            ("count", n) => Ok(Severity::Count(n)),
            ("rate", n) => Ok(Severity::Rate(n)),
            _ => Err(bad()),
        }
    }
}

impl Severity {
    /// A rate alone (`1e6`), as `--rates` lists them.
    pub fn parse_rate(s: &str) -> Result<u64, String> {
        match parse_integer(s) {
            Some(0) | None => Err(format!(
                "rate '{s}': expected a whole number of flips per billion weights ≥ 1 (1000, 1e6)"
            )),
            Some(n) => Ok(n),
        }
    }
}

/// `123` or `1e6` / `25e3` as an exact integer.
fn parse_integer(s: &str) -> Option<u64> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match s.split_once(['e', 'E']) {
        None if digits(s) => s.parse().ok(),
        Some((m, e)) if digits(m) && digits(e) => m
            .parse::<u64>()
            .ok()?
            .checked_mul(10u64.checked_pow(e.parse().ok()?)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known() {
        for c in BitClass::ALL {
            assert_eq!(BitClass::parse(c.name()), Ok(c));
        }
        assert!(BitClass::parse("exp").unwrap_err().contains("exponent-msb"));
        for r in Region::ALL {
            assert_eq!(Region::parse(r.name()), Ok(r));
        }
        assert!(Region::parse("scale").unwrap_err().contains("scales"));
    }

    #[test]
    fn severities_parse() {
        assert_eq!(Severity::parse("count=3"), Ok(Severity::Count(3)));
        assert_eq!(Severity::parse("rate=1e6"), Ok(Severity::Rate(1_000_000)));
        assert_eq!(Severity::parse("rate=25e3"), Ok(Severity::Rate(25_000)));
        for bad in [
            "count=0",
            "count=-1",
            "rate=1.5",
            "rate=",
            "flips=3",
            "count",
            "rate=1e99",
        ] {
            assert!(Severity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Severity::Count(7).name(), "count=7");
        assert_eq!(Severity::Rate(1_000_000).name(), "rate=1e6");
        assert_eq!(Severity::Rate(250).name(), "rate=250");
        assert_eq!(Severity::parse_rate("1e5"), Ok(100_000));
        assert!(Severity::parse_rate("0").is_err());
    }
}
