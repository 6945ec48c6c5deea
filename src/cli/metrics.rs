//! `groundtruth metrics`: SF, SC and theater of a GenerationRecord JSONL file.

use std::path::Path;

use anyhow::Result;

use crate::fsutil::atomic_write;
use crate::metrics::{read_records, report, verdicts, MetricsConfig, METRICS_FILE};
use crate::plan::EXIT_HOLDS;
use crate::project::Project;

/// What `groundtruth metrics` was asked.
pub(super) struct Request<'a> {
    pub records: &'a Path,
    pub config: Option<&'a Path>,
    pub out: Option<&'a Path>,
    pub json: bool,
    pub per_record: Option<&'a Path>,
}

/// Reads the records (every line checked before anything is computed or written), then
/// prints the table or the JSON and writes `--out` / `--per-record` atomically.
pub(super) fn run(project: &Project, req: &Request) -> Result<u8> {
    super::commands::given_file(
        req.records,
        "records",
        "a GenerationRecord JSONL file, as `groundtruth generate` writes",
    )?;
    let cfg_path = req
        .config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| project.path(METRICS_FILE));
    let cfg = MetricsConfig::load(&cfg_path)?;
    let (records, sha256) = read_records(req.records)?;
    let rep = report(&records, &sha256, &cfg);
    let json = rep.to_json();
    if let Some(out) = req.out {
        atomic_write(out, json.as_bytes())?;
    }
    if let Some(path) = req.per_record {
        let lines: String = verdicts(&records, &cfg)
            .iter()
            .map(|v| serde_json::to_string(v).unwrap_or_default() + "\n")
            .collect();
        atomic_write(path, lines.as_bytes())?;
    }
    match req.json {
        true => out!("{json}"),
        false => out!("{}", rep.table()),
    }
    Ok(EXIT_HOLDS)
}
