//! `corruption_sweep`: the claim's variants (one bit class and region, several severities)
//! each flipped at seeds `0..seeds` in the clean parent and measured against it with the
//! sweep's own measurement (`crate::sweep::Reference`, what `groundtruth sweep corrupt`
//! runs), over the first [`SWEEP_WINDOWS`] windows of the evaluation slice.

use super::{Judge, Stop};
use crate::claim::Case;
use crate::flipspec::Severity;
use crate::fsutil::FileHash;
use crate::outcome::Outcome;
use crate::run::Runtime;
use crate::stats::SweepStat;
use crate::sweep::{Damage, Reference};
use crate::transform::flip::Target;
use crate::variant::Variant;

/// Windows of `configs/eval.toml`'s slice a sweep scores (of its 8): 2 × 255 positions
/// tell a 10% perplexity rise or a 10× change of mean KL apart, at a quarter of the cost.
pub const SWEEP_WINDOWS: usize = 2;

/// A single flip is "vulnerable" when it raises perplexity by more than this factor (the
/// fault-injection literature's > 10%).
pub const VULNERABLE_PPL_RATIO: f64 = 1.1;

/// How many flipped points a sample's evidence names one by one.
const POINTS_NAMED: usize = 64;

impl Judge {
    pub(super) fn corruption_sweep(
        &self,
        case: &Case,
        stat: SweepStat,
        seeds: u64,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let Some(&head) = case.chain.first() else {
            return Err(Stop::rule("corruption_sweep case without variants"));
        };
        self.parent_holds(&case.model)?;
        let parent = self.subject(&case.model, head.parent(), Runtime::CPU_F32)?;
        files.extend(parent.files.iter().cloned());
        files.push(self.hash_file(&self.project.path(crate::project::EVAL_FILE))?);
        let slice = self.eval_slice()?;
        let reference = Reference::new(
            &parent.weights,
            parent.tokenizer.as_ref(),
            &slice,
            SWEEP_WINDOWS,
        )
        .map_err(|e| Stop::rule(format!("{} {}: {e}", case.model, head.parent())))?;
        let mut columns = Vec::with_capacity(case.chain.len());
        for &v in &case.chain {
            let Variant::Flip { spec, .. } = v else {
                return Err(Stop::rule(format!("'{v}' is not a seeded bit flip")));
            };
            let target = Target::class(spec.bits, spec.region);
            let points = (0..seeds)
                .map(|seed| reference.damage(&parent.weights, &target, spec.severity, seed))
                .collect::<Result<Vec<Damage>, _>>()
                .map_err(|e| Stop::rule(format!("{} {v}: {e}", case.model)))?;
            columns.push((spec.severity, points));
        }
        let observed = match stat {
            SweepStat::RateOrderViolations => rate_order_violations(&kl_columns(&columns))? as f64,
            SweepStat::VulnerableShare => vulnerable_share(&ppl_ratios(&columns))?,
        };
        let n = columns.iter().map(|(_, p)| p.len()).sum();
        let mut ev = self.evidence_for(case, observed, n, "");
        ev.also = match stat {
            SweepStat::RateOrderViolations => axis_summary(&columns),
            SweepStat::VulnerableShare => sample_summary(&columns),
        };
        ev.numerical_path = format!(
            "{}; each variant flipped in the parent {} ({}) at seeds 0..{seeds} and measured against it over the first {SWEEP_WINDOWS} windows of configs/eval.toml's slice ({} scored positions; clean perplexity {:.4}); degradation = mean KL (parent ‖ damaged); vulnerable = perplexity ratio > {VULNERABLE_PPL_RATIO}",
            parent.path,
            head.parent(),
            parent.weights_type,
            reference.positions(),
            reference.ppl
        );
        Ok(Outcome::judge(ev))
    }
}

fn kl_columns(columns: &[(Severity, Vec<Damage>)]) -> Vec<Vec<f64>> {
    columns
        .iter()
        .map(|(_, ps)| ps.iter().map(|d| d.kl_mean).collect())
        .collect()
}

fn ppl_ratios(columns: &[(Severity, Vec<Damage>)]) -> Vec<f64> {
    columns
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|d| d.ppl_ratio))
        .collect()
}

