//! `configs/recipes.toml`: the registered training recipes ([`Recipe`]) and the fixed
//! procedures of the sanity checks, read strictly and validated field by field.
//!
//! A recipe names a ladder rung, a corpus (with its SHA-256) and every hyper-parameter
//! that determines the trained weights ([`Hyper`]); `registered_val_loss` is the final
//! validation loss of the reference run, recorded afterwards for the reproducibility claim
//! and deliberately not part of what is trained (so recording it changes no checkpoint).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::hyper_fields::{bad, with_schedule};
use crate::device::DeviceSpec;
use crate::fsutil::{line_of, read_text};
use crate::runtime::{Precision, Runtime};

with_schedule! {
/// Everything besides the architecture, data and tokenizer that determines the weights
/// (the schedule and AdamW fields come from `with_schedule!`, train/hyper_fields.rs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    /// Seed of the weight init and of batch sampling.
    pub seed: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence (each sequence is `seq_len + 1` ids: inputs and next tokens).
    pub seq_len: usize,
} schedule + adamw {
    /// Share of the corpus (its end, cut at a line start) held out for validation.
    pub val_fraction: f64,
}
}

impl Default for Hyper {
    /// The `tiny_1m` recipe's values: what `groundtruth train` uses for unset flags.
    fn default() -> Self {
        Self {
            seed: 20_261_122,
            steps: 300,
            batch: 16,
            seq_len: 128,
            lr: 5e-3,
            min_lr: 5e-4,
            warmup: 30,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            val_fraction: 0.1,
        }
    }
}

impl Hyper {
    /// Field-level checks; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 {
            return bad("batch", "must be at least 1".into());
        }
        if self.seq_len < 2 {
            return bad("seq_len", format!("{} is below 2", self.seq_len));
        }
        self.check_schedule()?;
        self.check_adamw()?;
        if !(self.val_fraction > 0.0 && self.val_fraction < 0.5) {
            return bad(
                "val_fraction",
                format!("{} is not in (0, 0.5)", self.val_fraction),
            );
        }
        Ok(())
    }
}

/// One registered training recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Name used by `trained = { recipe = ... }` in the model registry and by `--recipe`.
    pub name: String,
    /// Ladder rung.
    pub rung: String,
    /// Corpus path, relative to the project root.
    pub corpus: String,
    /// The corpus's SHA-256: a different file is refused, never trained on.
    pub corpus_sha256: String,
    /// Hyper-parameters.
    pub hyper: Hyper,
    /// Steps between validation evaluations (does not change the weights).
    pub eval_every: u64,
    /// Final validation loss of the reference run, for the reproducibility claim.
    pub registered_val_loss: Option<f64>,
    /// Device kind and precision it is registered for (`device = "cuda"`, `precision =
    /// "bf16"`; both optional, CPU f32 when absent).
    pub runtime: Runtime,
}

/// How the tokenizer named by the ladder is built.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    /// Corpus it is learned from, relative to the project root.
    pub corpus: String,
    /// That corpus's SHA-256.
    pub corpus_sha256: String,
    /// Pairs seen fewer times are never merged.
    pub min_frequency: u64,
    /// SHA-256 of the built `tokenizer.json` (the frozen file).
    pub sha256: String,
}

with_schedule! {
/// The overfitting check's procedure (its schedule fields come from `with_schedule!`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverfitSpec {
    /// Leading bytes of the corpus that form the repeated text.
    pub text_bytes: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Windows per step.
    pub batch: usize,
    /// Tokens per window.
    pub seq_len: usize,
} schedule {
    /// Seed of init and window sampling.
    pub seed: u64,
}
}

/// The finite-difference gradient check's procedure.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradCheckSpec {
    /// Sequences in the checked batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Coordinates checked per matrix (every coordinate of a norm gain is checked).
    pub coords_per_matrix: usize,
    /// Central-difference step `h`.
    pub h: f64,
    /// Seed of init, batch and coordinate choice.
    pub seed: u64,
}

/// The sampling-determinism check's procedure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSpec {
    /// Text the samples continue.
    pub prompt: String,
    /// Tokens sampled per run.
    pub tokens: usize,
    /// Softmax temperature.
    pub temperature: f64,
    /// Sampler seed.
    pub seed: u64,
}

