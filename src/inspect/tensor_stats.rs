//! [`TensorStats`]: what a tensor's values look like, in one pass.

use serde::Serialize;

/// Summary statistics of a tensor's values. min/max/mean/std are over the finite values
/// only (NaN when there are none), so one NaN cannot hide what the rest look like.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TensorStats {
    /// Number of values.
    pub elems: usize,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Population standard deviation of the finite values.
    pub std: f64,
    /// NaN count.
    pub nan: usize,
    /// ±infinity count.
    pub inf: usize,
    /// Exact zeros (either sign).
    pub zeros: usize,
}

impl TensorStats {
    /// Summarizes `values` (f64 accumulation: a 50M-element sum in f32 loses digits).
    pub fn of(values: &[f32]) -> TensorStats {
        let (mut min, mut max, mut sum, mut sq) =
            (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, 0.0f64);
        let (mut nan, mut inf, mut zeros, mut finite) = (0, 0, 0, 0usize);
        for &v in values {
            if v.is_nan() {
                nan += 1;
                continue;
            }
            if v.is_infinite() {
                inf += 1;
                continue;
            }
            if v == 0.0 {
                zeros += 1;
            }
            let x = f64::from(v);
            finite += 1;
            min = min.min(x);
            max = max.max(x);
            sum += x;
            sq += x * x;
        }
        let (mean, std, min, max) = match finite {
            0 => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
            n => {
                let mean = sum / n as f64;
                (
                    mean,
                    (sq / n as f64 - mean * mean).max(0.0).sqrt(),
                    min,
                    max,
                )
            }
        };
        TensorStats {
            elems: values.len(),
            min,
            max,
            mean,
            std,
            nan,
            inf,
            zeros,
        }
    }

    /// Why the tensor is unusable: all zero, or holding NaN or infinity.
    pub fn defect(&self) -> Option<String> {
        match (self.nan, self.inf) {
            (0, 0) if self.elems > 0 && self.zeros == self.elems => {
                Some("every value is zero".into())
            }
            (0, 0) => None,
            (n, i) => Some(format!("{n} NaN and {i} infinite value(s)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_moments() {
        let s = TensorStats::of(&[1.0, -1.0, 0.0, f32::NAN, f32::INFINITY, 3.0]);
        assert_eq!((s.elems, s.nan, s.inf, s.zeros), (6, 1, 1, 1));
        assert_eq!((s.min, s.max, s.mean), (-1.0, 3.0, 0.75));
        assert!((s.std - (2.1875f64).sqrt()).abs() < 1e-12);
        assert!(s.defect().unwrap().contains("1 NaN"));
        assert_eq!(
            TensorStats::of(&[0.0, -0.0]).defect().as_deref(),
            Some("every value is zero")
        );
        assert_eq!(TensorStats::of(&[0.5]).defect(), None);
    }
}