/// Pairs of severities (lower i, higher j) inverted beyond the seed spread: every seed of
/// j degrades less than every seed of i (`max(j) < min(i)`). Overlapping spreads are
/// not an inversion: the seeds cannot tell those severities apart. A NaN (a measurement
/// that failed) is an error, never a pair in or out of order; an infinite degradation
/// (a model that cannot score a token) is the largest there is.
pub(crate) fn rate_order_violations(columns: &[Vec<f64>]) -> Result<usize, Stop> {
    if columns.len() < 2 || columns.iter().any(Vec::is_empty) {
        return Err(Stop::rule(
            "a rate order needs at least two severities, each with a seed",
        ));
    }
    if columns.iter().flatten().any(|x| x.is_nan()) {
        return Err(Stop::rule("a sweep point's mean KL is NaN"));
    }
    let lo = |c: &Vec<f64>| c.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = |c: &Vec<f64>| c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut count = 0;
    for i in 0..columns.len() {
        for j in i + 1..columns.len() {
            if hi(&columns[j]) < lo(&columns[i]) {
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Share of the sample whose perplexity ratio exceeds [`VULNERABLE_PPL_RATIO`] (an
/// infinite ratio does); an empty sample or a NaN ratio is an error.
pub(crate) fn vulnerable_share(ratios: &[f64]) -> Result<f64, Stop> {
    if ratios.is_empty() {
        return Err(Stop::rule("a vulnerable share over no flips"));
    }
    if ratios.iter().any(|r| r.is_nan()) {
        return Err(Stop::rule("a sampled flip's perplexity ratio is NaN"));
    }
    let hit = ratios.iter().filter(|&&r| r > VULNERABLE_PPL_RATIO).count();
    Ok(hit as f64 / ratios.len() as f64)
}

/// Per severity: flips per seed, median and spread of mean KL and the perplexity ratio.
fn axis_summary(columns: &[(Severity, Vec<Damage>)]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (sev, ps) in columns {
        let s = sev.name();
        let kl = crate::sweep::Spread::of(&ps.iter().map(|d| d.kl_mean).collect::<Vec<_>>());
        let ppl = crate::sweep::Spread::of(&ps.iter().map(|d| d.ppl_ratio).collect::<Vec<_>>());
        out.push((
            format!("flips[{s}]"),
            ps.first().map_or(0.0, |d| d.flips.flips.len() as f64),
        ));
        out.push((format!("kl_mean_min[{s}]"), kl.min));
        out.push((format!("kl_mean_median[{s}]"), kl.median));
        out.push((format!("kl_mean_max[{s}]"), kl.max));
        out.push((format!("ppl_ratio_median[{s}]"), ppl.median));
    }
    out
}

/// The sample: how many were vulnerable, then each flip (what it changed) with its
/// perplexity ratio, the first [`POINTS_NAMED`] by name and a count of the rest.
fn sample_summary(columns: &[(Severity, Vec<Damage>)]) -> Vec<(String, f64)> {
    let all: Vec<&Damage> = columns.iter().flat_map(|(_, ps)| ps).collect();
    let hit = all
        .iter()
        .filter(|d| d.ppl_ratio > VULNERABLE_PPL_RATIO)
        .count();
    let mut out = vec![("vulnerable_flips".to_string(), hit as f64)];
    for d in all.iter().take(POINTS_NAMED) {
        let what = d.flips.describe().join("; ");
        out.push((
            format!("ppl_ratio[seed {}: {what}]", d.flips.seed),
            d.ppl_ratio,
        ));
    }
    if all.len() > POINTS_NAMED {
        out.push((
            "sampled_flips_not_named".to_string(),
            (all.len() - POINTS_NAMED) as f64,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inversion_counts_only_beyond_the_seed_spread() {
        // Degradation growing with rate, spreads overlapping: in order.
        let good = vec![
            vec![1e-4, 3e-4, 2e-3],
            vec![1e-3, 2e-3, 4e-3],
            vec![0.02, 0.05, 0.03],
        ];
        assert_eq!(rate_order_violations(&good).unwrap(), 0);
        // Planted: the middle rate degrades less than the lowest, beyond both spreads.
        let planted = vec![
            vec![0.01, 0.02, 0.015],
            vec![1e-4, 2e-4, 3e-4],
            vec![0.05, 0.06, 0.07],
        ];
        assert_eq!(rate_order_violations(&planted).unwrap(), 1);
        // A curve that falls everywhere: every pair.
        let falling = vec![vec![1.0, 1.1], vec![0.1, 0.2], vec![0.01, 0.02]];
        assert_eq!(rate_order_violations(&falling).unwrap(), 3);
        // A broken model (infinite degradation) at the higher rate is in order; at the
        // lower rate with a finite higher one it is an inversion.
        assert_eq!(
            rate_order_violations(&[vec![0.1], vec![f64::INFINITY]]).unwrap(),
            0
        );
        assert_eq!(
            rate_order_violations(&[vec![f64::INFINITY, f64::INFINITY], vec![0.1, 0.2]]).unwrap(),
            1
        );
        assert!(rate_order_violations(&[vec![0.1, f64::NAN], vec![0.2]]).is_err());
        assert!(rate_order_violations(&[vec![0.1]]).is_err());
        assert!(rate_order_violations(&[vec![0.1], vec![]]).is_err());
    }

    #[test]
    fn the_vulnerable_share_counts_ratios_above_ten_percent() {
        assert_eq!(vulnerable_share(&[1.0, 1.05, 1.1, 1.2]).unwrap(), 0.25);
        assert_eq!(vulnerable_share(&[f64::INFINITY, 1.0000001]).unwrap(), 0.5);
        assert!(vulnerable_share(&[]).is_err());
        assert!(vulnerable_share(&[1.0, f64::NAN]).is_err());
    }
}
