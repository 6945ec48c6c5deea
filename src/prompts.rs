//! The prompt set (`configs/prompts.toml`) shared by oracles and teacher-forced claims.

use crate::fsutil::{line_of, read_text, FsError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Breaks the schema.
    #[error("{}:{line}: {msg}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

/// Reads a prompt file; ids must be unique and non-empty, and the set non-empty.
pub fn load(file: &Path) -> Result<Vec<Prompt>, PromptError> {
    let text = read_text(file)?;
    let invalid = |line, msg| PromptError::Invalid { file: file.to_path_buf(), line, msg };
    let parsed: PromptFile = toml::from_str(&text)
        .map_err(|e| invalid(e.span().map(|s| line_of(&text, s.start)).unwrap_or(1), e.message().to_string()))?;
    if parsed.prompt.is_empty() {
        return Err(invalid(1, "no [[prompt]] entries".into()));
    }
    let mut ids = std::collections::BTreeSet::new();
    for p in &parsed.prompt {
        if p.id.is_empty() || !p.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid(1, format!("prompt id '{}' must be ASCII letters, digits, '_' or '-'", p.id)));
        }
        if !ids.insert(p.id.clone()) {
            return Err(invalid(1, format!("duplicate prompt id '{}'", p.id)));
        }
    }
    Ok(parsed.prompt)
}
