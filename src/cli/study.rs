//! `groundtruth study`: the degradation study. For each rung, its SFT recipe
//! (`{rung}-arith` in configs/sft.toml, fine-tuned once per source version and cached);
//! for each variant, records on the same held-out problems (cached in `OUT/records/`, so an
//! interrupted study resumes where it stopped); then the metrics of every record, a table
//! and two plots.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::fsutil::{atomic_write, sha256_hex};
use crate::metrics::{
    read_records, records_jsonl, report, study_table, svg_vs_scale, svg_vs_variant, write_records,
    GenerationRecord, MetricsConfig, StudyCell, METRICS_FILE,
};
use crate::model::{Llama, LoadOptions};
use crate::plan::EXIT_HOLDS;
use crate::problems::Split;
use crate::project::Project;
use crate::run::{generate_records, Labels};
use crate::train::{SftConfig, SFT_FILE};
use crate::variant::Variant;

/// What `groundtruth study` was asked.
pub(super) struct Request<'a> {
    pub rungs: &'a [String],
    pub variants: &'a [String],
    pub problems: usize,
    pub seed: u64,
    pub levels: &'a [u8],
    pub max_new_tokens: u64,
    pub batch: usize,
    pub out: &'a Path,
}

/// Runs the study.
pub(super) fn run(project: &Project, req: &Request) -> Result<u8> {
    let cfg = MetricsConfig::load(&project.path(METRICS_FILE))?;
    let sft = SftConfig::load(&project.path(SFT_FILE))?;
    let variants = parse_variants(req.variants)?;
    for r in req.rungs {
        if sft.recipe(&format!("{r}-arith")).is_none() {
            bail!(
                "{}: no SFT recipe '{r}-arith' for rung '{r}'",
                project.path(SFT_FILE).display()
            );
        }
    }
    let problems = sft
        .problems
        .problems(Split::HeldOut, req.levels, req.problems, req.seed)
        .map_err(|e| anyhow!("{}: {e}", project.path(SFT_FILE).display()))?;
    let dir = req.out.join("records");
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: create", dir.display()))?;
    let mut all: Vec<GenerationRecord> = Vec::new();
    let mut params = Vec::new();
    for rung in req.rungs {
        let sft_run = crate::subject::ensure_sft(project, &format!("{rung}-arith"))?;
        let model = Rung::load(&sft_run.dir, &problems)?;
        params.push(model.weights.param_count() as usize);
        for (name, variant) in req.variants.iter().zip(&variants) {
            let cell = Cell {
                rung,
                name,
                variant,
            };
            all.extend(cell_records(req, &dir, &cell, &model, &problems)?);
        }
    }
    write_outputs(req, &cfg, &all, &params)
}

/// `--variants`, parsed.
fn parse_variants(names: &[String]) -> Result<Vec<Variant>> {
    names
        .iter()
        .map(|v| Variant::parse(v).map_err(|e| anyhow!("--variants: {e}")))
        .collect()
}

/// One rung's fine-tuned model, as every variant of it starts from.
struct Rung {
    /// The SFT run's folder name: the records' file names start with it.
    run_name: String,
    weights: crate::model::Weights,
    tok: crate::tokenizer::HfTokenizer,
    /// Every token the problems' prompts use (a corruption may not touch their rows).
    used: Vec<u32>,
}

impl Rung {
    /// Loads the SFT run in `dir` and tokenizes the problems' prompts.
    fn load(dir: &Path, problems: &[crate::problems::Problem]) -> Result<Rung> {
        let weights =
            crate::model::load_hf_folder(dir).with_context(|| format!("{}", dir.display()))?;
        let tok = crate::tokenizer::HfTokenizer::from_folder(dir)
            .with_context(|| format!("{}", dir.display()))?;
        let used: Vec<u32> = problems
            .iter()
            .map(|p| crate::tokenizer::TextTokenizer::encode(&tok, &p.prompt()))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let run_name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Ok(Rung {
            run_name,
            weights,
            tok,
            used,
        })
    }
}

