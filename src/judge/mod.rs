//! Judging cases: run the subject, measure the claim's statistic, compare with its bound.
//!
//! [`Judge`] holds everything the cases of one run share (registry, claims, prompt sets,
//! loaded subjects and their logits), so each model is loaded once per process.

mod consistency;
mod context;
mod drift;
pub mod eval;
mod files;
mod order;
mod parity;
mod reference;
mod roundtrip;
mod structure;
mod train;
pub mod ppl;

pub use context::{Judge, SkipPolicy, FORBID_SKIP_VAR};
pub(crate) use parity::stored_as_matches;
pub use reference::{differing_blocks, FIXTURE_DIR};

use crate::claim::{Case, ClaimKind};
use crate::outcome::Outcome;
use crate::report::CaseRecord;
use std::time::Instant;

impl Judge {
    /// Runs one case and records its outcome, evidence and every file involved.
    pub fn run(&self, case: &Case) -> CaseRecord {
        let t0 = Instant::now();
        let mut files = Vec::new();
        let outcome = self.policy.enforce(match self.dispatch(case, &mut files) {
            Ok(o) => o,
            Err(Stop::Skip(r)) => Outcome::Skip(r),
            Err(Stop::Error(message)) => Outcome::Error { message },
        });
        files.sort();
        files.dedup();
        let c = &case.claim.claim;
        CaseRecord {
            name: case.name.clone(),
            claim_id: c.id.clone(),
            kind: c.kind.name().into(),
            statement: c.statement.trim().into(),
            criterion: c.bound.render(),
            registered_at: format!("{}:{}", self.project.display(&case.claim.file), case.claim.line),
            basis: c.basis,
            model: case.model.clone(),
            variant: case.variant.to_string(),
            scope: case.scope(),
            outcome,
            files,
            seconds: t0.elapsed().as_secs_f64(),
            reproduce: match &self.reproduce {
                Some(cmd) => cmd.replace("{case}", &case.name),
                None => format!("GROUNDTRUTH_SUITE={} cargo test --release --test claims -- --exact '{}'", self.suite, case.name),
            },
        }
    }

    fn dispatch(&self, case: &Case, files: &mut Vec<crate::report::FileHash>) -> Result<Outcome, Stop> {
        files.push(self.hash_input(&case.claim.file)?);
        match case.claim.claim.kind {
            ClaimKind::TokenizerParity => self.tokenizer_parity(case, files),
            ClaimKind::GreedyParity => self.greedy_parity(case, files),
            ClaimKind::OracleParity | ClaimKind::OracleDrift => self.oracle_parity(case, files),
            ClaimKind::QuantDrift | ClaimKind::CorruptionDetect => self.drift(case, files),
            ClaimKind::Consistency => self.consistency(case, files),
            ClaimKind::Determinism => self.determinism(case, files),
            ClaimKind::QuantOrder => self.quant_order(case, files),
            ClaimKind::ReferenceAgreement => self.reference_agreement(case, files),
            ClaimKind::RoundTrip => self.round_trip(case, files),
            ClaimKind::Structure => self.structure(case, files),
            ClaimKind::TrainSanity => self.train_sanity(case, files),
        }
    }
}

/// Why a case stopped before a verdict.
pub(crate) enum Stop {
    Skip(crate::outcome::SkipReason),
    Error(String),
}

impl From<crate::subject::SubjectError> for Stop {
    fn from(e: crate::subject::SubjectError) -> Stop {
        match e {
            crate::subject::SubjectError::Missing { path, fetch } => Stop::Skip(crate::outcome::SkipReason::ModelMissing { path, fetch }),
            crate::subject::SubjectError::Invalid(m) => Stop::Error(m),
        }
    }
}

impl From<candle_core::Error> for Stop {
    fn from(e: candle_core::Error) -> Stop {
        Stop::Error(format!("candle: {e}"))
    }
}
