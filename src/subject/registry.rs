//! The model registry (`configs/models.toml`): every model a claim can name, and where
//! its weights come from.

use crate::fsutil::line_of;
use serde::Deserialize;
use std::path::Path;

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
    /// Another registered model (or a variant of it) exported to GGUF by the harness.
    #[serde(default)]
    pub export: Option<ExportSource>,
    /// Trained by the harness from a recipe in `configs/recipes.toml` (cached under the
    /// output folder, keyed by everything that determines the weights).
    #[serde(default)]
    pub trained: Option<TrainedSource>,
    /// Where users online can fetch the original from (never used by tests).
    #[serde(default)]
    pub hub: Option<HubSource>,
}

impl ModelEntry {
    /// The training recipe behind the model's weights, when the harness trained them.
    pub fn recipe(&self) -> Option<&str> {
        match (&self.trained, &self.folder) {
            (Some(t), _) => Some(&t.recipe),
            (None, Some(f)) => f.recipe.as_deref(),
            (None, None) => None,
        }
    }
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

/// A GGUF file: in the registry, one fetched by a script into the model cache with a
/// pinned hash; for `groundtruth check`, any file a user names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GgufSource {
    /// File name inside the cache, or an absolute path.
    pub file: String,
    /// Expected SHA-256 (required in configs/models.toml).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The command that fetches it (required in configs/models.toml).
    #[serde(default)]
    pub fetch: Option<String>,
}

/// A Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FolderSource {
    /// Folder path, relative to the project root.
    pub path: String,
    /// Expected SHA-256 of its `model.safetensors` (required in configs/models.toml; a
    /// folder `groundtruth check` is given has none).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The recipe in `configs/recipes.toml` that trained these weights, when the harness
    /// did: its `train_sanity` claims run that recipe, and `reproduces_committed` checks a
    /// fresh training gives these very bytes.
    #[serde(default)]
    pub recipe: Option<String>,
}

/// A registered model exported to GGUF by `groundtruth export`: the file is rebuilt
/// byte for byte on every run, so an oracle made from it by another runtime names it by
/// its SHA-256.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExportSource {
    /// The registered model exported (itself not an export).
    pub from: String,
    /// The variant of it that is exported (`base` or a storage type), default `base`.
    #[serde(default = "base_variant")]
    pub variant: String,
}

fn base_variant() -> String {
    "base".into()
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
pub type RegistryError = crate::input::InputError;

/// Reads and checks the registry: unique names, exactly one source per model.
pub fn load(file: &Path) -> Result<Vec<ModelEntry>, RegistryError> {
    let (parsed, text): (ModelsFile, String) = crate::input::read_toml(file)?;
    let mut names = std::collections::BTreeSet::new();
    for m in &parsed.model {
        let line = line_of_model(&text, &m.name);
        if !names.insert(m.name.clone()) {
            return Err(RegistryError::invalid(
                file,
                line,
                format!("model '{}' is registered twice", m.name),
            ));
        }
        validate_source(m).map_err(|msg| RegistryError::invalid(file, line, msg))?;
    }
    for m in &parsed.model {
        let Some(e) = &m.export else { continue };
        validate_export(&m.name, e, &parsed.model)
            .map_err(|msg| RegistryError::invalid(file, line_of_model(&text, &m.name), msg))?;
    }
    Ok(parsed.model)
}

/// The line of the registry that names `name` (1 when the text does not quote it).
fn line_of_model(text: &str, name: &str) -> usize {
    text.find(&format!("\"{name}\""))
        .map(|o| line_of(text, o))
        .unwrap_or(1)
}

/// Exactly one source, and a registered file source pins its hash (and how to fetch it).
fn validate_source(m: &ModelEntry) -> Result<(), String> {
    let sources = m.seeded.is_some() as u8
        + m.gguf.is_some() as u8
        + m.folder.is_some() as u8
        + m.export.is_some() as u8
        + m.trained.is_some() as u8;
    if sources != 1 {
        return Err(format!("model '{}' needs exactly one of seeded, gguf, folder, export, trained (found {sources})", m.name));
    }
    if m.gguf
        .as_ref()
        .is_some_and(|g| g.sha256.is_none() || g.fetch.is_none())
    {
        return Err(format!(
            "model '{}': a registered gguf source needs 'sha256' and 'fetch'",
            m.name
        ));
    }
    if m.folder.as_ref().is_some_and(|f| f.sha256.is_none()) {
        return Err(format!(
            "model '{}': a registered folder source needs 'sha256' (of its model.safetensors)",
            m.name
        ));
    }
    Ok(())
}

/// An export names a registered model that is not itself an export, and a variant that
/// is a conversion, not a corruption.
fn validate_export(name: &str, e: &ExportSource, all: &[ModelEntry]) -> Result<(), String> {
    match all.iter().find(|p| p.name == e.from) {
        None => {
            return Err(format!(
                "model '{name}': field 'export.from': '{}' is not registered",
                e.from
            ))
        }
        Some(p) if p.export.is_some() => {
            return Err(format!(
                "model '{name}': field 'export.from': '{}' is itself an export",
                e.from
            ))
        }
        Some(_) => {}
    }
    match crate::variant::Variant::parse(&e.variant) {
        Ok(v) if !v.is_corruption() => Ok(()),
        Ok(_) => Err(format!(
            "model '{name}': field 'export.variant': '{}' is a corruption",
            e.variant
        )),
        Err(msg) => Err(format!("model '{name}': field 'export.variant': {msg}")),
    }
}
