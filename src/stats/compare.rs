//! Comparing one position's next-token distributions.

use serde::{Deserialize, Serialize};

/// Natural-log softmax in f64 (logits may be f32; the subtraction of the max avoids overflow).
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    logits.iter().map(|&l| l as f64 - lse).collect()
}

/// The `k` most likely ids, most likely first; ties broken by the lower id (as a stable sort does).
pub fn top_k(lp: &[f64], k: usize) -> Vec<u32> {
    let order = |a: &u32, b: &u32| lp[*b as usize].total_cmp(&lp[*a as usize]).then(a.cmp(b));
    let mut idx: Vec<u32> = (0..lp.len() as u32).collect();
    // A strict total order, so selecting the first k and sorting them gives what a full
    // sort would, in linear rather than n·log n time (vocabularies are 16k–49k ids).
    if k < idx.len() {
        idx.select_nth_unstable_by(k, order);
        idx.truncate(k);
    }
    idx.sort_by(order);
    idx
}

/// The larger of two values, NaN when either is NaN. `f64::max` drops a NaN, which would
/// turn a broken measurement into a clean 0.
pub fn max_or_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// A KL sum that rounded just below zero is zero; a NaN stays NaN (`f64::max(NaN, 0.0)`
/// would be 0.0, a perfect score for an unmeasurable position).
fn clamp_kl(kl: f64) -> f64 {
    if kl.is_nan() {
        f64::NAN
    } else {
        kl.max(0.0)
    }
}

/// One position: how far the subject is from the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionCompare {
    /// KL(reference ‖ subject), nats.
    pub kl: f64,
    /// Whether the top-1 ids agree.
    pub top1_agree: bool,
    /// Share of the reference's top-k present in the subject's top-k.
    pub topk_overlap: f64,
    /// Largest |Δ ln p| over the reference's top-k ids.
    pub max_abs_logprob_delta: f64,
    /// p_subject − p_reference of the reference's top-1 id.
    pub dp: f64,
}

/// Against an oracle's top-k: KL over its top-k plus one bucket for the remaining mass,
/// as the oracle contract defines it.
pub fn compare_to_oracle(oracle: &[(u32, f64)], subject_lp: &[f64]) -> PositionCompare {
    if let Some(broken) = non_finite(subject_lp, oracle.first().map(|o| o.1.exp()).unwrap_or(1.0)) {
        return broken;
    }
    let k = oracle.len();
    let q_of = |id: u32| {
        subject_lp
            .get(id as usize)
            .copied()
            .unwrap_or(f64::NEG_INFINITY)
    };
    let mut kl = 0.0;
    let (mut p_mass, mut q_mass) = (0.0, 0.0);
    let mut max_abs = 0.0f64;
    for &(id, lp) in oracle {
        let p = lp.exp();
        let q_lp = q_of(id);
        p_mass += p;
        q_mass += q_lp.exp();
        kl += p * (lp - q_lp);
        max_abs = max_or_nan(max_abs, (lp - q_lp).abs());
    }
    kl += bucket_term(1.0 - p_mass, 1.0 - q_mass);
    let subject_top = top_k(subject_lp, k);
    let overlap = oracle
        .iter()
        .filter(|(id, _)| subject_top.contains(id))
        .count() as f64
        / k.max(1) as f64;
    let top1 = oracle.first().map(|&(id, _)| id);
    PositionCompare {
        kl: clamp_kl(kl),
        top1_agree: top1 == subject_top.first().copied(),
        topk_overlap: overlap,
        max_abs_logprob_delta: max_abs,
        dp: top1
            .map(|id| q_of(id).exp() - oracle[0].1.exp())
            .unwrap_or(f64::NAN),
    }
}

/// A subject whose distribution holds NaN (an overflowed activation) is infinitely far
/// from any reference: damage that breaks the arithmetic is the most visible damage there is.
fn non_finite(subject_lp: &[f64], reference_top1_p: f64) -> Option<PositionCompare> {
    subject_lp
        .iter()
        .any(|x| x.is_nan() || *x == f64::INFINITY)
        .then_some(PositionCompare {
            kl: f64::INFINITY,
            top1_agree: false,
            topk_overlap: 0.0,
            max_abs_logprob_delta: f64::INFINITY,
            dp: -reference_top1_p,
        })
}

