//! The claims harness: every case of the selected suite (`GROUNDTRUTH_SUITE`, default
//! `ci`) is one trial, so `cargo test`, `--list`, filters, `--exact`, `--format json`
//! and `cargo nextest` (one process per case) all work. A skipped case shows as ignored
//! with its reason (under `GROUNDTRUTH_FORBID_SKIP=1` any skip but "no device" is an
//! error instead); a falsified one prints its evidence and ticket path.

use groundtruth::outcome::Outcome;
use groundtruth::plan::{plan, Execution, EXIT_BAD_INPUT};
use groundtruth::project::Project;
use groundtruth::report::{Environment, Reporter, RunFiles, Tickets};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let project = Project::from_manifest();
    let suite = std::env::var("GROUNDTRUTH_SUITE").unwrap_or_else(|_| "ci".into());
    let plan = match plan(&project, &suite) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("groundtruth: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let out = project.out_dir();
    let planned: Vec<String> = plan.cases.iter().map(|c| c.name.clone()).collect();
    let tickets = Tickets {
        dir: out.join("tickets"),
        environment: Environment::current(),
    };
    let ticket_paths: Vec<String> = plan
        .cases
        .iter()
        .map(|c| tickets.path(&c.name).display().to_string())
        .collect();
    // nextest's processes of one run merge into one report; anything else writes its own.
    let merge_plan = std::env::var_os("NEXTEST_RUN_ID").map(|_| planned);
    let reporters: Vec<Box<dyn Reporter>> = vec![
        Box::new(tickets),
        Box::new(RunFiles {
            out: out.clone(),
            merge_plan,
        }),
    ];
    let run = Arc::new(Execution::new(plan.clone(), plan.cases.len(), reporters));
    let trials: Vec<Trial> = plan
        .cases
        .iter()
        .cloned()
        .zip(ticket_paths)
        .map(|(case, ticket)| {
            let run = run.clone();
            let kind = case.claim.kind.name();
            Trial::ignorable_test(case.name.clone(), move || match run.case(&case).outcome {
                Outcome::Pass(_) => Ok(Completion::Completed),
                Outcome::Skip(reason) => Ok(Completion::ignored_with(reason)),
                Outcome::Fail(ev) => Err(Failed::from(format!(
                    "falsified: {}\nticket: {ticket}",
                    ev.summary()
                ))),
                Outcome::Error { message } => Err(Failed::from(format!("error: {message}"))),
            })
            .with_kind(kind)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return conclusion.exit_code();
    }
    let rep = match run.finish() {
        Ok(rep) => rep,
        Err(e) => {
            eprintln!("groundtruth: report not written: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let judged = rep
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Pass(_) | Outcome::Fail(_)))
        .count();
    let partial =
        args.filter.is_some() || !args.skip.is_empty() || std::env::var_os("NEXTEST").is_some();
    eprintln!("groundtruth: report {}", out.join("report.json").display());
    if judged == 0 && !partial {
        eprintln!("groundtruth: suite '{suite}' judged no case (all skipped): refusing to pass a run that executed nothing");
        return ExitCode::from(1);
    }
    conclusion.exit_code()
}
