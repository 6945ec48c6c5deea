//! `quant_order`: along a chain of storage types listed with more bits first, drift from
//! the parent never decreases.
//!
//! Judged only when the chain's first variant (the one with the most bits) passes every
//! teacher-forced `quant_drift` claim registered for it: when the int8 variant is itself
//! broken, "int8 drifts no more than int4" would compare two broken models, so the case
//! skips instead of passing vacuously.

use super::{Judge, Stop};
use crate::claim::{Case, ClaimKind, Statistic};
use crate::outcome::{Outcome, SkipReason};
use crate::report::FileHash;
use crate::variant::Variant;

/// The statistics measured on the same teacher-forced positions as the chain itself: a
/// head's perplexity or free-running bounds are other measurements (and far costlier).
const TEACHER_FORCED: [Statistic; 6] = [Statistic::KlMean, Statistic::KlMedian, Statistic::KlP99, Statistic::KlMax, Statistic::Top1Agreement, Statistic::RmsDp];

impl Judge {
    pub(super) fn quant_order(&self, case: &Case, files: &mut Vec<FileHash>) -> Result<Outcome, Stop> {
        let Some(&head) = case.chain.first() else { return Err(Stop::Error("quant_order case without a chain".into())) };
        self.parent_holds(&case.model)?;
        self.head_holds(&case.model, head)?;
        let mut kl = Vec::with_capacity(case.chain.len());
        let mut mismatches = Vec::with_capacity(case.chain.len());
        let mut n = 0;
        for &v in &case.chain {
            let subject = self.subject(&case.model, v, false)?;
            files.extend(subject.files.iter().cloned());
            let s = self.drift_stats(&case.model, v)?;
            n = s.n;
            kl.push(s.kl.mean);
            mismatches.push(((1.0 - s.top1_agreement) * s.n as f64).round());
        }
        let pairs = (0..case.chain.len()).flat_map(|i| (i + 1..case.chain.len()).map(move |j| (i, j)));
        let observed = match case.claim.claim.bound.statistic {
            Statistic::KlOrderViolations => pairs.filter(|&(i, j)| kl[i] > kl[j] || kl[i].is_nan() || kl[j].is_nan()).count() as f64,
            Statistic::Top1MismatchExcess => pairs.map(|(i, j)| mismatches[i] - mismatches[j]).fold(f64::NEG_INFINITY, f64::max),
            other => return Err(Stop::Error(format!("statistic {} is not a quant_order statistic", other.name()))),
        };
        let mut ev = self.evidence_for(case, observed, n, "");
        for (i, v) in case.chain.iter().enumerate() {
            ev.also.push((format!("kl_mean[{v}]"), kl[i]));
            ev.also.push((format!("top1_mismatches[{v}]"), mismatches[i]));
        }
        let chain: Vec<String> = case.chain.iter().map(|v| v.to_string()).collect();
        ev.path = format!("teacher-forced drift of each of {} (more bits first) from the parent over the same {n} positions, compared pairwise", chain.join(", "));
        Ok(Outcome::judge(ev))
    }

    /// Every registered, unretired teacher-forced `quant_drift` claim on (model, head) must
    /// pass, and there must be at least one.
    fn head_holds(&self, model: &str, head: Variant) -> Result<(), Stop> {
        let name = head.to_string();
        let own: Vec<_> = self
            .claims
            .iter()
            .filter(|r| r.claim.kind == ClaimKind::QuantDrift && r.claim.retired.is_none() && TEACHER_FORCED.contains(&r.claim.bound.statistic))
            .filter(|r| r.claim.subjects.models.iter().any(|m| m == model) && r.claim.subjects.variants.contains(&name))
            .collect();
        if own.is_empty() {
            return Err(Stop::Skip(SkipReason::PreconditionFailed { what: format!("no quant_drift claim is registered for {model} {name}, so nothing shows it is not broken itself") }));
        }
        for r in own {
            self.require(r, model, head, &format!("{name}, the chain's head,"))?;
        }
        Ok(())
    }
}