/// The records of one cell: read from `dir` when an earlier study wrote them, else
/// generated and written there.
fn cell_records(
    req: &Request,
    dir: &Path,
    cell: &Cell<'_>,
    model: &Rung,
    problems: &[crate::problems::Problem],
) -> Result<Vec<GenerationRecord>> {
    // The file name holds everything the records depend on: the SFT run (recipe and
    // source version), the variant and the problems.
    let levels: Vec<String> = req.levels.iter().map(u8::to_string).collect();
    let file = dir.join(format!(
        "{}-{}-p{}-s{}-l{}-t{}.jsonl",
        model.run_name,
        cell.name,
        req.problems,
        req.seed,
        levels.join("_"),
        req.max_new_tokens
    ));
    let (rung, name) = (cell.rung, cell.name);
    if file.is_file() {
        let (records, _) = read_records(&file)?;
        errln!(
            "{rung}/{name}: {} records from {}",
            records.len(),
            file.display()
        );
        return Ok(records);
    }
    let records = generate(cell, model, problems, req.max_new_tokens, req.batch)?;
    write_records(&file, &records)?;
    errln!("{rung}/{name}: wrote {}", file.display());
    Ok(records)
}

/// One cell of the study: a rung and one of its variants (name as given and parsed).
struct Cell<'a> {
    rung: &'a str,
    name: &'a str,
    variant: &'a Variant,
}

/// Greedy records of `cell` (the rung's SFT weights with the variant applied) on
/// `problems`, with a progress bar.
fn generate(
    cell: &Cell<'_>,
    model: &Rung,
    problems: &[crate::problems::Problem],
    max_new_tokens: u64,
    batch: usize,
) -> Result<Vec<GenerationRecord>> {
    let Cell {
        rung,
        name,
        variant,
    } = cell;
    let crate::transform::Applied { weights: w, .. } =
        crate::transform::apply(&model.weights, variant, &model.used)
            .with_context(|| format!("{rung}: variant {variant}"))?;
    let llama = Llama::load(&w, &LoadOptions::default())
        .with_context(|| format!("{rung}: variant {variant}"))?;
    let bar =
        indicatif::ProgressBar::new(problems.len() as u64).with_message(format!("{rung}/{name}"));
    let records = generate_records(
        &llama,
        &model.tok,
        problems,
        &crate::metrics::Decoding::greedy(Some(max_new_tokens)),
        Labels {
            model: rung,
            variant: name,
        },
        batch,
        &mut |i| bar.set_position(i as u64),
    )?;
    bar.finish_and_clear();
    Ok(records)
}

/// The report, the table and the plots.
fn write_outputs(
    req: &Request,
    cfg: &MetricsConfig,
    all: &[GenerationRecord],
    params: &[usize],
) -> Result<u8> {
    let jsonl = records_jsonl(all);
    let rep = report(all, &sha256_hex(jsonl.as_bytes()), cfg);
    let mut cells = Vec::new();
    for (rung, &p) in req.rungs.iter().zip(params) {
        for v in req.variants {
            let metrics = rep
                .group(rung, v)
                .ok_or_else(|| anyhow!("no records of {rung}/{v}"))?;
            cells.push(StudyCell {
                rung,
                params: p,
                variant: v,
                metrics,
            });
        }
    }
    let table = study_table(&cells);
    let out = |name: &str| -> PathBuf { req.out.join(name) };
    atomic_write(&out("metrics.json"), rep.to_json().as_bytes())?;
    atomic_write(&out("table.md"), table.as_bytes())?;
    let base = req.variants.first().map_or("base", String::as_str);
    atomic_write(
        &out("sf_sc_vs_scale.svg"),
        svg_vs_scale(&cells, base).as_bytes(),
    )?;
    atomic_write(
        &out("sf_sc_vs_variant.svg"),
        svg_vs_variant(&cells).as_bytes(),
    )?;
    out!("{table}");
    errln!(
        "wrote metrics.json, table.md, sf_sc_vs_scale.svg and sf_sc_vs_variant.svg to {}",
        req.out.display()
    );
    Ok(EXIT_HOLDS)
}
