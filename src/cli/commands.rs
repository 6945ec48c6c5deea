//! Subcommand bodies.

use super::{BenchAction, ClaimsAction, Cli, Command};
use crate::claim::{claims_markdown, load_dir, load_with_numbers};
use crate::outcome::Outcome;
use crate::plan::{exit_code, plan, EXIT_FALSIFIED, EXIT_HOLDS};
use crate::project::Project;
use crate::report::{
    read_report, summary_matrix, ticket_file_name, Event, Junit, ReportError, Reporter, RunFiles,
    StepSummary,
};
use crate::subject::hub::{self, HubEnv};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs a parsed command line; the exit code follows the documented table.
pub fn execute(cli: Cli) -> Result<u8> {
    let project = Project::locate(cli.root.as_deref())?;
    dispatch(&project, cli.command).map_err(|e| explain_missing(&project, e))
}

/// A file of the project that is not there: the message says which project was used and
/// how to point at another, once.
fn explain_missing(project: &Project, e: anyhow::Error) -> anyhow::Error {
    let not_found = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    });
    let line = super::one_line(&e);
    if not_found && line.contains(&project.root.display().to_string()) {
        return anyhow::anyhow!("{line} ({})", project.where_to_look());
    }
    e
}

/// A `--model` argument as a local path: an hf:// reference resolved in the Hugging Face
/// cache, or a file or folder that must exist.
pub(super) fn model_path(arg: &str) -> Result<PathBuf> {
    if hub::is_hub_ref(arg) {
        return Ok(hub::resolve(arg, &HubEnv::from_env())?);
    }
    let p = PathBuf::from(arg);
    if !p.exists() {
        anyhow::bail!("{arg}: no such file or folder (--model takes a GGUF file, a Hugging Face folder, or hf://ORG/REPO[@REV][/FILE])");
    }
    Ok(p)
}

/// A `--levels` value: difficulty levels, comma-separated.
pub(super) fn parse_levels(flag: &str) -> Result<Vec<u8>> {
    flag.split(',')
        .map(|x| {
            x.trim()
                .parse::<u8>()
                .with_context(|| format!("--levels {flag}: '{x}' is not a level"))
        })
        .collect()
}

