//! The report record: one JSON document per run, every case in it.

use super::environment::Environment;
use crate::claim::Case;
use crate::fsutil::{atomic_write, FileHash, FsError};
use crate::input::InputError;
use crate::judge::Verdict;
use crate::outcome::Outcome;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format tag of `report.json`. Version 2 names the evidence's prose about the numerical
/// path `numerical_path` (version 1: `path`).
pub const REPORT_FORMAT: &str = "groundtruth-report/2";

/// Formats [`read_report`] accepts: this one, and version 1, whose only difference (the
/// evidence key `path`) `Evidence` reads through a serde alias.
const READABLE_FORMATS: [&str; 2] = [REPORT_FORMAT, "groundtruth-report/1"];

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
    /// Whether the bound is a prediction (`prior`) or was written after seeing numbers
    /// (`observed`).
    pub basis: crate::claim::Basis,
    /// Model name.
    pub model: String,
    /// Variant name.
    pub variant: String,
    /// Runtime label (`cpu`, `cuda`, `cuda-bf16`…); reports written before runtimes were a
    /// case dimension have none, and their cases ran on the CPU in f32.
    #[serde(default = "cpu_label", skip_serializing_if = "is_cpu_label")]
    pub runtime: String,
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

fn cpu_label() -> String {
    crate::runtime::Runtime::CPU.label().to_string()
}

fn is_cpu_label(s: &str) -> bool {
    s == crate::runtime::Runtime::CPU.label()
}

impl CaseRecord {
    /// The variant, with `@runtime` when it ran anywhere but the CPU in f32 (`base@cuda`):
    /// what a ticket, a fingerprint and the matrices name as the subject.
    pub fn subject_label(&self) -> String {
        match is_cpu_label(&self.runtime) {
            true => self.variant.clone(),
            false => format!("{}@{}", self.variant, self.runtime),
        }
    }

    /// The record of `case` judged as `verdict`: `registered_at` names the claim's file and
    /// line as the reader should see them, `reproduce` is the one line that reruns it.
    pub fn new(
        case: &Case,
        verdict: Verdict,
        registered_at: String,
        reproduce: String,
    ) -> CaseRecord {
        let c = &case.claim;
        CaseRecord {
            name: case.name.clone(),
            claim_id: c.id.clone(),
            kind: c.kind.name().into(),
            statement: c.statement.trim().into(),
            criterion: c.criterion(),
            registered_at,
            basis: c.basis,
            model: case.model.clone(),
            variant: case.variant.to_string(),
            runtime: case.runtime.label().to_string(),
            scope: case.scope(),
            outcome: verdict.outcome,
            files: verdict.files,
            seconds: verdict.seconds,
            reproduce,
        }
    }
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
    /// Which run wrote it: nextest's `NEXTEST_RUN_ID` for the processes of one nextest
    /// run, else an id of its own. Only reports of the same run are merged.
    #[serde(default)]
    pub run: String,
    /// How many cases the suite's plan holds.
    #[serde(default)]
    pub planned: usize,
    /// Some planned cases are not in this report (a filtered run, or nextest processes
    /// still to come): its verdict covers only the cases it holds.
    #[serde(default)]
    pub partial: bool,
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
pub type ReportError = crate::input::JsonFileError;

/// Reports larger than this are refused (a run of 25,000 cases writes about 50 MB).
pub const MAX_REPORT_BYTES: u64 = 128 << 20;

/// Reads `report.json` (at most [`MAX_REPORT_BYTES`]).
pub fn read_report(path: &Path) -> Result<Report, ReportError> {
    let bytes = crate::fsutil::read_bounded(path, MAX_REPORT_BYTES)?;
    let r: Report = crate::input::parse_json(&bytes, path)?;
    if !READABLE_FORMATS.contains(&r.format.as_str()) {
        return Err(InputError::field(
            path,
            "format",
            format!("expected '{}'", READABLE_FORMATS.join("' or '")),
        )
        .into());
    }
    Ok(r)
}

/// Writes `report.json`, `summary.md`, `report.html` and one ticket per failed case under
/// `out`, each atomically; tickets of cases that do not fail in this report are removed, so
/// the folder never shows a failure the report does not hold.
pub fn write_run(out: &Path, report: &Report) -> Result<Vec<PathBuf>, ReportError> {
    crate::input::write_json(&out.join("report.json"), report)?;
    atomic_write(
        &out.join("summary.md"),
        super::summary_matrix(report).as_bytes(),
    )?;
    let page = super::html::report_html(report, &super::html::run_plots(out, report));
    atomic_write(&out.join("report.html"), page.as_bytes())?;
    let tickets = out.join("tickets");
    let mut written = Vec::new();
    for case in &report.cases {
        if let Some(md) = super::ticket_markdown(case, &report.environment) {
            let path = tickets.join(super::ticket_file_name(&case.name));
            atomic_write(&path, md.as_bytes())?;
            written.push(path);
        }
    }
    if let Ok(entries) = std::fs::read_dir(&tickets) {
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_some_and(|x| x == "md") && !written.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(written)
}

/// Merges one process's cases into the `report.json` of the same run (nextest runs one
/// process per case; they share `run`), keeping only cases of the current plan, then
/// writes it all as [`write_run`] does. A report of another run or suite is replaced,
/// never merged: a pass from an older build must not stand in for a case not rerun. A
/// lock file serialises concurrent processes.
pub fn merge_run(out: &Path, partial: Report, plan: &[String]) -> Result<Report, ReportError> {
    let _lock = Lock::take(&out.join("report.lock"))?;
    let mut merged = match read_report(&out.join("report.json")) {
        Ok(old) if old.suite == partial.suite && old.run == partial.run => old,
        _ => Report {
            cases: vec![],
            ..partial.clone()
        },
    };
    merged.environment = partial.environment;
    for case in partial.cases {
        merged.cases.retain(|c| c.name != case.name);
        merged.cases.push(case);
    }
    let planned: std::collections::BTreeSet<&str> = plan.iter().map(String::as_str).collect();
    merged.cases.retain(|c| planned.contains(c.name.as_str()));
    merged.cases.sort_by(|a, b| a.name.cmp(&b.name));
    merged.planned = planned.len();
    merged.partial = merged.cases.len() < merged.planned;
    write_run(out, &merged)?;
    Ok(merged)
}

struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock, ReportError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| FsError {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        for _ in 0..600 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(_) => return Ok(Lock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A process killed while holding the lock must not wedge every later run.
                    let stale = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > 60);
                    if stale {
                        let _ = std::fs::remove_file(path);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(FsError {
                        path: path.to_path_buf(),
                        source,
                    }
                    .into())
                }
            }
        }
        Err(FsError {
            path: path.to_path_buf(),
            source: std::io::Error::other("lock held for 30 s"),
        }
        .into())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::ticket::tests::{env, failed_case};
    use super::*;

