//! What a run tells the outside: [`Event`]s (each case `Started` and `Finished`, then the
//! run `Done`) delivered to [`Reporter`]s, and the reporters every driver shares: the
//! run's files (`report.json`, `summary.md`, `report.html`, tickets), tickets written the
//! moment a case fails, JUnit XML and GitHub's step summary.

use super::record::{merge_run, write_run, CaseRecord, Report, ReportError};
use crate::claim::Case;
use crate::fsutil::{atomic_write, FsError};
use std::path::{Path, PathBuf};

/// Something that happened in a run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A case is about to be judged (`index` counts from 0 in the order cases start).
    Started {
        /// The case about to be judged.
        case: &'a Case,
        /// How many started before it.
        index: usize,
        /// Cases in this run.
        total: usize,
    },
    /// A case was judged.
    Finished {
        /// Its record.
        record: &'a CaseRecord,
    },
    /// Every case was judged; the report holds them all.
    Done {
        /// The run's report.
        report: &'a Report,
    },
}

/// Follows a run. Cases may be judged on several threads at once (the claims harness
/// runs trials in parallel), so a reporter synchronises whatever it keeps.
pub trait Reporter: Send + Sync {
    /// Handles one event; an error is reported with the run, never swallowed.
    fn on(&self, event: &Event<'_>) -> Result<(), ReportError>;
}

/// Writes the run's files under `out` when it is done: `report.json`, `summary.md`,
/// `report.html` and one ticket per failed case (removing tickets of cases that no longer
/// fail). With `merge_plan`, the processes of one nextest run merge into one report of
/// that plan's cases.
pub struct RunFiles {
    /// The output folder.
    pub out: PathBuf,
    /// The plan's case names, when processes of one run merge their reports.
    pub merge_plan: Option<Vec<String>>,
}

impl Reporter for RunFiles {
    fn on(&self, event: &Event<'_>) -> Result<(), ReportError> {
        let Event::Done { report } = event else {
            return Ok(());
        };
        match &self.merge_plan {
            Some(plan) => merge_run(&self.out, (*report).clone(), plan).map(|_| ()),
            None => write_run(&self.out, report).map(|_| ()),
        }
    }
}

/// Writes a failed case's ticket into `dir` as soon as it fails, so a run stopped midway
/// still leaves it (and a failing test can name it).
pub struct Tickets {
    /// The tickets folder.
    pub dir: PathBuf,
    /// The environment tickets cite.
    pub environment: super::Environment,
}

impl Tickets {
    /// Where the ticket of `case` goes.
    pub fn path(&self, case: &str) -> PathBuf {
        self.dir.join(super::ticket_file_name(case))
    }
}

impl Reporter for Tickets {
    fn on(&self, event: &Event<'_>) -> Result<(), ReportError> {
        let Event::Finished { record } = event else {
            return Ok(());
        };
        match super::ticket_markdown(record, &self.environment) {
            Some(md) => Ok(atomic_write(&self.path(&record.name), md.as_bytes())?),
            None => Ok(()),
        }
    }
}

/// Writes JUnit XML of the report to `file` when the run is done.
pub struct Junit {
    /// The XML file.
    pub file: PathBuf,
}

impl Reporter for Junit {
    fn on(&self, event: &Event<'_>) -> Result<(), ReportError> {
        let Event::Done { report } = event else {
            return Ok(());
        };
        Ok(atomic_write(
            &self.file,
            super::junit_xml(report).as_bytes(),
        )?)
    }
}

/// Appends the summary matrix to `$GITHUB_STEP_SUMMARY` when GitHub Actions sets it, so
/// the matrix shows on the job's page.
pub struct StepSummary;

impl Reporter for StepSummary {
    fn on(&self, event: &Event<'_>) -> Result<(), ReportError> {
        let Event::Done { report } = event else {
            return Ok(());
        };
        let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
        else {
            return Ok(());
        };
        append(
            &path,
            format!("{}\n", super::summary_matrix(report)).as_bytes(),
        )
        .map_err(|source| FsError { path, source }.into())
    }
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}