/// Writes the Hugging Face folder `out` whole or not at all (`fill` writes it into a
/// temporary folder renamed into place) and prints its model.safetensors' SHA-256; returns
/// that file's path.
pub(super) fn write_hf_folder<E>(
    out: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<PathBuf>
where
    E: From<crate::fsutil::FsError> + std::error::Error + Send + Sync + 'static,
{
    crate::fsutil::write_dir_atomic(out, fill)?;
    let st = out.join("model.safetensors");
    outln!(
        "wrote {} (model.safetensors sha256 {})",
        out.display(),
        crate::fsutil::sha256_file(&st)?
    );
    Ok(st)
}

/// The names of a comma-separated flag, trimmed, empty ones left out.
fn comma_list(flag: &str) -> Vec<String> {
    flag.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// A file named by `flag` that must exist: one line naming it and the flag when it does not.
/// A device or FIFO is let through: its reader bounds what it reads (`fsutil::read_bounded`).
pub(super) fn given_file(p: &Path, flag: &str, what: &str) -> Result<()> {
    if !p.exists() || p.is_dir() {
        anyhow::bail!("{}: no such file; --{flag} takes {what}", p.display());
    }
    Ok(())
}

fn dispatch(project: &Project, command: Command) -> Result<u8> {
    match command {
        Command::Init { dir } => init(&dir),
        Command::Run(a) => run_suite(project, a),
        Command::Claims {
            action: ClaimsAction::List { suite },
        } => list(project, suite.as_deref()),
        Command::Claims {
            action: ClaimsAction::Render { check },
        } => render(project, check),
        Command::Ticket(a) => tickets(project, a),
        Command::Check(a) => check(project, a),
        Command::Oracle(a) => make_oracle(project, a),
        Command::Hub { model } => fetch_from_hub(project, &model),
        Command::Metrics(a) => metrics(project, a),
        Command::Study(a) => study(project, a),
        Command::Generate { model, args } => {
            super::generate::run(project, &model_path(&model)?, &args)
        }
        Command::Reproduce {
            registered,
            id,
            tickets,
            records_out,
        } => super::reproduce::run(
            project,
            &super::reproduce::Request {
                registered: &registered,
                id: id.as_deref(),
                tickets: tickets.as_deref(),
                records_out: records_out.as_deref(),
            },
        ),
        Command::Materialize { model, out } => materialize(project, &model, &out),
        Command::Quantize { model, to, out } => super::quant::quantize(project, &model, &to, &out),
        Command::Export {
            model,
            to,
            out,
            variant,
        } => super::quant::export(project, &model, to, &out, &variant),
        Command::Corrupt(a) => corrupt(a),
        Command::Manifest { model, out } => super::integrity::write_manifest(&model, &out),
        Command::Verify {
            model,
            manifest,
            json,
        } => super::integrity::verify_model(&model, &manifest, json),
        Command::Health { model, json } => super::integrity::health(&model, json),
        Command::Inspect { file, json } => super::quant::inspect(&file, json),
        Command::Train(args) => super::train::train(project, &args),
        Command::Bench {
            action: BenchAction::Eval(a),
        } => bench_eval(project, a),
        Command::Bench {
            action: BenchAction::Generate(a),
        } => bench_generate(project, a),
        Command::Bench { action } => super::train::bench(project, &action),
        Command::Sweep { action } => super::sweep::sweep(project, action),
        Command::Tokenizer { action } => super::train::tokenizer(project, &action),
        Command::Ppl(args) => super::ppl::run(project, &args),
        Command::Ladder { config } => ladder(project, &config),
    }
}

/// Which cases of a suite `run` judges.
enum Select {
    All,
    Contains(String),
    Exact(String),
}

impl Select {
    fn keeps(&self, name: &str) -> bool {
        match self {
            Select::All => true,
            Select::Contains(f) => name.contains(f.as_str()),
            Select::Exact(e) => name == e,
        }
    }
}

fn run(
    project: &Project,
    suite: &str,
    select: &Select,
    out: Option<&Path>,
    junit: Option<&Path>,
    device: super::DeviceArg,
) -> Result<u8> {
    let root_flag = match project.origin {
        crate::project::Origin::Flag => format!(" --root '{}'", project.root.display()),
        crate::project::Origin::Marker(_)
        | crate::project::Origin::BuiltIn
        | crate::project::Origin::Given => String::new(),
    };
    let device_flag = device
        .device
        .map(|d| format!(" --device {d}"))
        .unwrap_or_default();
    let rerun =
        format!("groundtruth{root_flag} run --suite {suite}{device_flag} --exact '{{case}}'");
    let plan = Arc::new(crate::plan::plan_with(
        project,
        suite,
        Some(rerun),
        device.run_gpu(),
    )?);
    let cases: Vec<_> = plan
        .cases
        .iter()
        .filter(|c| select.keeps(&c.name))
        .collect();
    match select {
        Select::All => {}
        Select::Contains(f) if cases.is_empty() => anyhow::bail!("suite '{suite}': no case name contains '{f}' (`groundtruth claims list --suite {suite}` lists them)"),
        Select::Exact(e) if cases.is_empty() => anyhow::bail!("suite '{suite}': no case is named '{e}' (`groundtruth claims list --suite {suite}` lists them)"),
        Select::Contains(_) | Select::Exact(_) => {}
    }
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| project.out_dir());
    let mut reporters: Vec<Box<dyn Reporter>> = vec![
        Box::new(Progress::new(cases.len())),
        Box::new(RunFiles {
            out: out.clone(),
            merge_plan: None,
        }),
        Box::new(StepSummary),
    ];
    if let Some(file) = junit {
        reporters.push(Box::new(Junit {
            file: file.to_path_buf(),
        }));
    }
    // A filtered run's report holds its own cases only, marked partial.
    let rep = crate::plan::execute(plan.clone(), &cases, reporters)?;
    out!("{}", summary_matrix(&rep));
    outln!("\nreport: {}", out.join("report.json").display());
    outln!("page:   {}", out.join("report.html").display());
    for c in rep
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    {
        outln!(
            "ticket: {}",
            out.join("tickets")
                .join(ticket_file_name(&c.name))
                .display()
        );
    }
    let code = exit_code(&rep);
    if code == crate::plan::EXIT_NOTHING_JUDGED {
        errln!("groundtruth: nothing was judged (every case skipped)");
    }
    Ok(code)
}

/// The progress bar of `groundtruth run`; a case that does not pass is printed above it.
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Progress(bar)
    }
}

