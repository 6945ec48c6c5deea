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
    let q_of = |id: u32| subject_lp.get(id as usize).copied().unwrap_or(f64::NEG_INFINITY);
    let mut kl = 0.0;
    let (mut p_mass, mut q_mass) = (0.0, 0.0);
    let mut max_abs = 0.0f64;
    for &(id, lp) in oracle {
        let p = lp.exp();
        let q_lp = q_of(id);
        p_mass += p;
        q_mass += q_lp.exp();
        kl += p * (lp - q_lp);
        max_abs = max_abs.max((lp - q_lp).abs());
    }
    kl += bucket_term(1.0 - p_mass, 1.0 - q_mass);
    let subject_top = top_k(subject_lp, k);
    let overlap = oracle.iter().filter(|(id, _)| subject_top.contains(id)).count() as f64 / k.max(1) as f64;
    let top1 = oracle.first().map(|&(id, _)| id);
    PositionCompare {
        kl: kl.max(0.0),
        top1_agree: top1 == subject_top.first().copied(),
        topk_overlap: overlap,
        max_abs_logprob_delta: max_abs,
        dp: top1.map(|id| q_of(id).exp() - oracle[0].1.exp()).unwrap_or(f64::NAN),
    }
}

/// A subject whose distribution holds NaN (an overflowed activation) is infinitely far
/// from any reference: damage that breaks the arithmetic is the most visible damage there is.
fn non_finite(subject_lp: &[f64], reference_top1_p: f64) -> Option<PositionCompare> {
    subject_lp.iter().any(|x| x.is_nan() || *x == f64::INFINITY).then_some(PositionCompare {
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
    let ref_top = top_k(reference_lp, 1).first().map(|&i| reference_lp[i as usize].exp()).unwrap_or(1.0);
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
    let max_abs = rt.iter().map(|&id| (reference_lp[id as usize] - subject_lp[id as usize]).abs()).fold(0.0, f64::max);
    let r1 = rt[0] as usize;
    PositionCompare {
        kl: kl.max(0.0),
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
    /// The reference's top-1 minus top-2 log-probability there.
    pub reference_margin: Option<f64>,
    /// Each side's token is inside the other's top-k there (vLLM's near-tie rule).
    pub near_tie: Option<bool>,
}

/// Compares two greedy continuations. `reference_topk[i]` is the reference's top-k at
/// position i; `subject_topk_at` gives the subject's top-k ids at position i under the
/// reference's prefix (identical up to the divergence, so teacher-forced values are exact).
pub fn first_divergence(
    reference: &[u32],
    subject: &[u32],
    reference_topk: &[Vec<(u32, f64)>],
    subject_topk_at: impl Fn(usize) -> Option<Vec<u32>>,
) -> Divergence {
    let n = reference.len().min(subject.len());
    let pos = (0..n).find(|&i| reference[i] != subject[i]).or((reference.len() != subject.len()).then_some(n));
    let Some(p) = pos else {
        return Divergence { position: None, reference_margin: None, near_tie: None };
    };
    let entry = reference_topk.get(p);
    let margin = entry.and_then(|e| (e.len() >= 2).then(|| e[0].1 - e[1].1));
    let near_tie = match (entry, subject.get(p), reference.get(p), subject_topk_at(p)) {
        (Some(e), Some(s), Some(r), Some(st)) => Some(e.iter().any(|(id, _)| id == s) && st.contains(r)),
        _ => Some(false),
    };
    Divergence { position: Some(p), reference_margin: margin, near_tie }
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
        assert!(c.kl.abs() < 1e-12 && c.top1_agree && c.topk_overlap == 1.0 && c.max_abs_logprob_delta == 0.0);
        let oracle: Vec<(u32, f64)> = top_k(&lp, 2).into_iter().map(|i| (i, lp[i as usize])).collect();
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
        let oracle: Vec<(u32, f64)> = top_k(&a, 4).into_iter().map(|i| (i, a[i as usize])).collect();
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
    fn divergence_and_near_tie() {
        let topk = vec![vec![(5, -0.1), (6, -2.5)], vec![(7, -0.69), (8, -0.70)]];
        let d = first_divergence(&[5, 7], &[5, 8], &topk, |_| Some(vec![8, 7]));
        assert_eq!(d.position, Some(1));
        assert!((d.reference_margin.unwrap() - 0.01).abs() < 1e-9);
        assert_eq!(d.near_tie, Some(true));
        let far = first_divergence(&[5, 7], &[9, 7], &topk, |_| Some(vec![9]));
        assert_eq!((far.position, far.near_tie), (Some(0), Some(false)));
        assert_eq!(first_divergence(&[5], &[5], &topk, |_| None).position, None);
        assert_eq!(first_divergence(&[5, 7], &[5], &topk, |_| None).position, Some(1));
    }
}
