//! `structure`: a subject's GGUF file says what it is — metadata matching the config,
//! tensor types matching the declared quantization, no dead tensors, the same layout as
//! its parent's file, and two independent readers agreeing on all of it.

use super::{Judge, Stop};
use crate::claim::Case;
use crate::fsutil::FileHash;
use crate::inspect::findings;
use crate::outcome::Outcome;
use crate::stats::FileStat;
use crate::variant::Variant;

/// Problems quoted in the evidence; the statistic counts them all.
const QUOTED: usize = 5;

impl Judge {
    pub(super) fn structure(
        &self,
        case: &Case,
        stat: FileStat,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let base = self.base(&case.model)?;
        let file = self.variant_file(&case.model, case.variant)?;
        files.push(file.hash.clone());
        let cfg = &base.weights.config;
        let want = case.variant.storage().map(crate::transform::ggml_dtype);
        let problems = match stat {
            FileStat::ConfigMismatches => findings::config_mismatches(&file.insp, cfg),
            FileStat::DtypeMismatches => findings::dtype_mismatches(&file.insp, cfg, want),
            FileStat::BadTensors => findings::bad_tensors(&file.insp),
            FileStat::ReaderDisagreements => match &file.insp.reader_failure {
                // A read that failed compared nothing: an error, never a disagreement.
                Some(why) => {
                    return Err(Stop::rule(format!(
                        "{}: gguf-rs's reading could not be compared: {why}",
                        file.hash.path
                    )))
                }
                None => file.insp.reader_disagreements.clone(),
            },
            FileStat::LayoutMismatches => {
                let parent = self.variant_file(&case.model, Variant::Base)?;
                files.push(parent.hash.clone());
                findings::layout_mismatches(&parent.insp, &file.insp)
            }
        };
        let mut ev = self.evidence_for(case, problems.len() as f64, file.insp.tensor_count, "");
        let quoted: Vec<&str> = problems.iter().take(QUOTED).map(String::as_str).collect();
        let more = problems.len().saturating_sub(QUOTED);
        ev.numerical_path = format!(
            "{} ({} tensors, {}) read by candle and gguf-rs{}{}{}",
            file.hash.path,
            file.insp.tensor_count,
            file.insp
                .dtypes
                .iter()
                .map(|(t, n)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", "),
            if file.notes.is_empty() {
                String::new()
            } else {
                format!("; written with {}", file.notes.join("; "))
            },
            if quoted.is_empty() {
                String::new()
            } else {
                format!("; problems: {}", quoted.join("; "))
            },
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            },
        );
        Ok(Outcome::judge(ev))
    }
}
