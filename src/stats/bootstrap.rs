//! Seeded percentile bootstrap ([`bootstrap`]) and the area under the ROC curve
//! ([`auroc`]): the intervals and the "does the score separate the classes" number of the
//! trace metrics.
//!
//! Reproducible: every resample draws its indices from the harness's own [`SeededRng`],
//! so the same values and seed give the same interval on every machine.

use super::summary::quantile;
use crate::rng::SeededRng;

/// A 95% (or other) percentile interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

/// Percentile bootstrap of `stat` over `n` items: `reps` resamples of `n` indices drawn
/// with replacement from `rng`, `stat` evaluated on each, and the `(1 − confidence) / 2`
/// and `(1 + confidence) / 2` quantiles of the finite results. `None` when `n` is 0, no
/// resample gave a finite value, or `confidence` is not in (0, 1).
pub fn bootstrap(
    n: usize,
    reps: usize,
    confidence: f64,
    rng: &mut SeededRng,
    stat: &mut dyn FnMut(&[usize]) -> f64,
) -> Option<Interval> {
    if n == 0 || reps == 0 || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let values = replicates(n, reps, rng, stat)
        .into_iter()
        .filter(|v| v.is_finite())
        .collect();
    interval_of(values, confidence)
}

/// `stat` on each of `reps` resamples of `n` indices drawn with replacement from `rng`
/// (index `next_u64() % n`, in order), unsorted.
pub fn replicates(
    n: usize,
    reps: usize,
    rng: &mut SeededRng,
    stat: &mut dyn FnMut(&[usize]) -> f64,
) -> Vec<f64> {
    let mut idx = vec![0usize; n];
    (0..reps)
        .map(|_| {
            for slot in idx.iter_mut() {
                *slot = (rng.next_u64() % n as u64) as usize;
            }
            stat(&idx)
        })
        .collect()
}

/// The percentile interval of bootstrap replicates.
pub fn interval_of(mut values: Vec<f64>, confidence: f64) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some(Interval {
        lo: quantile(&values, tail),
        hi: quantile(&values, 1.0 - tail),
    })
}

/// Area under the ROC curve of `score` separating `positive` from `negative` items:
/// the probability that a random positive scores higher than a random negative, ties
/// counting one half (the Mann-Whitney U statistic over `|P|·|N|`). `None` when either
/// class is empty or a score is not finite.
pub fn auroc(positive: &[f64], negative: &[f64]) -> Option<f64> {
    if positive.is_empty()
        || negative.is_empty()
        || positive.iter().chain(negative).any(|v| !v.is_finite())
    {
        return None;
    }
    // Rank-sum form: O((p + n) log(p + n)), exact for ties (mid-ranks).
    let mut all: Vec<(f64, bool)> = positive
        .iter()
        .map(|&v| (v, true))
        .chain(negative.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_pos = 0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Items i..j share a value: each gets the mid-rank (1-based).
        let mid = (i + j + 1) as f64 / 2.0;
        rank_sum_pos += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (positive.len() as f64, negative.len() as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// Stratified bootstrap interval of [`auroc`]: each class resampled within itself, so
/// every resample keeps both classes (the class sizes are fixed by the data).
pub fn auroc_interval(
    positive: &[f64],
    negative: &[f64],
    reps: usize,
    confidence: f64,
    rng: &mut SeededRng,
) -> Option<Interval> {
    auroc(positive, negative)?;
    let draw = |src: &[f64], rng: &mut SeededRng| -> Vec<f64> {
        (0..src.len())
            .map(|_| src[(rng.next_u64() % src.len() as u64) as usize])
            .collect()
    };
    let values: Vec<f64> = (0..reps)
        .filter_map(|_| {
            let p = draw(positive, rng);
            let n = draw(negative, rng);
            auroc(&p, &n)
        })
        .collect();
    interval_of(values, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_known_cases() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(auroc(&[1.0], &[1.0]), Some(0.5));
        // One of four pairs is won, one tied: (1 + 0.5) / 4.
        assert_eq!(auroc(&[2.0, 0.0], &[1.0, 2.0]), Some(0.375));
        assert_eq!(auroc(&[], &[1.0]), None);
        assert_eq!(auroc(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn auroc_matches_pair_counting() {
        let mut rng = SeededRng::new(3);
        let p: Vec<f64> = (0..37).map(|_| (rng.next_u64() % 9) as f64).collect();
        let n: Vec<f64> = (0..23).map(|_| (rng.next_u64() % 7) as f64).collect();
        let mut wins = 0f64;
        for a in &p {
            for b in &n {
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let want = wins / (p.len() * n.len()) as f64;
        assert!((auroc(&p, &n).unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_a_mean() {
        let v: Vec<f64> = (0..40).map(|i| (i % 3) as f64).collect();
        let mut mean = |idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
        let a = bootstrap(v.len(), 500, 0.95, &mut SeededRng::new(9), &mut mean).unwrap();
        let b = bootstrap(v.len(), 500, 0.95, &mut SeededRng::new(9), &mut mean).unwrap();
        assert_eq!(a, b);
        assert!(a.lo < 1.0 && 1.0 < a.hi, "{a:?}");
        assert!(bootstrap(0, 500, 0.95, &mut SeededRng::new(9), &mut mean).is_none());
        let i = auroc_interval(
            &[3.0, 4.0, 2.5],
            &[1.0, 2.0, 2.6],
            200,
            0.95,
            &mut SeededRng::new(1),
        )
        .unwrap();
        assert!(i.lo <= i.hi && i.hi <= 1.0 && i.lo >= 0.0, "{i:?}");
    }
}
