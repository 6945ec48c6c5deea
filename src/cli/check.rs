//! `groundtruth check`: verdict table or JSON, tickets on request.

use crate::check::{judge_checkpoint, Storage};
use crate::outcome::{fmt_num, Outcome};
use crate::plan::exit_code;
use crate::project::Project;
use crate::report::{
    ticket_file_name, Environment, Report, Reporter, RunFiles, StepSummary, Tickets,
};
use anyhow::Result;
use std::path::Path;

pub(super) fn run(
    project: &Project,
    model: &Path,
    oracle: &Path,
    json: bool,
    tickets: Option<&Path>,
    out: Option<&Path>,
    gpu: crate::device::DeviceSpec,
) -> Result<u8> {
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if let Some(dir) = out {
        reporters.push(Box::new(RunFiles {
            out: dir.to_path_buf(),
            merge_plan: None,
        }));
        reporters.push(Box::new(StepSummary));
    }
    if let Some(dir) = tickets {
        reporters.push(Box::new(Tickets {
            dir: dir.to_path_buf(),
            environment: Environment::current(),
        }));
    }
    let (report, storage) = judge_checkpoint(project, model, oracle, reporters, gpu)?;
    let code = exit_code(&report);
    if let Some(dir) = out {
        errln!(
            "report: {}\npage:   {}",
            dir.join("report.json").display(),
            dir.join("report.html").display()
        );
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&verdict_json(&report, &storage, code))?
        );
    } else {
        outln!(
            "checkpoint stored as {}: {}\n",
            storage.checkpoint,
            storage.judged_as()
        );
        out!("{}", verdict_table(&report));
    }
    for case in report
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    {
        if let Some(dir) = tickets {
            errln!(
                "ticket: {}",
                dir.join(ticket_file_name(&case.name)).display()
            );
        }
    }
    Ok(code)
}

fn verdict_word(code: u8) -> &'static str {
    match code {
        crate::plan::EXIT_HOLDS => "pass",
        crate::plan::EXIT_FALSIFIED => "falsified",
        crate::plan::EXIT_NOTHING_JUDGED => "nothing judged",
        _ => "error",
    }
}

fn verdict_json(report: &Report, storage: &Storage, code: u8) -> serde_json::Value {
    let claims: Vec<serde_json::Value> = report
        .cases
        .iter()
        .map(|c| {
            let ev = c.outcome.evidence();
            let num = |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::json!(fmt_num(x)) };
            serde_json::json!({
                "id": c.claim_id,
                "basis": c.basis.name(),
                "case": c.name,
                "statistic": ev.map(|e| e.statistic.name()),
                "observed": ev.map(|e| num(e.observed)),
                "bound": ev.map(|e| format!("{} {}", e.op.symbol(), fmt_num(e.bound))).unwrap_or_else(|| c.criterion.clone()),
                "outcome": c.outcome.label(),
                "reason": match &c.outcome {
                    Outcome::Skip(r) => Some(r.to_string()),
                    Outcome::Error { message } => Some(message.clone()),
                    Outcome::Pass(_) | Outcome::Fail(_) => None,
                },
            })
        })
        .collect();
    let stored = serde_json::json!({ "checkpoint": storage.checkpoint, "oracle": storage.oracle, "judged_as": storage.judged_as() });
    serde_json::json!({ "verdict": verdict_word(code), "storage": stored, "claims": claims })
}

fn verdict_table(report: &Report) -> String {
    let mut out =
        String::from("| outcome | claim | case | observed | bound |\n|---|---|---|---|---|\n");
    for c in &report.cases {
        let (observed, bound) = match &c.outcome {
            Outcome::Pass(e) | Outcome::Fail(e) => (
                fmt_num(e.observed),
                format!("{} {}", e.op.symbol(), fmt_num(e.bound)),
            ),
            Outcome::Skip(r) => (format!("skipped: {r}"), c.criterion.clone()),
            Outcome::Error { message } => (format!("error: {message}"), c.criterion.clone()),
        };
        out.push_str(&format!(
            "| {} | {} | `{}` | {observed} | {bound} |\n",
            c.outcome.label(),
            c.claim_id,
            c.scope
        ));
    }
    let (p, f, s, e) = report.counts();
    out.push_str(&format!(
        "\nverdict: {} ({p} passed, {f} falsified, {s} skipped, {e} errors)\n",
        verdict_word(exit_code(report))
    ));
    out
}