/// The whole file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipes {
    /// The ladder tokenizer's build.
    pub tokenizer: TokenizerSpec,
    /// Overfitting check.
    pub overfit: OverfitSpec,
    /// Gradient check.
    pub grad_check: GradCheckSpec,
    /// Sampling check.
    pub sampling: SamplingSpec,
    /// Training recipes, in file order.
    pub recipes: Vec<Recipe>,
}

impl Recipes {
    /// The recipe called `name`.
    pub fn get(&self, name: &str) -> Option<&Recipe> {
        self.recipes.iter().find(|r| r.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeRaw {
    name: String,
    rung: String,
    corpus: String,
    corpus_sha256: String,
    seed: u64,
    steps: u64,
    batch: usize,
    seq_len: usize,
    lr: f64,
    min_lr: f64,
    warmup: u64,
    weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    grad_clip: f64,
    val_fraction: f64,
    eval_every: u64,
    registered_val_loss: Option<f64>,
    device: Option<String>,
    precision: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipesFile {
    tokenizer: TokenizerSpec,
    overfit: OverfitSpec,
    grad_check: GradCheckSpec,
    sampling: SamplingSpec,
    recipe: Vec<RecipeRaw>,
}

/// The recipes file of a project.
pub const RECIPES_FILE: &str = "configs/recipes.toml";

/// Reads and validates a recipes file.
pub fn load_recipes(path: &Path) -> Result<Recipes, TrainError> {
    let text = read_text(path)?;
    parse_recipes(&text, path)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The tables besides the recipes: hashes well formed, every size and rate usable.
fn validate_tables(raw: &RecipesFile) -> Result<(), String> {
    for (field, sha) in [
        ("tokenizer.corpus_sha256", &raw.tokenizer.corpus_sha256),
        ("tokenizer.sha256", &raw.tokenizer.sha256),
    ] {
        if !is_sha256(sha) {
            return Err(format!(
                "field `{field}`: '{sha}' is not a lowercase hex SHA-256"
            ));
        }
    }
    let o = &raw.overfit;
    if o.text_bytes == 0 || o.batch == 0 || o.seq_len < 2 {
        return Err("table `overfit`: needs text_bytes, batch >= 1, seq_len >= 2".into());
    }
    o.check_schedule()
        .map_err(|m| format!("table `overfit`: {m}"))?;
    let g = &raw.grad_check;
    if g.batch == 0 || g.seq_len < 2 || g.coords_per_matrix == 0 || !(g.h > 0.0 && g.h < 1.0) {
        return Err(
            "table `grad_check`: needs batch, coords_per_matrix >= 1, seq_len >= 2, 0 < h < 1"
                .into(),
        );
    }
    let s = &raw.sampling;
    if s.tokens == 0 || !(s.temperature > 0.0 && s.temperature.is_finite()) || s.prompt.is_empty() {
        return Err(
            "table `sampling`: needs a prompt, tokens >= 1 and a positive temperature".into(),
        );
    }
    Ok(())
}

/// One recipe checked (`earlier` are the ones before it, for duplicate names) and resolved
/// into its hyperparameters and runtime. Errors are messages the caller prefixes with the
/// recipe's name and the file.
fn resolve_recipe(r: RecipeRaw, earlier: &[Recipe]) -> Result<Recipe, String> {
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("field `name` must be ASCII letters, digits, '_' or '-'".into());
    }
    if earlier.iter().any(|x| x.name == r.name) {
        return Err("field `name`: registered twice".into());
    }
    if !is_sha256(&r.corpus_sha256) {
        return Err(format!(
            "field `corpus_sha256`: '{}' is not a lowercase hex SHA-256",
            r.corpus_sha256
        ));
    }
    if r.eval_every == 0 {
        return Err("field `eval_every` must be at least 1".into());
    }
    if let Some(v) = r.registered_val_loss {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!(
                "field `registered_val_loss`: {v} is not a positive number"
            ));
        }
    }
    let hyper = Hyper {
        seed: r.seed,
        steps: r.steps,
        batch: r.batch,
        seq_len: r.seq_len,
        lr: r.lr,
        min_lr: r.min_lr,
        warmup: r.warmup,
        weight_decay: r.weight_decay,
        beta1: r.beta1,
        beta2: r.beta2,
        eps: r.eps,
        grad_clip: r.grad_clip,
        val_fraction: r.val_fraction,
    };
    hyper.validate()?;
    let device = match r.device.as_deref() {
        None | Some("cpu") => DeviceSpec::Cpu,
        Some("cuda") => DeviceSpec::Cuda(0),
        Some(other) => return Err(format!("field `device`: '{other}' is not cpu or cuda")),
    };
    let precision = match r.precision.as_deref() {
        None => Precision::F32,
        Some(p) => p
            .parse()
            .map_err(|e: crate::runtime::ParsePrecisionError| format!("field `precision`: {e}"))?,
    };
    Ok(Recipe {
        name: r.name,
        rung: r.rung,
        corpus: r.corpus,
        corpus_sha256: r.corpus_sha256,
        hyper,
        eval_every: r.eval_every,
        registered_val_loss: r.registered_val_loss,
        runtime: Runtime { device, precision },
    })
}

/// Parses recipes TOML; `path` labels errors (with the line where serde knows it).
pub fn parse_recipes(text: &str, path: &Path) -> Result<Recipes, TrainError> {
    let invalid = |msg: String| TrainError::invalid(PathBuf::from(path), msg);
    let raw: RecipesFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        invalid(format!("line {line}: {}", e.message()))
    })?;
    validate_tables(&raw).map_err(invalid)?;
    let mut recipes: Vec<Recipe> = Vec::new();
    for r in raw.recipe {
        let name = r.name.clone();
        let recipe =
            resolve_recipe(r, &recipes).map_err(|m| invalid(format!("recipe `{name}`: {m}")))?;
        recipes.push(recipe);
    }
    Ok(Recipes {
        tokenizer: raw.tokenizer,
        overfit: raw.overfit,
        grad_check: raw.grad_check,
        sampling: raw.sampling,
        recipes,
    })
}

