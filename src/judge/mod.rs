//! Judging cases: run the subject, measure the claim's statistic, compare with its bound.
//!
//! [`Judge`] holds everything the cases of one run share (registry, claims, prompt sets,
//! loaded subjects and their logits), so each model is loaded once per process.

mod consistency;
mod context;
mod drift;
mod error;
mod files;
mod numbers;
mod order;
mod parity;
mod reference;
pub(crate) mod registered;
#[cfg(test)]
mod registered_tests;
mod roundtrip;
mod structure;
mod sweep;
mod train;

pub use context::{Judge, SkipPolicy, FORBID_SKIP_VAR};
pub(crate) use error::JudgeError;
pub(crate) use error::{Context, Stop};

use crate::claim::{Case, Kind};
use crate::fsutil::FileHash;
use crate::outcome::Outcome;
use std::time::Instant;

/// What judging one case gave: the outcome (with its evidence), every file involved,
/// hashed, and the wall time. The runner turns it into a report's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Pass, fail, skip or error.
    pub outcome: Outcome,
    /// Every file involved, hashed, sorted.
    pub files: Vec<FileHash>,
    /// Wall time.
    pub seconds: f64,
}

impl Judge {
    /// Judges one case.
    pub fn judge(&self, case: &Case) -> Verdict {
        let t0 = Instant::now();
        let mut files = Vec::new();
        let outcome = self.policy.enforce(match self.dispatch(case, &mut files) {
            Ok(o) => o,
            Err(Stop::Skip(r)) => Outcome::Skip(r),
            Err(Stop::Error(e)) => Outcome::Error { message: e.chain() },
        });
        files.sort();
        files.dedup();
        Verdict {
            outcome,
            files,
            seconds: t0.elapsed().as_secs_f64(),
        }
    }

    fn dispatch(&self, case: &Case, files: &mut Vec<FileHash>) -> Result<Outcome, Stop> {
        files.push(self.hash_input(&case.claim.file)?);
        match &case.claim.kind {
            Kind::TokenizerParity => self.tokenizer_parity(case, files),
            Kind::GreedyParity {
                stored_as,
                tie_margin,
            } => self.greedy_parity(case, stored_as, *tie_margin, files),
            Kind::OracleParity { stored_as, stat } | Kind::OracleDrift { stored_as, stat } => {
                self.oracle_parity(case, stored_as, *stat, files)
            }
            Kind::QuantDrift(stat) | Kind::CorruptionDetect(stat) => self.drift(case, *stat, files),
            Kind::Consistency(paths, stat) => self.consistency(case, *paths, *stat, files),
            Kind::Determinism => self.determinism(case, files),
            Kind::QuantOrder(stat) => self.quant_order(case, *stat, files),
            Kind::ReferenceAgreement => self.reference_agreement(case, files),
            Kind::RoundTrip(via) => self.round_trip(case, *via, files),
            Kind::Structure(stat) => self.structure(case, *stat, files),
            Kind::TrainSanity(check) => self.train_sanity(case, *check, files),
            Kind::CorruptionSweep { stat, seeds } => {
                self.corruption_sweep(case, *stat, *seeds, files)
            }
            Kind::MetricRepro(num) => self.metric_repro(case, num, files),
        }
    }
}
