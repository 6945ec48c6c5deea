//! `configs/sft.toml`: the end token SFT appends after the trace tags, the arithmetic
//! problem space and its split, and the registered SFT recipes ([`SftRecipe`]). Read
//! strictly: an unknown field or a bad value is an error naming the file and line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::hyper_fields::{bad, with_schedule};
use crate::input::{parse_toml, InputError};
use crate::problems::ProblemSpace;

/// The project's SFT configuration file.
pub const SFT_FILE: &str = "configs/sft.toml";

with_schedule! {
/// Everything besides the base model, the data and the tokenizer that determines SFT
/// weights (the schedule and AdamW fields come from `with_schedule!`,
/// train/hyper_fields.rs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftHyper {
    /// Seed of the new embedding rows and of the batches.
    pub seed: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Problems per step.
    pub batch: usize,
} schedule + adamw {}
}

impl SftHyper {
    /// Field-level checks; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 {
            return bad("batch", "must be at least 1".into());
        }
        self.check_schedule()?;
        self.check_adamw()
    }
}

/// One registered SFT run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftRecipe {
    /// Name (`sft = { recipe = ... }` in the model registry, `--recipe`).
    pub name: String,
    /// The registered model (configs/models.toml) fine-tuned: a Hugging Face folder the
    /// harness has (`folder` or `trained`).
    pub base: String,
    /// Difficulty levels trained on.
    pub levels: Vec<u8>,
    /// Held-out problems the validation loss is measured on (fixed by `hyper.seed`).
    pub eval_problems: usize,
    /// Steps between validation evaluations (does not change the weights).
    pub eval_every: u64,
    /// Hyper-parameters (`[recipe.hyper]`).
    pub hyper: SftHyper,
}

/// `configs/sft.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Appended after every trace in training; generation stops at it.
    pub end_token: String,
    /// The problem space and its split.
    pub problems: ProblemSpace,
    /// Registered runs.
    pub recipe: Vec<SftRecipe>,
}

impl SftConfig {
    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<SftConfig, InputError> {
        let cfg: SftConfig = parse_toml(text, file)?;
        let line = |needle: &str| {
            text.lines()
                .position(|l| l.contains(needle))
                .map_or(1, |i| i + 1)
        };
        if cfg.end_token.trim().is_empty() {
            return Err(InputError::invalid(
                file,
                line("end_token"),
                "end_token is empty",
            ));
        }
        cfg.problems
            .validate()
            .map_err(|m| InputError::invalid(file, line("[problems]"), m))?;
        let mut names = std::collections::BTreeSet::new();
        for r in &cfg.recipe {
            let at = line(&format!("\"{}\"", r.name));
            if !names.insert(&r.name) {
                return Err(InputError::invalid(
                    file,
                    at,
                    format!("recipe '{}' is registered twice", r.name),
                ));
            }
            r.hyper
                .validate()
                .map_err(|m| InputError::invalid(file, at, format!("recipe '{}': {m}", r.name)))?;
            if r.levels.is_empty()
                || r.levels
                    .iter()
                    .any(|&l| l == 0 || l > cfg.problems.max_level)
            {
                return Err(InputError::invalid(
                    file,
                    at,
                    format!(
                        "recipe '{}': levels {:?} must be non-empty, each in 1..={}",
                        r.name, r.levels, cfg.problems.max_level
                    ),
                ));
            }
            if r.eval_problems == 0 || r.eval_every == 0 {
                return Err(InputError::invalid(
                    file,
                    at,
                    format!(
                        "recipe '{}': eval_problems and eval_every must be at least 1",
                        r.name
                    ),
                ));
            }
        }
        Ok(cfg)
    }

    /// Reads `file`.
    pub fn load(file: &Path) -> Result<SftConfig, InputError> {
        Self::parse(&crate::fsutil::read_text(file)?, file)
    }

    /// The recipe named `name`.
    pub fn recipe(&self, name: &str) -> Option<&SftRecipe> {
        self.recipe.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_file_parses_and_bad_values_name_the_line() {
        let p = crate::project::Project::from_manifest().path(SFT_FILE);
        let text = std::fs::read_to_string(&p).unwrap();
        let cfg = SftConfig::parse(&text, &p).unwrap();
        assert!(cfg.recipe("tiny_1m-arith").is_some());
        let f = Path::new("s.toml");
        for (from, to, want) in [
            (
                "heldout_percent = 20",
                "heldout_percent = 0",
                "heldout_percent",
            ),
            ("levels = [1, 2]", "levels = [1, 9]", "levels [1, 9]"),
            ("batch = 16", "batch = 16\nbogus = 1", "unknown field"),
        ] {
            assert!(text.contains(from), "{from}");
            let e = SftConfig::parse(&text.replacen(from, to, 1), f)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("s.toml:") && e.contains(want), "{e}");
        }
    }
}