/// p·ln(p/q) for the remainder bucket; clamped because each side's top-k mass is a rounded sum.
fn bucket_term(p: f64, q: f64) -> f64 {
    let p = p.max(0.0);
    if p <= 1e-12 {
        return 0.0;
    }
    p * (p.ln() - q.max(1e-12).ln())
}

/// Two full distributions: full-vocabulary KL, top-1, top-`k` overlap and Δ over the reference's top-k.
pub fn compare_full(reference_lp: &[f64], subject_lp: &[f64], k: usize) -> PositionCompare {
    let ref_top = top_k(reference_lp, 1)
        .first()
        .map(|&i| reference_lp[i as usize].exp())
        .unwrap_or(1.0);
    if let Some(broken) = non_finite(subject_lp, ref_top) {
        return broken;
    }
    let kl: f64 = reference_lp
        .iter()
        .zip(subject_lp)
        .map(|(&p_lp, &q_lp)| {
            let p = p_lp.exp();
            if p == 0.0 {
                0.0
            } else {
                p * (p_lp - q_lp)
            }
        })
        .sum();
    let rt = top_k(reference_lp, k);
    let st = top_k(subject_lp, k);
    let overlap = rt.iter().filter(|id| st.contains(id)).count() as f64 / k.max(1) as f64;
    let max_abs = rt
        .iter()
        .map(|&id| (reference_lp[id as usize] - subject_lp[id as usize]).abs())
        .fold(0.0, max_or_nan);
    let r1 = rt[0] as usize;
    PositionCompare {
        kl: clamp_kl(kl),
        top1_agree: rt.first() == st.first(),
        topk_overlap: overlap,
        max_abs_logprob_delta: max_abs,
        dp: subject_lp[r1].exp() - reference_lp[r1].exp(),
    }
}

/// Where free-running greedy decoding first left the reference, and whether that was a near-tie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// First position whose tokens differ (`None`: identical).
    pub position: Option<usize>,
    /// The reference's log-probability of its own token minus that of the subject's token
    /// there (`None` when the subject's token is outside the reference's top-k).
    pub reference_margin: Option<f64>,
    /// The subject's log-probability of its own token minus that of the reference's token
    /// there, under the same prefix (`None` when not measured).
    pub subject_margin: Option<f64>,
    /// The registered near-tie margin both are held to (`None`: no near-tie rule).
    pub tie_margin: Option<f64>,
    /// Whether both margins are within `tie_margin` (`None` without a rule or a divergence).
    pub near_tie: Option<bool>,
}

impl Divergence {
    /// No divergence at all.
    pub fn none() -> Divergence {
        Divergence {
            position: None,
            reference_margin: None,
            subject_margin: None,
            tie_margin: None,
            near_tie: None,
        }
    }
}

/// The first position where two token sequences differ (a length difference counts).
pub fn first_difference(reference: &[u32], subject: &[u32]) -> Option<usize> {
    let n = reference.len().min(subject.len());
    (0..n)
        .find(|&i| reference[i] != subject[i])
        .or((reference.len() != subject.len()).then_some(n))
}

