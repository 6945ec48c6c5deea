//! `groundtruth generate`: GenerationRecord JSONL from a model (optionally a quantized or
//! corrupted variant of it) on held-out arithmetic problems.

use std::path::Path;

use anyhow::{Context, Result};

use super::GenerateArgs;
use crate::metrics::{write_records, Decoding};
use crate::model::{Llama, LoadOptions};
use crate::plan::EXIT_HOLDS;
use crate::problems::Split;
use crate::project::Project;
use crate::run::{generate_records, Labels};
use crate::train::{SftConfig, SFT_FILE};
use crate::variant::Variant;

/// Greedy, or the seeds' sampling recipe with the parameters given replacing its own.
fn decoding(a: &GenerateArgs) -> Decoding {
    if !a.sample {
        return Decoding::greedy(Some(a.generation.max_new_tokens));
    }
    let d = Decoding::seeds_recipe(a.seed, a.generation.max_new_tokens);
    Decoding {
        temperature: a.temperature.or(d.temperature),
        top_k: a.top_k.or(d.top_k),
        top_p: a.top_p.or(d.top_p),
        repetition_penalty: a.repetition_penalty.or(d.repetition_penalty),
        ..d
    }
}

/// A sampling flag without `--sample` is refused, not ignored.
fn refuse_sampling_flags_without_sample(a: &GenerateArgs) -> Result<()> {
    let given = [
        ("--temperature", a.temperature.is_some()),
        ("--top-k", a.top_k.is_some()),
        ("--top-p", a.top_p.is_some()),
        ("--repetition-penalty", a.repetition_penalty.is_some()),
    ];
    if let (false, Some((flag, _))) = (a.sample, given.iter().find(|(_, set)| *set)) {
        anyhow::bail!("{flag} is a sampling parameter: add --sample (greedy decoding takes none)");
    }
    Ok(())
}

/// The held-out problems of `--levels` from the problems file, and the levels.
fn held_out_problems(
    project: &Project,
    a: &GenerateArgs,
) -> Result<(Vec<crate::problems::Problem>, Vec<u8>)> {
    let file = a
        .problems_file
        .clone()
        .unwrap_or_else(|| project.path(SFT_FILE));
    let cfg = SftConfig::load(&file)?;
    let levels = super::commands::parse_levels(&a.generation.levels)?;
    let problems = cfg
        .problems
        .problems(Split::HeldOut, &levels, a.problems, a.seed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok((problems, levels))
}

/// Runs `groundtruth generate`.
pub(super) fn run(project: &Project, model: &Path, a: &GenerateArgs) -> Result<u8> {
    refuse_sampling_flags_without_sample(a)?;
    let variant =
        Variant::parse(&a.variant).map_err(|e| anyhow::anyhow!("--variant {}: {e}", a.variant))?;
    let (problems, levels) = held_out_problems(project, a)?;
    let loaded = super::ppl::load_weights(model)?;
    let used: Vec<u32> = problems
        .iter()
        .map(|p| loaded.tokenizer.encode(&p.prompt()))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let crate::transform::Applied { weights, notes, .. } =
        crate::transform::apply(&loaded.weights, &variant, &used)
            .with_context(|| format!("{}: variant {variant}", model.display()))?;
    let llama = Llama::load(&weights, &LoadOptions::default())
        .with_context(|| format!("{}", model.display()))?;
    let label = a.label.clone().unwrap_or_else(|| {
        model.file_stem().map_or_else(
            || model.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    });
    let d = decoding(a);
    errln!(
        "{label} {variant} ({}){}: {} held-out problems of levels {levels:?}, seed {}, {}",
        loaded.about,
        notes.iter().map(|n| format!("; {n}")).collect::<String>(),
        problems.len(),
        a.seed,
        d.strategy
    );
    let bar = indicatif::ProgressBar::new(problems.len() as u64);
    let started = std::time::Instant::now();
    let records = generate_records(
        &llama,
        loaded.tokenizer.as_ref(),
        &problems,
        &d,
        Labels {
            model: &label,
            variant: &a.variant,
        },
        a.generation.batch,
        &mut |i| bar.set_position(i as u64),
    )?;
    bar.finish_and_clear();
    let tokens: usize = records
        .iter()
        .map(|r| r.token_entropies.as_ref().map_or(0, Vec::len))
        .sum();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    write_records(&a.out, &records)?;
    outln!(
        "wrote {} records ({tokens} tokens, {:.1} records/s, {:.0} tokens/s) to {}",
        records.len(),
        records.len() as f64 / secs,
        tokens as f64 / secs,
        a.out.display()
    );
    Ok(EXIT_HOLDS)
}
