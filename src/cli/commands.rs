//! Subcommand bodies.

use super::{BenchAction, ClaimsAction, Cli, Command};
use crate::claim::{claims_markdown, load_dir};
use crate::plan::{exit_code, plan, report, EXIT_FALSIFIED, EXIT_HOLDS};
use crate::project::Project;
use crate::report::{read_report, summary_matrix, write_run};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs a parsed command line; the exit code follows the documented table.
pub fn execute(cli: Cli) -> Result<u8> {
    let project = Project::new(cli.root.clone());
    match cli.command {
        Command::Run { suite, filter, out } => run(&project, &suite, filter.as_deref(), out.as_deref()),
        Command::Claims { action: ClaimsAction::List { suite } } => list(&project, suite.as_deref()),
        Command::Claims { action: ClaimsAction::Render { check } } => render(&project, check),
        Command::Ticket { report } => {
            let r = read_report(&report)?;
            let tickets = crate::report::dedup_tickets(&r);
            for t in &tickets {
                println!("{t}\n---\n");
            }
            eprintln!("{} ticket(s) from {} case(s)", tickets.len(), r.cases.len());
            Ok(EXIT_HOLDS)
        }
        Command::Check { model, oracle, json, ticket } => super::check::run(&project, &model, &oracle, json, ticket.as_deref()),
        Command::Hub { model } => {
            let registry = crate::subject::registry::load(&project.path(crate::project::MODELS_FILE))?;
            let entry = registry.iter().find(|m| m.name == model).with_context(|| format!("model '{model}' is not in configs/models.toml"))?;
            for file in crate::subject::hub::fetch(entry, &crate::project::models_cache().join("hub")).map_err(anyhow::Error::msg)? {
                println!("{}", file.display());
            }
            Ok(EXIT_HOLDS)
        }
        Command::Materialize { model, out } => materialize(&project, &model, &out),
        Command::Quantize { model, to, out } => super::quant::quantize(&project, &model, &to, &out),
        Command::Export { model, to, out } => super::quant::export(&project, &model, to, &out),
        Command::Inspect { file, json } => super::quant::inspect(&file, json),
        Command::Train(args) => super::train::train(&project, &args),
        Command::Bench { action: BenchAction::Eval { model, threads, tokens, prompts, no_scoring, json, with_llama_cpp } } => {
            let plan = super::bench::Plan { threads, tokens, prompts, scoring: !no_scoring, llama_cpp: with_llama_cpp };
            super::bench::eval(&project, model.as_deref(), &plan, json)
        }
        Command::Bench { action } => super::train::bench(&project, &action),
        Command::Tokenizer { action } => super::train::tokenizer(&project, &action),
        Command::Ppl { model, text, ctx, chunks, base, json } => super::ppl::run(&project, &model, text.as_deref(), ctx, chunks, base.as_deref(), json),
        Command::Ladder { config } => {
            let ladder = crate::model::load_ladder(&project.path(config))?;
            print!("{}", crate::model::ladder_table(&ladder.rungs));
            let recipes = project.path(crate::train::RECIPES_FILE);
            if recipes.is_file() {
                println!("\nTraining recipes ({}):\n", crate::train::RECIPES_FILE);
                print!("{}", crate::train::recipes_table(&crate::train::load_recipes(&recipes)?));
            }
            Ok(EXIT_HOLDS)
        }
    }
}

fn run(project: &Project, suite: &str, filter: Option<&str>, out: Option<&Path>) -> Result<u8> {
    let plan = plan(project, suite)?;
    let cases: Vec<_> = plan.cases.iter().filter(|c| filter.is_none_or(|f| c.name.contains(f))).collect();
    if cases.is_empty() {
        anyhow::bail!("suite '{suite}': no case matches filter {filter:?}");
    }
    let bar = indicatif::ProgressBar::new(cases.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    let mut records = Vec::new();
    for case in cases {
        bar.set_message(case.name.clone());
        let rec = plan.judge.run(case);
        if !matches!(rec.outcome, crate::outcome::Outcome::Pass(_)) {
            bar.println(format!("{:5} {}  {}", rec.outcome.label(), rec.name, describe(&rec.outcome)));
        }
        records.push(rec);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // A filtered run's report holds its own cases only, marked partial.
    let rep = report(suite, records, plan.cases.len());
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| project.out_dir());
    let tickets = write_run(&out, &rep)?;
    print!("{}", summary_matrix(&rep));
    println!("\nreport: {}", out.join("report.json").display());
    for t in tickets {
        println!("ticket: {}", t.display());
    }
    let code = exit_code(&rep);
    if code == crate::plan::EXIT_NOTHING_JUDGED {
        eprintln!("groundtruth: nothing was judged (every case skipped)");
    }
    Ok(code)
}

fn describe(o: &crate::outcome::Outcome) -> String {
    match o {
        crate::outcome::Outcome::Pass(e) | crate::outcome::Outcome::Fail(e) => e.summary(),
        crate::outcome::Outcome::Skip(r) => r.to_string(),
        crate::outcome::Outcome::Error { message } => message.clone(),
    }
}

fn list(project: &Project, suite: Option<&str>) -> Result<u8> {
    match suite {
        Some(s) => {
            let plan = plan(project, s)?;
            for c in &plan.cases {
                println!("{}", c.name);
            }
            eprintln!("{} case(s) in suite '{s}'", plan.cases.len());
        }
        None => {
            let claims = load_dir(&project.claims_dir())?;
            for c in &claims {
                println!("{:6} {:18} {:28} {}", c.id, c.kind.name(), c.bound.render(), c.statement.trim());
            }
        }
    }
    Ok(EXIT_HOLDS)
}

fn render(project: &Project, check: bool) -> Result<u8> {
    // Check claims (claims/check/, judged by `groundtruth check`) are registered claims too.
    let mut claims = load_dir(&project.claims_dir())?;
    claims.extend(load_dir(&project.claims_dir().join("check"))?);
    let md = claims_markdown(&claims);
    let path = project.claims_dir().join("CLAIMS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if current == md {
            return Ok(EXIT_HOLDS);
        }
        eprintln!("{}: stale; run `groundtruth claims render`", path.display());
        return Ok(EXIT_FALSIFIED);
    }
    crate::fsutil::atomic_write(&path, md.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(EXIT_HOLDS)
}

fn materialize(project: &Project, model: &str, out: &Path) -> Result<u8> {
    let registry = crate::subject::registry::load(&project.path(crate::project::MODELS_FILE))?;
    let entry = registry.iter().find(|m| m.name == model).with_context(|| format!("model '{model}' is not in configs/models.toml"))?;
    crate::subject::materialize_seeded(project, entry, out)?;
    let st = out.join("model.safetensors");
    println!("wrote {} (model.safetensors sha256 {})", out.display(), crate::fsutil::sha256_file(&st)?);
    Ok(EXIT_HOLDS)
}
