//! SFT checkpoints the harness fine-tunes itself: a recipe of `configs/sft.toml` resolved
//! against the model registry ([`sft_spec`]) and trained once per source version into
//! `models/sft/<recipe>-<key>` under the output folder ([`ensure_sft`]), as pretraining
//! recipes are.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::load::{failed, invalid, load_base, SubjectError};
use super::registry::ModelEntry;
use crate::fsutil::read_text;
use crate::memo::Memo;
use crate::metrics::{MetricsConfig, METRICS_FILE};
use crate::project::{Project, MODELS_FILE};
use crate::train::{sft, SftConfig, SftOptions, SftRecipe, SftSpec, SftSummary, SFT_FILE};

/// The Hugging Face folder holding a registered model's stored weights, when it is one
/// the harness can fine-tune (`folder`, or `trained`, trained now if not cached).
pub fn base_folder(project: &Project, entry: &ModelEntry) -> Result<PathBuf, SubjectError> {
    if let Some(f) = &entry.folder {
        return Ok(project.path(&f.path));
    }
    if let Some(t) = &entry.trained {
        return crate::train::ensure_trained(project, &t.recipe)
            .map(|r| r.dir)
            .map_err(|e| failed(format!("recipe '{}'", t.recipe), e));
    }
    Err(invalid(format!("model '{}': SFT starts from a Hugging Face folder the harness has (`folder` or `trained` in {MODELS_FILE})", entry.name)))
}

/// An SFT spec from a base folder (its weights, `tokenizer.json` and file hash), the
/// project's tags (configs/metrics.toml) and `cfg`'s end token and problem space.
pub fn spec_from_folder(
    project: &Project,
    folder: &Path,
    label: &str,
    cfg: &SftConfig,
    recipe: &SftRecipe,
) -> Result<SftSpec, SubjectError> {
    let tags = MetricsConfig::load(&project.path(METRICS_FILE))
        .map_err(|e| failed("", e))?
        .tags;
    let weights = crate::model::load_hf_folder(folder).map_err(|e| failed(folder.display(), e))?;
    let tok = read_text(&folder.join("tokenizer.json")).map_err(|e| failed("", e))?;
    let sha =
        crate::fsutil::sha256_file(&folder.join("model.safetensors")).map_err(|e| failed("", e))?;
    let spec = SftSpec {
        name: recipe.name.clone(),
        base_label: label.to_string(),
        base_sha256: sha,
        base: weights,
        base_tokenizer_json: Arc::new(tok),
        tags,
        end_token: cfg.end_token.clone(),
        space: cfg.problems,
        levels: recipe.levels.clone(),
        hyper: recipe.hyper,
        eval_problems: recipe.eval_problems,
    };
    spec.validate().map_err(|e| failed("", e))?;
    Ok(spec)
}

/// The spec of SFT recipe `name`: its base resolved in the registry (a pinned folder is
/// checked against its registered SHA-256 as any load of it is).
pub fn sft_spec(project: &Project, name: &str) -> Result<(SftSpec, SftRecipe), SubjectError> {
    let cfg = SftConfig::load(&project.path(SFT_FILE)).map_err(|e| failed("", e))?;
    let recipe = cfg.recipe(name).cloned().ok_or_else(|| {
        invalid(format!(
            "{}: no recipe named '{name}'",
            project.path(SFT_FILE).display()
        ))
    })?;
    let registry = super::registry::load(&project.path(MODELS_FILE)).map_err(|e| failed("", e))?;
    let entry = registry
        .iter()
        .find(|m| m.name == recipe.base)
        .ok_or_else(|| {
            invalid(format!(
                "{}: recipe '{name}': base '{}' is not in {MODELS_FILE}",
                project.path(SFT_FILE).display(),
                recipe.base
            ))
        })?;
    // Loading the base verifies a pinned file's hash before anything is trained on it.
    load_base(project, &registry, entry)?;
    let folder = base_folder(project, entry)?;
    Ok((
        spec_from_folder(project, &folder, &recipe.base, &cfg, &recipe)?,
        recipe,
    ))
}

/// A finished SFT run in the cache.
#[derive(Debug, Clone)]
pub struct SftRun {
    /// Its folder (a Hugging Face folder plus metrics and summary).
    pub dir: PathBuf,
}

/// SFT recipe `name`, read from the cache or fine-tuned now (once per process).
pub fn ensure_sft(project: &Project, name: &str) -> Result<SftRun, SubjectError> {
    static RUNS: OnceLock<Memo<PathBuf, Result<Arc<SftSummary>, SubjectError>>> = OnceLock::new();
    let (spec, recipe) = sft_spec(project, name)?;
    let dir = project
        .out_dir()
        .join("models")
        .join("sft")
        .join(format!("{name}-{}", spec.key()));
    // The memo keeps the summary; callers read the fine-tuned model from its folder.
    RUNS.get_or_init(Memo::new)
        .get_or(&dir, || cached_or_train(&dir, &spec, &recipe).map(Arc::new))?;
    Ok(SftRun { dir })
}

fn cached_or_train(
    dir: &Path,
    spec: &SftSpec,
    recipe: &SftRecipe,
) -> Result<SftSummary, SubjectError> {
    let summary_path = dir.join("sft_summary.json");
    if !summary_path.is_file() {
        let tmp = dir.with_extension(format!("tmp.{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| failed(tmp.display(), e))?;
        }
        let opts = SftOptions {
            out: tmp.clone(),
            eval_every: recipe.eval_every,
            progress: false,
            device: candle_core::Device::Cpu,
        };
        sft(spec, &opts).map_err(|e| failed(format!("sft recipe '{}'", recipe.name), e))?;
        // Another process may have finished the same run meanwhile: its result is equal.
        if std::fs::rename(&tmp, dir).is_err() && summary_path.is_file() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let text = read_text(&summary_path)?;
    crate::input::parse_json(text.as_bytes(), &summary_path).map_err(|e| failed("", e))
}