/// Compares two greedy continuations. `reference_topk[i]` is the reference's top-k at
/// position i; `subject_lp_at(i)` the subject's full log-probabilities there under the
/// reference's prefix (identical to its own up to the divergence, so teacher-forced values
/// are exact). A divergence is a near-tie when the reference preferred its token over the
/// subject's by at most `tie_margin` nats and the subject preferred its own over the
/// reference's by at most as much; a margin that cannot be measured is not a near-tie.
pub fn first_divergence(
    reference: &[u32],
    subject: &[u32],
    reference_topk: &[Vec<(u32, f64)>],
    subject_lp_at: impl Fn(usize) -> Option<Vec<f64>>,
    tie_margin: Option<f64>,
) -> Divergence {
    let Some(p) = first_difference(reference, subject) else {
        return Divergence::none();
    };
    let (r, s) = (reference.get(p).copied(), subject.get(p).copied());
    let reference_margin = match (reference_topk.get(p), s) {
        (Some(e), Some(s)) => e
            .iter()
            .find(|(id, _)| *id == s)
            .and_then(|(_, lp)| e.first().map(|top| top.1 - lp)),
        _ => None,
    };
    let subject_margin = match (r, s, subject_lp_at(p)) {
        (Some(r), Some(s), Some(lp)) => match (lp.get(s as usize), lp.get(r as usize)) {
            (Some(own), Some(theirs)) => Some(own - theirs),
            _ => None,
        },
        _ => None,
    };
    let near_tie = tie_margin.map(|eps| matches!((reference_margin, subject_margin), (Some(a), Some(b)) if a <= eps && b <= eps));
    Divergence {
        position: Some(p),
        reference_margin,
        subject_margin,
        tie_margin,
        near_tie,
    }
}