/// A Markdown table of the recipes: rung, schedule, tokens seen, registered result.
pub fn recipes_table(recipes: &Recipes) -> String {
    let mut s = String::from(
        "| recipe | rung | runtime | seed | steps | batch × seq | tokens | lr (min) | warmup | registered val loss |\n\
         |---|---|---|---:|---:|---|---:|---|---:|---:|\n",
    );
    for r in &recipes.recipes {
        let h = &r.hyper;
        let val = r
            .registered_val_loss
            .map_or("-".to_string(), |v| format!("{v:.4}"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} × {} | {} | {:e} ({:e}) | {} | {val} |\n",
            r.name,
            r.rung,
            r.runtime,
            h.seed,
            h.steps,
            h.batch,
            h.seq_len,
            h.steps * (h.batch * h.seq_len) as u64,
            h.lr,
            h.min_lr,
            h.warmup
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../configs/recipes.toml");

    fn err(text: &str) -> String {
        parse_recipes(text, Path::new("configs/recipes.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn shipped_file_parses() {
        let r = parse_recipes(SHIPPED, Path::new("configs/recipes.toml")).unwrap();
        assert!(r.get("tiny_1m").is_some());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        assert!(err(&SHIPPED.replacen("steps = ", "stepz = ", 1)).contains("stepz"));
        let e = err(&SHIPPED.replacen("warmup = 30", "warmup = 30000", 1));
        assert!(
            e.contains("recipe `tiny_1m`") && e.contains("warmup"),
            "{e}"
        );
        let e = err(&SHIPPED.replacen("val_fraction = 0.1", "val_fraction = 0.9", 1));
        assert!(e.contains("val_fraction"), "{e}");
        let e = err(&SHIPPED.replacen("eval_every = 50", "eval_every = 50\ndevice = \"gpu\"", 1));
        assert!(
            e.contains("recipe `tiny_1m`") && e.contains("field `device`"),
            "{e}"
        );
        let e = err(&SHIPPED.replacen(
            "eval_every = 50",
            "eval_every = 50\nprecision = \"fp16\"",
            1,
        ));
        assert!(e.contains("field `precision`") && e.contains("fp16"), "{e}");
    }
}
