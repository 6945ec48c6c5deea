//! The model registry (`configs/models.toml`): every model a claim can name, and where
//! its weights come from.

use crate::fsutil::{line_of, read_text, FsError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One registered model.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Name used in claims and case names.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Oracle file for parity claims, relative to the project root.
    #[serde(default)]
    pub oracle: Option<String>,
    /// Built from a seed by the harness itself (no download).
    #[serde(default)]
    pub seeded: Option<SeededSource>,
    /// A GGUF file in the model cache.
    #[serde(default)]
    pub gguf: Option<GgufSource>,
    /// A Hugging Face model folder on disk.
    #[serde(default)]
    pub folder: Option<FolderSource>,
    /// Trained by the harness from a recipe in `configs/recipes.toml` (cached under the
    /// output folder, keyed by everything that determines the weights).
    #[serde(default)]
    pub trained: Option<TrainedSource>,
    /// Where users online can fetch the original from (never used by tests).
    #[serde(default)]
    pub hub: Option<HubSource>,
}

/// A model generated from a seed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeededSource {
    /// Seed of the weight initialisation.
    pub seed: u64,
    /// HF `config.json`-style file with the architecture.
    pub config: String,
}

/// A GGUF file fetched by a script into the model cache.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GgufSource {
    /// File name inside the cache.
    pub file: String,
    /// Expected SHA-256.
    pub sha256: String,
    /// The command that fetches it.
    pub fetch: String,
}

/// A Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FolderSource {
    /// Folder path, relative to the project root.
    pub path: String,
}

/// A model the harness trains itself.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainedSource {
    /// Recipe name in `configs/recipes.toml`.
    pub recipe: String,
}

/// A pinned hub repository.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// Repository id.
    pub repo: String,
    /// Pinned revision (commit).
    pub revision: String,
    /// Files to fetch.
    pub files: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    model: Vec<ModelEntry>,
}

/// Why the registry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Breaks the schema or a rule.
    #[error("{}:{line}: {msg}", file.display())]
    Invalid {
        /// The registry file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

/// Reads and checks the registry: unique names, exactly one source per model.
pub fn load(file: &Path) -> Result<Vec<ModelEntry>, RegistryError> {
    let text = read_text(file)?;
    let invalid = |line, msg| RegistryError::Invalid { file: file.to_path_buf(), line, msg };
    let parsed: ModelsFile =
        toml::from_str(&text).map_err(|e| invalid(e.span().map(|s| line_of(&text, s.start)).unwrap_or(1), e.message().to_string()))?;
    let mut names = std::collections::BTreeSet::new();
    for m in &parsed.model {
        let line = text.find(&format!("\"{}\"", m.name)).map(|o| line_of(&text, o)).unwrap_or(1);
        if !names.insert(m.name.clone()) {
            return Err(invalid(line, format!("model '{}' is registered twice", m.name)));
        }
        let sources = m.seeded.is_some() as u8 + m.gguf.is_some() as u8 + m.folder.is_some() as u8 + m.trained.is_some() as u8;
        if sources != 1 {
            return Err(invalid(line, format!("model '{}' needs exactly one of seeded, gguf, folder, trained (found {sources})", m.name)));
        }
    }
    Ok(parsed.model)
}
