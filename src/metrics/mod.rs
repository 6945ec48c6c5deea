//! Structural fidelity and semantic correctness of reasoning traces, model-free: reads
//! [`GenerationRecord`] JSONL from any system and writes a [`MetricsReport`] (SF, SC,
//! theater = SF ∧ ¬SC, their gap, per-rule structural failures, entropy split by SC and
//! the AUROC of the model's own uncertainty as a predictor of a wrong answer).

mod config;
mod generate;
mod record;
mod registered;
mod report;
mod score;

#[cfg(test)]
mod registered_tests;
#[cfg(test)]
mod tests;

pub use config::{AnswerRule, BootstrapConfig, MetricsConfig, Tags, METRICS_FILE};
pub use generate::{
    generate_records, greedy_decoding, options_of, record_seed, GenerateError, Labels,
};
pub use record::{
    parse_records, read_records, records_jsonl, write_records, Decoding, GenerationRecord,
    MAX_RECORDS_BYTES,
};
pub use registered::{
    judge, parse_registered, registered_files, ticket, Form, GenerateSource, IntervalBound, Judged,
    Metric, RegisteredFile, RegisteredNumber, Source, REGISTERED_DIR,
};
pub use report::{
    report, verdicts, Auroc, EntropySplit, GroupMetrics, MetricsReport, Rated, RecordVerdict,
    METRICS_FORMAT,
};
pub use score::{answers_equal, extract_answer, score, Rule, Score};