impl Reporter for Progress {
    fn on(&self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::Started { case, .. } => self.0.set_message(case.name.clone()),
            Event::Finished { record } => {
                if !matches!(record.outcome, Outcome::Pass(_)) {
                    self.0.println(format!(
                        "{:5} {}  {}",
                        record.outcome.label(),
                        record.name,
                        describe(&record.outcome)
                    ));
                }
                self.0.inc(1);
            }
            Event::Done { .. } => self.0.finish_and_clear(),
        }
        Ok(())
    }
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
                outln!("{}", c.name);
            }
            errln!("{} case(s) in suite '{s}'", plan.cases.len());
        }
        None => {
            let claims = load_with_numbers(&project.root, &project.claims_dir())?;
            for c in &claims {
                outln!(
                    "{:6} {:18} {:28} {}",
                    c.id,
                    c.kind.name(),
                    c.criterion(),
                    c.statement.trim()
                );
            }
        }
    }
    Ok(EXIT_HOLDS)
}

fn render(project: &Project, check: bool) -> Result<u8> {
    // Check claims (claims/check/, judged by `groundtruth check`) are registered claims too.
    let mut claims = load_with_numbers(&project.root, &project.claims_dir())?;
    claims.extend(load_dir(&project.claims_dir().join("check"))?);
    let md = claims_markdown(&claims);
    let path = project.claims_dir().join("CLAIMS.md");
    let current = crate::fsutil::read_text(&path).unwrap_or_default();
    if check {
        if current == md {
            return Ok(EXIT_HOLDS);
        }
        errln!("{}: stale; run `groundtruth claims render`", path.display());
        return Ok(EXIT_FALSIFIED);
    }
    crate::fsutil::atomic_write(&path, md.as_bytes())?;
    outln!("wrote {}", path.display());
    Ok(EXIT_HOLDS)
}

fn materialize(project: &Project, model: &str, out: &Path) -> Result<u8> {
    let registry = crate::subject::registry::load(&project.path(crate::project::MODELS_FILE))?;
    let entry = registry
        .iter()
        .find(|m| m.name == model)
        .with_context(|| format!("model '{model}' is not in configs/models.toml"))?;
    write_hf_folder(out, |tmp| {
        crate::subject::materialize_seeded(project, entry, tmp).map(|_| ())
    })?;
    Ok(EXIT_HOLDS)
}

/// `groundtruth run`.
fn run_suite(project: &Project, a: super::RunArgs) -> Result<u8> {
    let super::RunArgs {
        suite,
        filter,
        exact,
        out,
        junit,
        device,
    } = a;
    let select = match (filter, exact) {
        (Some(f), _) => Select::Contains(f),
        (None, Some(e)) => Select::Exact(e),
        (None, None) => Select::All,
    };
    run(
        project,
        &suite,
        &select,
        out.as_deref(),
        junit.as_deref(),
        device,
    )
}

/// `groundtruth oracle`.
fn make_oracle(project: &Project, a: super::OracleArgs) -> Result<u8> {
    let super::OracleArgs {
        runtime,
        model,
        prompts,
        out,
        model_id,
        weights,
        no_perplexity,
        python,
    } = a;
    let req = super::oracle::Request {
        runtime,
        model: &model,
        prompts: prompts.as_deref(),
        out: &out,
        model_id: model_id.as_deref(),
        weights: weights.as_deref(),
        perplexity: !no_perplexity,
        python: python.as_deref(),
    };
    super::oracle::run(project, &req)
}

/// `groundtruth ticket`.
fn tickets(project: &Project, a: super::TicketArgs) -> Result<u8> {
    let super::TicketArgs {
        report,
        gh,
        repo,
        dry_run,
    } = a;
    let path = report.unwrap_or_else(|| project.out_dir().join("report.json"));
    given_file(
        &path,
        "report",
        "the report.json that `groundtruth run` or `groundtruth check --out` writes",
    )?;
    let r = read_report(&path)?;
    if gh {
        let dir = path.parent().unwrap_or(Path::new(".")).join("issues");
        return super::gh::file_tickets(&r, &dir, repo.as_deref(), dry_run);
    }
    let tickets = crate::report::dedup_tickets(&r);
    for t in &tickets {
        outln!("{}\n---\n", t.markdown);
    }
    errln!("{} ticket(s) from {} case(s)", tickets.len(), r.cases.len());
    Ok(EXIT_HOLDS)
}

/// `groundtruth check`.
fn check(project: &Project, a: super::CheckArgs) -> Result<u8> {
    let super::CheckArgs {
        model,
        oracle,
        json,
        ticket,
        out,
        device,
    } = a;
    given_file(
        &oracle,
        "oracle",
        "an oracle file, groundtruth-oracle/1, as `groundtruth oracle` writes",
    )?;
    super::check::run(
        project,
        &model_path(&model)?,
        &oracle,
        json,
        ticket.as_deref(),
        out.as_deref(),
        device.run_gpu(),
    )
}

