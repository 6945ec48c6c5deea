//! The report record: one JSON document per run, every case in it.

use super::environment::Environment;
use crate::fsutil::{atomic_write, FsError};
use crate::outcome::Outcome;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format tag of `report.json`.
pub const REPORT_FORMAT: &str = "groundtruth-report/1";

/// A file a case read, with its hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileHash {
    /// Path as given (relative to the project root when inside it).
    pub path: String,
    /// SHA-256, or a note when the file is generated in memory.
    pub sha256: String,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Stable case name.
    pub name: String,
    /// Claim id.
    pub claim_id: String,
    /// Claim kind.
    pub kind: String,
    /// The claim's statement.
    pub statement: String,
    /// The bound as written (`kl_mean <= 0.01`).
    pub criterion: String,
    /// Where the claim is registered (`claims/x.toml:12`).
    pub registered_at: String,
    /// Model name.
    pub model: String,
    /// Variant name.
    pub variant: String,
    /// Prompt id or `all`.
    pub scope: String,
    /// The outcome with its evidence.
    pub outcome: Outcome,
    /// Every file involved, hashed.
    pub files: Vec<FileHash>,
    /// Wall time of the case.
    pub seconds: f64,
    /// One line that reruns only this case.
    pub reproduce: String,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_FORMAT`].
    pub format: String,
    /// The suite that was run.
    pub suite: String,
    /// Seed of every seeded step (bootstrap, corruption choice).
    pub seed: u64,
    /// Where and with what it ran.
    pub environment: Environment,
    /// All cases, sorted by name.
    pub cases: Vec<CaseRecord>,
}

impl Report {
    /// (pass, fail, skip, error) counts.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for r in &self.cases {
            match r.outcome {
                Outcome::Pass(_) => c.0 += 1,
                Outcome::Fail(_) => c.1 += 1,
                Outcome::Skip(_) => c.2 += 1,
                Outcome::Error { .. } => c.3 += 1,
            }
        }
        c
    }
}

/// Why a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// I/O.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Not a report.
    #[error("{}: field '{field}': {msg}", file.display())]
    Schema {
        /// The file.
        file: PathBuf,
        /// Offending field.
        field: String,
        /// What is wrong.
        msg: String,
    },
}

/// Reports larger than this are refused (a run of 25,000 cases writes about 50 MB).
pub const MAX_REPORT_BYTES: u64 = 128 << 20;

/// Reads `report.json` (at most [`MAX_REPORT_BYTES`]).
pub fn read_report(path: &Path) -> Result<Report, ReportError> {
    let bytes = crate::fsutil::read_bounded(path, MAX_REPORT_BYTES)?;
    let r: Report = crate::input::parse_json(&bytes, path).map_err(|e| match e {
        crate::input::InputError::Schema { file, field, msg } => ReportError::Schema { file, field, msg },
        other => ReportError::Schema { file: path.to_path_buf(), field: String::new(), msg: other.to_string() },
    })?;
    if r.format != REPORT_FORMAT {
        return Err(ReportError::Schema { file: path.to_path_buf(), field: "format".into(), msg: format!("expected '{REPORT_FORMAT}'") });
    }
    Ok(r)
}

/// Writes `report.json`, `summary.md` and one ticket per failed case under `out`,
/// each atomically; stale tickets of cases that no longer fail are removed.
pub fn write_run(out: &Path, report: &Report) -> Result<Vec<PathBuf>, ReportError> {
    let json = serde_json::to_string_pretty(report).map_err(|e| ReportError::Schema { file: out.join("report.json"), field: String::new(), msg: e.to_string() })?;
    atomic_write(&out.join("report.json"), format!("{json}\n").as_bytes())?;
    atomic_write(&out.join("summary.md"), super::summary_matrix(report).as_bytes())?;
    let tickets = out.join("tickets");
    let mut written = Vec::new();
    for case in &report.cases {
        let path = tickets.join(super::ticket_file_name(&case.name));
        match super::ticket_markdown(case, &report.environment) {
            Some(md) => {
                atomic_write(&path, md.as_bytes())?;
                written.push(path);
            }
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(written)
}

/// Merges a partial run (a filtered run, or one nextest process per case) into the
/// existing `report.json` of the same suite, replacing cases of the same name, then
/// writes it all as [`write_run`] does. A lock file serialises concurrent processes.
pub fn merge_run(out: &Path, partial: Report) -> Result<Report, ReportError> {
    let _lock = Lock::take(&out.join("report.lock"))?;
    let mut merged = match read_report(&out.join("report.json")) {
        Ok(old) if old.suite == partial.suite => old,
        _ => Report { cases: vec![], ..partial.clone() },
    };
    merged.environment = partial.environment;
    for case in partial.cases {
        merged.cases.retain(|c| c.name != case.name);
        merged.cases.push(case);
    }
    merged.cases.sort_by(|a, b| a.name.cmp(&b.name));
    write_run(out, &merged)?;
    Ok(merged)
}

struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock, ReportError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| FsError { path: dir.to_path_buf(), source })?;
        }
        for _ in 0..600 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(_) => return Ok(Lock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A process killed while holding the lock must not wedge every later run.
                    let stale = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age.as_secs() > 60);
                    if stale {
                        let _ = std::fs::remove_file(path);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => return Err(FsError { path: path.to_path_buf(), source }.into()),
            }
        }
        Err(FsError { path: path.to_path_buf(), source: std::io::Error::other("lock held for 30 s") }.into())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
