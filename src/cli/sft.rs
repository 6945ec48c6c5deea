//! `groundtruth train --sft`: fine-tune a trained model on arithmetic traces.

use anyhow::{bail, Context, Result};

use super::TrainArgs;
use crate::plan::EXIT_HOLDS;
use crate::project::Project;
use crate::train::{SftConfig, SftOptions, SFT_FILE};

/// Flags of pretraining that mean nothing for SFT: refused rather than ignored.
fn refuse_pretraining_flags(a: &TrainArgs) -> Result<()> {
    let given = [
        ("--rung", a.rung.is_some()),
        ("--corpus", a.corpus.is_some()),
        ("--seq-len", a.seq_len.is_some()),
        ("--val-fraction", a.val_fraction.is_some()),
        ("--resume", a.resume.is_some()),
        ("--stop-after", a.stop_after.is_some()),
        ("--checkpoint-every", a.checkpoint_every != 0),
        // SFT runs in f32 only: bf16 autocast is wired into pretraining, not the masked loss.
        ("--precision", a.precision.is_some()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((flag, _)) => bail!("{flag} is a pretraining flag; --sft takes --recipe, --from, --problems, --levels and the optimizer flags"),
        None => Ok(()),
    }
}

/// The recipe's fields that the command line sets (`--steps` without `--warmup`: a
/// tenth of the steps warm up, as for pretraining).
fn apply_flags(recipe: &mut crate::train::SftRecipe, a: &TrainArgs) -> Result<()> {
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = a.$f { recipe.hyper.$f = v; })* };
    }
    set!(
        seed,
        steps,
        batch,
        lr,
        min_lr,
        warmup,
        weight_decay,
        grad_clip
    );
    if a.steps.is_some() && a.warmup.is_none() {
        recipe.hyper.warmup = recipe.hyper.steps / 10;
    }
    if let Some(l) = &a.levels {
        recipe.levels = super::commands::parse_levels(l)?;
    }
    if let Some(e) = a.eval_every {
        recipe.eval_every = e;
    }
    Ok(())
}

/// The folder SFT starts from and its label: `--from`, else the recipe's registered base
/// (loaded once, so a seeded or trained base is written out first).
fn base_model(
    project: &Project,
    recipe: &crate::train::SftRecipe,
    name: &str,
    from: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, String)> {
    Ok(match from {
        Some(f) => {
            if !f.join("model.safetensors").is_file() {
                bail!("{}: no model.safetensors; --from takes a Hugging Face folder (config.json, model.safetensors, tokenizer.json)", f.display());
            }
            (f.to_path_buf(), f.display().to_string())
        }
        None => {
            let registry =
                crate::subject::registry::load(&project.path(crate::project::MODELS_FILE))?;
            let entry = registry
                .iter()
                .find(|m| m.name == recipe.base)
                .with_context(|| {
                    format!("recipe '{name}': base '{}' is not registered", recipe.base)
                })?;
            crate::subject::load_base(project, &registry, entry)?;
            (
                crate::subject::base_folder(project, entry)?,
                recipe.base.clone(),
            )
        }
    })
}

/// `groundtruth train --sft`.
pub fn sft(project: &Project, a: &TrainArgs) -> Result<u8> {
    refuse_pretraining_flags(a)?;
    let device = super::train::open_device(a.device.model_device())?;
    let file = a.problems.clone().unwrap_or_else(|| project.path(SFT_FILE));
    super::commands::given_file(
        &file,
        "problems",
        "a file with [problems] and end_token, as configs/sft.toml",
    )?;
    let cfg = SftConfig::load(&file)?;
    let name = a.recipe.clone().unwrap_or_else(|| "tiny_1m-arith".into());
    let mut recipe = cfg
        .recipe(&name)
        .cloned()
        .with_context(|| format!("{}: no recipe named '{name}'", file.display()))?;
    apply_flags(&mut recipe, a)?;
    let (folder, label) = base_model(project, &recipe, &name, a.from.as_deref())?;
    let spec = crate::subject::spec_from_folder(project, &folder, &label, &cfg, &recipe)?;
    errln!(
        "SFT {name} from {label} ({} parameters): levels {:?}, {} steps x {} problems, seed {}, {} threads",
        spec.base.param_count(),
        recipe.levels,
        recipe.hyper.steps,
        recipe.hyper.batch,
        recipe.hyper.seed,
        candle_core::utils::get_num_threads()
    );
    let opts = SftOptions {
        out: a.out.clone(),
        eval_every: recipe.eval_every,
        progress: true,
        device,
    };
    let s = crate::train::sft(&spec, &opts)?;
    outln!(
        "held-out completion loss {:.4} -> {:.4} (last batch {:.4}); special ids {:?}",
        s.val_loss_before,
        s.final_val_loss,
        s.final_train_loss,
        s.special_ids
    );
    outln!(
        "weights sha256 {}\nmodel.safetensors sha256 {}",
        s.weights_sha256,
        s.model_file_sha256
    );
    outln!(
        "{:.1} s in steps, {:.0} tokens/s; wrote {}",
        s.train_seconds,
        s.tokens_per_second,
        a.out.display()
    );
    Ok(EXIT_HOLDS)
}
