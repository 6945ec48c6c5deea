//! The health check: what a tensor's values say about damage without any reference —
//! NaN or infinity, every value zero, or a magnitude absurd next to the tensor's own
//! typical value ([`check_values`]).
//!
//! "Typical" is the median of the finite non-zero magnitudes: a statistic that a few
//! damaged values cannot move (a mean or standard deviation would follow a 2^128 weight
//! up and hide it), and that a damaged quantized block (32 of thousands of values) cannot
//! move either. Sign and mantissa flips change a value by at most a factor of two and are
//! invisible here by design; they are the manifest's to catch.

use super::IntegrityError;
use crate::inspect::TensorStats;
use crate::stored::StoredFile;
use serde::Serialize;

/// A tensor is absurd when its largest finite magnitude exceeds this many times its
/// median non-zero magnitude. Trained weights are near-Gaussian with heavy tails: over
/// n = 10^8 values the maximum is ≈ 6σ against a median of 0.67σ (ratio ≈ 9), and
/// outlier features of LLMs reach tens of σ; 2^12 leaves two orders of margin over that,
/// while an exponent-MSB flip multiplies a value by 2^128 (f32) or a block by 2^16 (f16
/// scale), far beyond it.
pub const ABSURD_RATIO: f64 = 4096.0;

/// What the health check found wrong with one tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
pub enum Finding {
    /// NaN or infinite values.
    NonFinite {
        nan: usize,
        /// ±infinity count.
        inf: usize,
    },
    /// Every value is zero.
    AllZero,
    /// The largest magnitude is absurd next to the median one.
    Absurd {
        /// Largest finite |x|.
        max_abs: f64,
        /// Median finite non-zero |x|.
        median_abs: f64,
        ratio: f64,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::NonFinite { nan, inf } => write!(f, "{nan} NaN and {inf} infinite value(s)"),
            Finding::AllZero => f.write_str("every value is zero"),
            Finding::Absurd { max_abs, median_abs, ratio } => write!(f, "max |x| {max_abs:e} is {ratio:.3e} × the median |x| {median_abs:e} (limit {ABSURD_RATIO})"),
        }
    }
}

/// One flagged tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorHealth {
    /// Its name.
    pub tensor: String,
    /// What is wrong.
    pub finding: Finding,
}

/// The largest finite magnitude over the median non-zero one (`None` without a
/// finite non-zero value).
pub fn magnitude_ratio(values: &[f32]) -> Option<(f64, f64)> {
    let mut mags: Vec<f32> = values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|v| v.abs())
        .collect();
    if mags.is_empty() {
        return None;
    }
    let mid = mags.len() / 2;
    let (_, median, _) = mags.select_nth_unstable_by(mid, f32::total_cmp);
    let median = f64::from(*median);
    let max = mags.iter().fold(0f32, |m, v| m.max(*v));
    Some((f64::from(max), median))
}

/// What is wrong with a tensor holding `values`, if anything.
pub fn check_values(values: &[f32]) -> Option<Finding> {
    let s = TensorStats::of(values);
    if s.nan + s.inf > 0 {
        return Some(Finding::NonFinite {
            nan: s.nan,
            inf: s.inf,
        });
    }
    if s.zeros == s.elems {
        return Some(Finding::AllZero);
    }
    let (max_abs, median_abs) = magnitude_ratio(values)?;
    let ratio = max_abs / median_abs;
    (ratio > ABSURD_RATIO).then_some(Finding::Absurd {
        max_abs,
        median_abs,
        ratio,
    })
}

/// Every flagged tensor of a model file, decoded from its stored bytes alone (no config,
/// no loader: a damaged config cannot hide a damaged tensor). Tensors of non-float types
/// (safetensors' integer buffers) are not weights and are left out.
pub fn check_file(file: &StoredFile) -> Result<Vec<TensorHealth>, IntegrityError> {
    let mut out = Vec::new();
    for t in &file.tensors {
        let Some(values) = file.values(t).map_err(|e| IntegrityError::Decode {
            file: file.path.clone(),
            tensor: t.name.clone(),
            reason: e.to_string(),
        })?
        else {
            continue;
        };
        out.extend(check_values(&values).map(|finding| TensorHealth {
            tensor: t.name.clone(),
            finding,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalish(n: usize) -> Vec<f32> {
        let mut r = crate::rng::SeededRng::new(1);
        // Sum of 4 uniforms: bell-shaped, bounded, deterministic.
        (0..n)
            .map(|_| (0..4).map(|_| r.uniform_sym(0.05)).sum())
            .collect()
    }

    #[test]
    fn clean_values_pass_and_each_defect_is_named() {
        let v = normalish(4096);
        assert_eq!(check_values(&v), None);
        let mut nan = v.clone();
        nan[7] = f32::NAN;
        assert_eq!(
            check_values(&nan),
            Some(Finding::NonFinite { nan: 1, inf: 0 })
        );
        assert_eq!(check_values(&[0.0; 8]), Some(Finding::AllZero));
        let mut huge = v.clone();
        huge[100] = f32::from_bits(huge[100].to_bits() ^ (1 << 30));
        assert!(matches!(check_values(&huge), Some(Finding::Absurd { ratio, .. }) if ratio > 1e30));
    }

    #[test]
    fn a_block_scaled_by_2_16_is_absurd_and_a_doubled_value_is_not() {
        let v = normalish(4096);
        let mut block = v.clone();
        for x in &mut block[64..96] {
            *x *= 65536.0;
        }
        assert!(matches!(check_values(&block), Some(Finding::Absurd { .. })));
        let mut doubled = v.clone();
        doubled[5] *= 2.0;
        assert_eq!(check_values(&doubled), None);
    }
}
