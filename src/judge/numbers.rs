//! `metric_repro` cases: one registered number (`claims/metrics/*.toml`) judged by
//! [`super::registered::judge`] on its records, a committed file or records generated from
//! a seeded SFT (each source × variant generated once per process, and the SFT once per
//! source version on disk).

use std::sync::Arc;

use super::registered::{evidence, judge, RegisteredNumber, Source};
use super::{Judge, JudgeError, Stop};
use crate::claim::Case;
use crate::fsutil::{sha256_hex, FileHash};
use crate::metrics::{
    read_records, records_jsonl, report, GenerationRecord, MetricsConfig, METRICS_FILE,
};
use crate::outcome::Outcome;

impl Judge {
    /// Judges one registered number: reads or generates its records, scores them under
    /// `configs/metrics.toml`, judges the number, and states the verdict as evidence. The
    /// evidence is judged again by the harness's rule; a disagreement is an error.
    pub(super) fn metric_repro(
        &self,
        case: &Case,
        num: &RegisteredNumber,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let cfg_path = self.project.path(METRICS_FILE);
        files.push(self.hash_input(&cfg_path)?);
        let cfg = MetricsConfig::load(&cfg_path)
            .map_err(|e| JudgeError::failed("metrics configuration", e))?;
        let source = num.source().map_err(Stop::rule)?;
        let mut records: Vec<GenerationRecord> = Vec::new();
        for v in num.variants() {
            records.extend(self.records_of(&source, v, files)?.iter().cloned());
            if let Source::File(_) = source {
                break; // a file holds every variant
            }
        }
        let sha = sha256_hex(records_jsonl(&records).as_bytes());
        let rep = report(&records, &sha, &cfg);
        let j = judge(num, &records, &rep, &cfg).map_err(Stop::rule)?;
        let path = format!(
            "records {} (sha256 {}), {} in {}/{}; metrics of configs/metrics.toml, {} bootstrap resamples, seed {}; {}",
            source.describe(),
            &sha[..16],
            j.n,
            num.model,
            num.variant,
            cfg.bootstrap.resamples,
            cfg.bootstrap.seed,
            j.verdict
        );
        let outcome = Outcome::judge(evidence(num, &j, path).map_err(Stop::rule)?);
        // Two statements of one rule must agree: registered::judge and the evidence's bound.
        let agree = match &outcome {
            Outcome::Pass(_) => j.passed,
            Outcome::Fail(_) => !j.passed,
            Outcome::Skip(_) | Outcome::Error { .. } => true,
        };
        if !agree {
            return Err(Stop::rule(format!(
                "case {}: the evidence says {} but the registered judgement says {} ({})",
                case.name,
                outcome.label(),
                if j.passed { "pass" } else { "fail" },
                j.verdict
            )));
        }
        Ok(outcome)
    }

    /// The records of `source` (for a file: all of them; generated: those of `variant`).
    fn records_of(
        &self,
        source: &Source,
        variant: &str,
        files: &mut Vec<FileHash>,
    ) -> Result<Arc<Vec<GenerationRecord>>, Stop> {
        match source {
            Source::File(p) => {
                let path = self.project.path(p);
                files.push(self.hash_input(&path)?);
                let key = (source.key(), String::new());
                self.records
                    .get_or(&key, || {
                        read_records(&path)
                            .map(|(r, _)| Arc::new(r))
                            .map_err(|e| JudgeError::failed("", e))
                    })
                    .map_err(Stop::Error)
            }
            Source::Generate(g) => {
                let key = (source.key(), variant.to_string());
                let records = self
                    .records
                    .get_or(&key, || {
                        crate::run::sft_records(&self.project, g, variant)
                            .map(Arc::new)
                            .map_err(|e| JudgeError::failed("generate records", e))
                    })
                    .map_err(Stop::Error)?;
                // The fine-tuned weights the records came from (trained or cached above).
                let run = crate::subject::ensure_sft(&self.project, &g.sft)
                    .map_err(|e| JudgeError::failed(format!("sft recipe '{}'", g.sft), e))?;
                files.push(self.hash_input(&run.dir.join("model.safetensors"))?);
                Ok(records)
            }
        }
    }
}
