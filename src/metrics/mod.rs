//! Structural fidelity and semantic correctness of reasoning traces, model-free: reads
//! [`GenerationRecord`] JSONL from any system and writes a [`MetricsReport`] (SF, SC,
//! theater = SF ∧ ¬SC, their gap, per-rule structural failures, entropy split by SC and
//! the AUROC of the model's own uncertainty as a predictor of a wrong answer). Public as a
//! toolkit: the records may come from any system, not only this harness's runs.

mod config;
mod record;
mod report;
mod score;
mod study;

#[cfg(test)]
mod tests;

pub use config::{AnswerRule, BootstrapConfig, MetricsConfig, Tags, METRICS_FILE};
pub use record::{
    parse_records, read_records, records_jsonl, write_records, Decoding, GenerationRecord,
    MAX_RECORDS_BYTES,
};
pub use report::{
    indicators, report, verdicts, Auroc, EntropySplit, GroupMetrics, Metric, MetricsReport, Rated,
    RecordVerdict, METRICS_FORMAT,
};
pub use score::{answers_equal, extract_answer, score, Rule, Score};
pub(crate) use study::{study_table, svg_vs_scale, svg_vs_variant, StudyCell};
