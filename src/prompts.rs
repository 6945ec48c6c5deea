//! The prompt set (`configs/prompts.toml`) shared by oracles and teacher-forced claims.
//! Public because teacher-forced runs take its prompts (`run::eval_seqs`).

use serde::Deserialize;
use std::path::Path;

/// One prompt.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// Stable id, also the oracle case id.
    pub id: String,
    /// What it probes (factual, code, unicode…).
    pub category: String,
    /// The text, special tokens written out.
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    prompt: Vec<Prompt>,
}

/// Why a prompt file could not be read.
pub type PromptError = crate::input::InputError;

/// Reads a prompt file; ids must be unique and non-empty, and the set non-empty.
pub fn load(file: &Path) -> Result<Vec<Prompt>, PromptError> {
    let (parsed, _): (PromptFile, String) = crate::input::read_toml(file)?;
    let invalid = |line, msg: String| PromptError::invalid(file, line, msg);
    if parsed.prompt.is_empty() {
        return Err(invalid(1, "no [[prompt]] entries".into()));
    }
    let mut ids = std::collections::BTreeSet::new();
    for p in &parsed.prompt {
        if p.id.is_empty()
            || !p
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                1,
                format!(
                    "prompt id '{}' must be ASCII letters, digits, '_' or '-'",
                    p.id
                ),
            ));
        }
        if !ids.insert(p.id.clone()) {
            return Err(invalid(1, format!("duplicate prompt id '{}'", p.id)));
        }
    }
    Ok(parsed.prompt)
}