    fn run(id: &str, names: &[&str]) -> Report {
        let cases = names
            .iter()
            .map(|n| CaseRecord {
                name: n.to_string(),
                ..failed_case()
            })
            .collect();
        Report {
            format: REPORT_FORMAT.into(),
            suite: "ci".into(),
            seed: 0,
            environment: env(),
            run: id.into(),
            planned: 0,
            partial: false,
            cases,
        }
    }

    fn names(r: &Report) -> Vec<&str> {
        r.cases.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_version_1_report_reads_with_its_path_key_and_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        let now = serde_json::to_string(&run("x", &["a"])).unwrap();
        assert!(now.contains("\"numerical_path\"") && now.contains(REPORT_FORMAT));
        let v1 = now
            .replace("\"numerical_path\"", "\"path\"")
            .replace(REPORT_FORMAT, "groundtruth-report/1");
        std::fs::write(&file, &v1).unwrap();
        let back = read_report(&file).unwrap();
        assert_eq!(back.cases, run("x", &["a"]).cases);
        std::fs::write(&file, now.replace(REPORT_FORMAT, "groundtruth-report/9")).unwrap();
        let err = read_report(&file).unwrap_err().to_string();
        assert!(err.contains("format") && err.contains("report/2"), "{err}");
    }

    #[test]
    fn merging_keeps_this_runs_cases_of_the_current_plan_only() {
        let dir = tempfile::tempdir().unwrap();
        let plan: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        // An older run holds "a" and a case the plan no longer has: neither survives.
        write_run(dir.path(), &run("old", &["a", "gone"])).unwrap();
        let r = merge_run(dir.path(), run("new", &["b"]), &plan).unwrap();
        assert_eq!((names(&r), r.partial, r.planned), (vec!["b"], true, 3));
        // Processes of the same run merge; the report stops being partial when all ran.
        let r = merge_run(dir.path(), run("new", &["a", "c"]), &plan).unwrap();
        assert_eq!((names(&r), r.partial), (vec!["a", "b", "c"], false));
        let on_disk = read_report(&dir.path().join("report.json")).unwrap();
        assert_eq!(on_disk, r);
        // Tickets mirror the report: the older run's "gone" ticket is removed.
        let mut tickets: Vec<String> = std::fs::read_dir(dir.path().join("tickets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        tickets.sort();
        assert_eq!(tickets, ["a.md", "b.md", "c.md"]);
    }

    #[test]
    fn a_case_outside_the_plan_is_dropped_even_from_this_run() {
        let dir = tempfile::tempdir().unwrap();
        let r = merge_run(dir.path(), run("x", &["a", "stray"]), &["a".to_string()]).unwrap();
        assert_eq!((names(&r), r.partial), (vec!["a"], false));
    }
}
