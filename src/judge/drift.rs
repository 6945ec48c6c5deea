//! Variant vs parent: quantization drift and corruption detection.

use super::{Judge, Stop};
use crate::claim::{Case, ClaimKind};
use crate::outcome::{Outcome, SkipReason};
use crate::report::FileHash;
use crate::stats::{compare_full, log_softmax, SetStats};
use crate::variant::Variant;
use std::sync::Arc;

/// How many of the reference's most likely tokens top-k overlap and Δ are taken over.
const DRIFT_TOP_K: usize = 10;

impl Judge {
    pub(super) fn drift(&self, case: &Case, files: &mut Vec<FileHash>) -> Result<Outcome, Stop> {
        self.parent_holds(&case.model)?;
        let parent = self.subject(&case.model, Variant::Base, false)?;
        let subject = self.subject(&case.model, case.variant, false)?;
        files.extend(subject.files.iter().cloned());
        if let Some(o) = self.oracle(&case.model)? {
            files.push(o.1.clone());
        }
        let a = self.rows(&case.model, Variant::Base)?;
        let b = self.rows(&case.model, case.variant)?;
        let mut positions = Vec::new();
        for (ra, rb) in a.iter().zip(b.iter()) {
            for (x, y) in ra.iter().zip(rb) {
                positions.push(compare_full(&log_softmax(x), &log_softmax(y), DRIFT_TOP_K));
            }
        }
        let stats = SetStats::of(&positions);
        let mut ev = self.set_evidence(case, &stats, &subject);
        ev.path = format!("{} vs parent {} on the same path", ev.path, parent.weights_type);
        Ok(Outcome::judge(ev))
    }

    /// Drift from a broken parent proves nothing: every registered `oracle_parity` claim
    /// on the model's stored weights must hold first.
    fn parent_holds(&self, model: &str) -> Result<(), Stop> {
        let preconditions: Vec<_> = self
            .claims
            .iter()
            .filter(|r| r.claim.kind == ClaimKind::OracleParity && r.claim.subjects.models.iter().any(|m| m == model))
            .filter(|r| r.claim.subjects.variants.iter().any(|v| v == "base"))
            .collect();
        for r in preconditions {
            let pre = Case {
                name: format!("{}/{model}/base/all/{}", r.claim.kind.name(), r.claim.id),
                claim: Arc::new(r.clone()),
                model: model.to_string(),
                variant: Variant::Base,
                prompt: None,
            };
            let record = self.verdict_of(&pre);
            match &record.outcome {
                Outcome::Pass(_) => {}
                Outcome::Fail(e) => {
                    return Err(Stop::Skip(SkipReason::PreconditionFailed { what: format!("parent fails {} ({})", r.claim.id, e.summary()) }))
                }
                Outcome::Skip(reason) => return Err(Stop::Skip(SkipReason::PreconditionFailed { what: format!("parent check {} skipped: {reason}", r.claim.id) })),
                Outcome::Error { message } => return Err(Stop::Error(format!("parent check {}: {message}", r.claim.id))),
            }
        }
        Ok(())
    }
}