/// `groundtruth corrupt`.
fn corrupt(a: super::CorruptFlags) -> Result<u8> {
    let super::CorruptFlags {
        model,
        out,
        seed,
        count,
        rate,
        bits,
        region,
        tensors,
    } = a;
    let args = super::integrity::CorruptArgs {
        model: &model,
        out: &out,
        seed,
        count,
        rate: rate.as_deref(),
        bits,
        region,
        tensors: tensors.as_deref(),
    };
    super::integrity::corrupt(&args)
}

/// `groundtruth metrics`.
fn metrics(project: &Project, a: super::MetricsArgs) -> Result<u8> {
    let super::MetricsArgs {
        records,
        config,
        out,
        json,
        per_record,
    } = a;
    let req = super::metrics::Request {
        records: &records,
        config: config.as_deref(),
        out: out.as_deref(),
        json,
        per_record: per_record.as_deref(),
    };
    super::metrics::run(project, &req)
}

/// `groundtruth study`.
fn study(project: &Project, a: super::StudyArgs) -> Result<u8> {
    let super::StudyArgs {
        rungs,
        variants,
        problems,
        seed,
        generation,
        out,
    } = a;
    let levels = parse_levels(&generation.levels)?;
    let (rungs, variants) = (comma_list(&rungs), comma_list(&variants));
    let req = super::study::Request {
        rungs: &rungs,
        variants: &variants,
        problems,
        seed,
        levels: &levels,
        max_new_tokens: generation.max_new_tokens,
        batch: generation.batch,
        out: &out,
    };
    super::study::run(project, &req)
}

/// `groundtruth bench eval`.
fn bench_eval(project: &Project, a: super::BenchEvalArgs) -> Result<u8> {
    let super::BenchEvalArgs {
        model,
        threads,
        tokens,
        prompts,
        no_scoring,
        json,
        with_llama_cpp,
        runtime,
    } = a;
    let plan = super::bench::Plan {
        threads,
        tokens,
        prompts,
        scoring: !no_scoring,
        llama_cpp: with_llama_cpp,
        runtime: runtime.runtime(),
    };
    super::bench::eval(project, model.as_deref(), &plan, json)
}

/// `groundtruth bench generate`.
fn bench_generate(project: &Project, a: super::BenchGenerateArgs) -> Result<u8> {
    let list = comma_list(&a.models);
    let batches: Vec<usize> = a
        .batches
        .split(',')
        .map(|b| {
            b.trim()
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--batches: '{b}' is not a batch size"))
        })
        .collect::<Result<_>>()?;
    let req = super::bench_generate::Request {
        models: &list,
        small_8m: a.small_8m.as_deref(),
        batches: &batches,
        problems: a.problems,
        max_new_tokens: a.max_new_tokens,
    };
    super::bench_generate::run(project, &req)
}

/// `groundtruth init`.
fn init(dir: &Path) -> Result<u8> {
    let n = crate::builtin::init(dir)?;
    outln!("wrote {n} files to {}: edit claims/ and suites/ there, and run `groundtruth run` inside it", dir.display());
    Ok(EXIT_HOLDS)
}

/// `groundtruth hub`.
fn fetch_from_hub(project: &Project, model: &str) -> Result<u8> {
    let registry = crate::subject::registry::load(&project.path(crate::project::MODELS_FILE))?;
    let entry = registry
        .iter()
        .find(|m| m.name == model)
        .with_context(|| format!("model '{model}' is not in configs/models.toml"))?;
    for file in hub::fetch(entry, &HubEnv::from_env())? {
        outln!("{}", file.display());
    }
    Ok(EXIT_HOLDS)
}

/// `groundtruth ladder`.
fn ladder(project: &Project, config: &Path) -> Result<u8> {
    let ladder = crate::model::load_ladder(&project.path(config))?;
    out!("{}", crate::model::ladder_table(&ladder.rungs));
    let recipes = project.path(crate::train::RECIPES_FILE);
    if recipes.is_file() {
        outln!("\nTraining recipes ({}):\n", crate::train::RECIPES_FILE);
        out!(
            "{}",
            crate::train::recipes_table(&crate::train::load_recipes(&recipes)?)
        );
    }
    Ok(EXIT_HOLDS)
}
