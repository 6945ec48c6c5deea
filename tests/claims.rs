//! The claims harness: every case of the selected suite (`GROUNDTRUTH_SUITE`, default
//! `ci`) is one trial, so `cargo test`, `--list`, filters, `--exact`, `--format json`
//! and `cargo nextest` (one process per case) all work. A skipped case shows as ignored
//! with its reason (under `GROUNDTRUTH_FORBID_SKIP=1` any skip but "no device" is an
//! error instead); a falsified one prints its evidence and ticket path.

use groundtruth::outcome::Outcome;
use groundtruth::plan::{plan, report, EXIT_BAD_INPUT};
use groundtruth::project::Project;
use groundtruth::report::{merge_run, ticket_file_name, ticket_markdown, write_run, CaseRecord, Environment};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let project = Project::from_manifest();
    let suite = std::env::var("GROUNDTRUTH_SUITE").unwrap_or_else(|_| "ci".into());
    let plan = match plan(&project, &suite) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("groundtruth: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let out = project.out_dir();
    let records: Arc<Mutex<Vec<CaseRecord>>> = Arc::default();
    let env = Environment::current();
    let trials: Vec<Trial> = plan
        .cases
        .iter()
        .cloned()
        .map(|case| {
            let (judge, records, out, env) = (plan.judge.clone(), records.clone(), out.clone(), env.clone());
            let kind = case.claim.kind.name();
            Trial::ignorable_test(case.name.clone(), move || {
                let rec = judge.run(&case);
                let result = match &rec.outcome {
                    Outcome::Pass(_) => Ok(Completion::Completed),
                    Outcome::Skip(reason) => Ok(Completion::ignored_with(reason)),
                    Outcome::Fail(ev) => {
                        let path = out.join("tickets").join(ticket_file_name(&rec.name));
                        let md = ticket_markdown(&rec, &env).unwrap_or_default();
                        let written = groundtruth::fsutil::atomic_write(&path, md.as_bytes()).map(|_| path.display().to_string());
                        Err(Failed::from(format!("falsified: {}\nticket: {}", ev.summary(), written.unwrap_or_else(|e| format!("not written: {e}")))))
                    }
                    Outcome::Error { message } => Err(Failed::from(format!("error: {message}"))),
                };
                records.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
                result
            })
            .with_kind(kind)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return conclusion.exit_code();
    }
    let cases = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    let judged = cases.iter().filter(|c| matches!(c.outcome, Outcome::Pass(_) | Outcome::Fail(_))).count();
    let partial = args.filter.is_some() || !args.skip.is_empty() || std::env::var_os("NEXTEST").is_some();
    let planned: Vec<String> = plan.cases.iter().map(|c| c.name.clone()).collect();
    let rep = report(&suite, cases, planned.len());
    // nextest's processes of one run merge into one report; anything else writes its own.
    let written = match std::env::var_os("NEXTEST_RUN_ID") {
        Some(_) => merge_run(&out, rep, &planned).map(|_| ()),
        None => write_run(&out, &rep).map(|_| ()),
    };
    if let Err(e) = written {
        eprintln!("groundtruth: report not written: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    eprintln!("groundtruth: report {}", out.join("report.json").display());
    if judged == 0 && !partial {
        eprintln!("groundtruth: suite '{suite}' judged no case (all skipped): refusing to pass a run that executed nothing");
        return ExitCode::from(1);
    }
    conclusion.exit_code()
}
