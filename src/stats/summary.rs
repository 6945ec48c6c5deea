//! Aggregates over positions: mean, median, p99, max, agreement rates, bootstrap interval.

use super::compare::{max_or_nan, PositionCompare};
use super::statistic::Dist;
use serde::{Deserialize, Serialize};

/// Linear-interpolation quantile of sorted values (numpy's default); NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            if sorted[lo] == sorted[hi] {
                // Also keeps inf..inf at inf instead of inf - inf = NaN.
                return sorted[lo];
            }
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Distribution of one per-position value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises values; NaN everywhere when empty or when any value is NaN, so no bound
    /// can hold on nothing and one unmeasurable position cannot hide below a percentile.
    pub fn of(values: &[f64]) -> Summary {
        if values.iter().any(|v| v.is_nan()) {
            return Summary {
                mean: f64::NAN,
                median: f64::NAN,
                p99: f64::NAN,
                max: f64::NAN,
            };
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mean = if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        };
        Summary {
            mean,
            median: quantile(&v, 0.5),
            p99: quantile(&v, 0.99),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Everything a teacher-forced comparison over a prompt set measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetStats {
    /// Positions compared.
    pub n: usize,
    /// KL divergence summary.
    pub kl: Summary,
    /// Share of positions with the same top-1.
    pub top1_agreement: f64,
    /// Mean top-k overlap.
    pub topk_overlap: f64,
    /// Largest |Δ ln p| over the reference's top-k.
    pub max_abs_logprob_delta: f64,
    /// RMS of Δp of the reference's top-1 token.
    pub rms_dp: f64,
    /// Per-position KL values, kept for bootstrap intervals.
    #[serde(skip)]
    pub kl_values: Vec<f64>,
}

impl SetStats {
    /// Aggregates per-position comparisons; an empty set yields NaNs (never a pass).
    pub fn of(positions: &[PositionCompare]) -> SetStats {
        let n = positions.len();
        let nf = n as f64;
        let kl_values: Vec<f64> = positions.iter().map(|p| p.kl).collect();
        let mean = |f: &dyn Fn(&PositionCompare) -> f64| {
            if n == 0 {
                f64::NAN
            } else {
                positions.iter().map(f).sum::<f64>() / nf
            }
        };
        SetStats {
            n,
            kl: Summary::of(&kl_values),
            top1_agreement: mean(&|p| p.top1_agree as u8 as f64),
            topk_overlap: mean(&|p| p.topk_overlap),
            max_abs_logprob_delta: if n == 0 {
                f64::NAN
            } else {
                positions
                    .iter()
                    .map(|p| p.max_abs_logprob_delta)
                    .fold(0.0, max_or_nan)
            },
            rms_dp: mean(&|p| p.dp * p.dp).sqrt(),
            kl_values,
        }
    }

    /// The value of one aggregate.
    pub fn get(&self, d: Dist) -> f64 {
        match d {
            Dist::KlMean => self.kl.mean,
            Dist::KlMedian => self.kl.median,
            Dist::KlP99 => self.kl.p99,
            Dist::KlMax => self.kl.max,
            Dist::Top1Agreement => self.top1_agreement,
            Dist::TopkOverlap => self.topk_overlap,
            Dist::MaxAbsLogprobDelta => self.max_abs_logprob_delta,
            Dist::RmsDp => self.rms_dp,
        }
    }

    /// All aggregates of the set as name → value, for reports.
    pub fn table(&self) -> Vec<(&'static str, f64)> {
        Dist::ALL
            .iter()
            .map(|&d| (d.statistic().name(), self.get(d)))
            .collect()
    }
}

/// Percentile bootstrap interval of the mean (95%), from a seeded resampler so the
/// same values and seed always give the same interval.
pub fn bootstrap_mean_interval(values: &[f64], seed: u64, reps: usize) -> Option<(f64, f64)> {
    if values.len() < 2 || reps == 0 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut rng = crate::rng::SeededRng::new(seed);
    let n = values.len();
    let mut means = super::bootstrap::replicates(n, reps, &mut rng, &mut |idx| {
        idx.iter().map(|&i| values[i]).sum::<f64>() / n as f64
    });
    means.sort_by(f64::total_cmp);
    Some((quantile(&means, 0.025), quantile(&means, 0.975)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(
            quantile(&[1.0, f64::INFINITY, f64::INFINITY], 0.99),
            f64::INFINITY
        );
    }

    #[test]
    fn one_nan_position_poisons_every_aggregate() {
        // Before: the NaN sorted last, so p99 and median of 450 values stayed finite, and
        // the max |Δ| fold dropped it.
        let mut v: Vec<f64> = (0..450).map(|i| i as f64 * 1e-4).collect();
        v[7] = f64::NAN;
        let s = Summary::of(&v);
        assert!(
            s.mean.is_nan() && s.median.is_nan() && s.p99.is_nan() && s.max.is_nan(),
            "{s:?}"
        );
        let p = |d: f64| PositionCompare {
            kl: 0.0,
            top1_agree: true,
            topk_overlap: 1.0,
            max_abs_logprob_delta: d,
            dp: 0.0,
        };
        assert!(SetStats::of(&[p(0.1), p(f64::NAN), p(0.2)])
            .max_abs_logprob_delta
            .is_nan());
    }

    #[test]
    fn empty_set_never_passes() {
        let s = SetStats::of(&[]);
        assert!(s.kl.mean.is_nan() && s.top1_agreement.is_nan());
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_mean() {
        let v: Vec<f64> = (0..50).map(|i| (i % 7) as f64).collect();
        let a = bootstrap_mean_interval(&v, 1, 500).unwrap();
        assert_eq!(a, bootstrap_mean_interval(&v, 1, 500).unwrap());
        let mean = v.iter().sum::<f64>() / 50.0;
        assert!(a.0 <= mean && mean <= a.1, "{a:?} {mean}");
    }
}