/// Largest |a − b| over two sets of rows, and how many values were compared
/// (NaN-propagating: a NaN is never "close"; rows of different counts are infinitely far).
pub fn max_abs_delta(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, usize) {
    let mut worst = 0.0f64;
    let mut n = 0;
    for (ra, rb) in a.iter().zip(b) {
        for (&x, &y) in ra.iter().zip(rb) {
            let d = (x as f64 - y as f64).abs();
            if d.is_nan() {
                return (f64::NAN, n);
            }
            worst = worst.max(d);
            n += 1;
        }
    }
    if a.len() != b.len() {
        return (f64::INFINITY, n);
    }
    (worst, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_selects_what_a_full_sort_gives_ties_to_the_lower_id() {
        let mut r = crate::rng::SeededRng::new(7);
        for n in [1usize, 2, 5, 64, 1000] {
            // Few distinct values, so ties are everywhere.
            let lp: Vec<f64> = (0..n).map(|_| (r.below(7) as f64) - 3.0).collect();
            let mut full: Vec<u32> = (0..n as u32).collect();
            full.sort_by(|&a, &b| lp[b as usize].total_cmp(&lp[a as usize]).then(a.cmp(&b)));
            for k in [0, 1, 3, n / 2, n, n + 4] {
                assert_eq!(top_k(&lp, k), full[..k.min(n)].to_vec(), "n {n} k {k}");
            }
        }
    }

    #[test]
    fn identical_distributions_have_zero_kl() {
        let lp = log_softmax(&[1.0, 2.0, 3.0, 0.5]);
        let c = compare_full(&lp, &lp, 2);
        assert!(
            c.kl.abs() < 1e-12
                && c.top1_agree
                && c.topk_overlap == 1.0
                && c.max_abs_logprob_delta == 0.0
        );
        let oracle: Vec<(u32, f64)> = top_k(&lp, 2)
            .into_iter()
            .map(|i| (i, lp[i as usize]))
            .collect();
        let o = compare_to_oracle(&oracle, &lp);
        assert!(o.kl.abs() < 1e-12 && o.top1_agree);
    }

    #[test]
    fn a_swapped_top1_is_seen() {
        let a = log_softmax(&[3.0, 1.0, 0.0]);
        let b = log_softmax(&[1.0, 3.0, 0.0]);
        let c = compare_full(&a, &b, 1);
        assert!(!c.top1_agree && c.kl > 0.5 && c.dp < -0.5);
        let oracle = vec![(0u32, a[0]), (1, a[1])];
        let o = compare_to_oracle(&oracle, &b);
        assert!(!o.top1_agree && o.kl > 0.5 && (o.max_abs_logprob_delta - 2.0).abs() < 1e-9);
    }

    #[test]
    fn bucket_kl_matches_full_kl_when_k_is_the_vocab() {
        let a = log_softmax(&[0.3, 1.0, -2.0, 0.1]);
        let b = log_softmax(&[0.1, 1.5, -1.0, 0.0]);
        let oracle: Vec<(u32, f64)> = top_k(&a, 4)
            .into_iter()
            .map(|i| (i, a[i as usize]))
            .collect();
        assert!((compare_to_oracle(&oracle, &b).kl - compare_full(&a, &b, 4).kl).abs() < 1e-12);
    }

    #[test]
    fn nan_subject_is_infinitely_far() {
        let a = log_softmax(&[1.0, 2.0]);
        let b = log_softmax(&[f32::NAN, 2.0]);
        let c = compare_full(&a, &b, 2);
        assert!(c.kl.is_infinite() && !c.top1_agree);
        assert!(compare_to_oracle(&[(1, a[1])], &b).kl.is_infinite());
    }

    #[test]
    fn a_nan_reference_is_never_a_perfect_score() {
        // Before: `kl.max(0.0)` and `fold(0.0, f64::max)` turned the NaNs into 0.
        let a = log_softmax(&[f32::NAN, 2.0, 1.0]);
        let b = log_softmax(&[1.0, 2.0, 1.0]);
        let c = compare_full(&a, &b, 2);
        assert!(c.kl.is_nan() && c.max_abs_logprob_delta.is_nan(), "{c:?}");
        assert!(max_or_nan(0.0, f64::NAN).is_nan() && max_or_nan(f64::NAN, 1.0).is_nan());
        assert_eq!(max_or_nan(1.0, 2.0), 2.0);
    }

    /// Log-probabilities over 10 ids with the given values at some ids, the rest very low.
    fn lp(pairs: &[(usize, f64)]) -> Vec<f64> {
        let mut v = vec![-20.0; 10];
        for &(i, x) in pairs {
            v[i] = x;
        }
        v
    }

    #[test]
    fn divergence_and_near_tie() {
        let topk = vec![vec![(5, -0.1), (6, -2.5)], vec![(7, -0.69), (8, -0.70)]];
        let d = first_divergence(
            &[5, 7],
            &[5, 8],
            &topk,
            |_| Some(lp(&[(7, -0.70), (8, -0.68)])),
            Some(0.05),
        );
        assert_eq!(d.position, Some(1));
        assert!((d.reference_margin.unwrap() - 0.01).abs() < 1e-9);
        assert!((d.subject_margin.unwrap() - 0.02).abs() < 1e-9);
        assert_eq!(d.near_tie, Some(true));
        let far = first_divergence(
            &[5, 7],
            &[9, 7],
            &topk,
            |_| Some(lp(&[(9, -0.1)])),
            Some(0.05),
        );
        assert_eq!(
            (far.position, far.reference_margin, far.near_tie),
            (Some(0), None, Some(false))
        );
        assert_eq!(
            first_divergence(&[5], &[5], &topk, |_| None, Some(0.05)).position,
            None
        );
        assert_eq!(
            first_divergence(&[5, 7], &[5], &topk, |_| None, Some(0.05)).position,
            Some(1)
        );
    }

    #[test]
    fn both_tokens_in_each_others_top_k_is_not_a_near_tie() {
        // Before: a divergence was forgiven whenever each side's token was in the other's
        // top-k, here a 2.4-nat preference on both sides. Now only a margin within the
        // registered ε is.
        let topk = vec![vec![(5, -0.1), (6, -2.5)]];
        let subject = |_| Some(lp(&[(6, -0.1), (5, -2.5)]));
        let d = first_divergence(&[5], &[6], &topk, subject, Some(0.05));
        assert_eq!(d.near_tie, Some(false));
        assert!(
            (d.reference_margin.unwrap() - 2.4).abs() < 1e-9
                && (d.subject_margin.unwrap() - 2.4).abs() < 1e-9
        );
        // Within ε on one side only is not enough.
        let d = first_divergence(
            &[5],
            &[6],
            &topk,
            |_| Some(lp(&[(6, -0.1), (5, -0.12)])),
            Some(0.05),
        );
        assert_eq!(d.near_tie, Some(false));
        assert_eq!(
            first_divergence(&[5], &[6], &topk, subject, Some(2.5)).near_tie,
            Some(true)
        );
    }
}
