//! Resolving a registered model and a variant into a runnable [`Subject`].

use super::registry::{ExportSource, FolderSource, GgufSource, ModelEntry};
use crate::fsutil::sha256_file;
use crate::fsutil::FileHash;
use crate::model::{
    load_gguf, load_hf_folder, save_hf_folder, seeded, Llama, LlamaConfig, LoadOptions, Weights,
};
use crate::project::{models_cache, Project};
use crate::tokenizer::{ByteTokenizer, GgufTokenizer, HfTokenizer, TextTokenizer};
use crate::variant::Variant;
use candle_core::quantized::gguf_file::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Why a subject could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubjectError {
    /// The model's file is not on this machine: its cases are skipped, not passed.
    #[error("model file not found at {path}: run {fetch}")]
    Missing {
        /// Where it was looked for.
        path: String,
        /// The fetch command.
        fetch: String,
    },
    /// The model's files exist but break a rule (one line, naming the file).
    #[error("{0}")]
    Invalid(String),
    /// Reading, checking or building the model failed: `what` names the file or step
    /// (empty when the source says it all), the source says why, with its own sources.
    /// Shared (an `Arc`) because the judge's caches hand one error to every case that asks.
    #[error("{}", with_source(what, source))]
    Failed {
        /// The file or step.
        what: String,
        /// Why.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

/// `what: source`, or the source alone when `what` is empty.
fn with_source(what: &str, source: &dyn std::fmt::Display) -> String {
    match what {
        "" => source.to_string(),
        _ => format!("{what}: {source}"),
    }
}

impl From<crate::fsutil::FsError> for SubjectError {
    fn from(e: crate::fsutil::FsError) -> Self {
        failed("", e)
    }
}

/// A rule of the model's files that does not hold, in words.
pub(super) fn invalid(e: impl std::fmt::Display) -> SubjectError {
    SubjectError::Invalid(e.to_string())
}

/// `what` failed because of `source`, kept as the error's source.
pub(super) fn failed(
    what: impl std::fmt::Display,
    source: impl std::error::Error + Send + Sync + 'static,
) -> SubjectError {
    SubjectError::Failed {
        what: what.to_string(),
        source: Arc::new(source),
    }
}

/// A model's stored weights, tokenizer and provenance, before any variant.
pub struct Base {
    /// Registry name.
    pub model: String,
    /// Stored weights.
    pub weights: Weights,
    /// The model's tokenizer.
    pub tokenizer: Arc<dyn TextTokenizer>,
    /// SHA-256 of the weights file (what an oracle's `model.sha256` names).
    pub file_sha256: String,
    /// Storage type (`q4_1`, `f32`).
    pub weights_type: String,
    /// Files read, hashed.
    pub files: Vec<FileHash>,
    /// The metadata a GGUF export of this model carries besides the config-derived keys
    /// (tokenizer, provenance), in file order, or why it cannot be exported.
    pub export_meta: Result<Vec<(String, Value)>, String>,
    /// The stored file's tensor order (llama.cpp names) when it is a GGUF.
    pub tensor_order: Option<Vec<String>>,
}

impl Base {
    /// What an export of this model carries over, or why it cannot be exported.
    pub fn export_source(&self) -> Result<crate::transform::Source<'_>, SubjectError> {
        let metadata = self
            .export_meta
            .as_ref()
            .map_err(|m| invalid(format!("{}: {m}", self.model)))?;
        Ok(crate::transform::Source {
            metadata,
            tensor_order: self.tensor_order.as_deref(),
        })
    }
}

/// A runnable subject: a variant of a model, loaded for one matmul path.
pub struct Subject {
    /// Registry name.
    pub model: String,
    /// How it derives from the stored weights.
    pub variant: Variant,
    pub weights: Weights,
    /// The weights loaded on the subject's runtime, ready to run.
    pub llama: Llama,
    /// The base's tokenizer (a variant never changes it).
    pub tokenizer: Arc<dyn TextTokenizer>,
    /// The stored file's hash for the base variant; the weights' hash for any other.
    pub identity_sha256: String,
    /// Storage type of the matrices.
    pub weights_type: String,
    /// Files read, hashed.
    pub files: Vec<FileHash>,
    /// How logits are computed, for evidence.
    pub path: String,
    /// Fallbacks and damage applied by the variant.
    pub notes: Vec<String>,
    /// Every flipped bit of a bit-flip variant.
    pub flips: Option<crate::transform::flip::FlipList>,
}

impl Subject {
    /// The storage type of its matrices: the GGML type that holds most of the elements of
    /// its 2-D tensors (`q4_1` for SmolLM2's Q4_1 file, whose embedding is Q8_0; `f32`
    /// for a safetensors folder).
    pub fn storage_type(&self) -> &'static str {
        crate::model::ggml_type_name(crate::transform::predominant_type(&self.weights))
    }
}

/// Loads a model's stored weights. Seeded models are written out as a Hugging Face folder
/// under the output folder and read back, so they go through the same loader as a user's.
pub fn load_base(
    project: &Project,
    registry: &[ModelEntry],
    entry: &ModelEntry,
) -> Result<Base, SubjectError> {
    if entry.seeded.is_some() {
        let dir = project.out_dir().join("models").join(&entry.name);
        let cfg_file = materialize_seeded(project, entry, &dir)?;
        let mut base = load_folder(project, entry, &dir)?;
        base.files.insert(0, cfg_file);
        base.tokenizer = Arc::new(ByteTokenizer);
        return Ok(base);
    }
    if let Some(g) = &entry.gguf {
        return load_registered_gguf(entry, g);
    }
    if let Some(f) = &entry.folder {
        return load_registered_folder(project, entry, f);
    }
    if let Some(e) = &entry.export {
        return load_export(project, registry, entry, e);
    }
    if let Some(t) = &entry.trained {
        // A missing corpus is an error like any other: it belongs to the checkout.
        let run = crate::train::ensure_trained(project, &t.recipe)
            .map_err(|e| failed(format!("recipe '{}'", t.recipe), e))?;
        let mut base = load_folder(project, entry, &run.dir)?;
        base.files.insert(0, run.recipes_file.clone());
        return Ok(base);
    }
    Err(invalid(format!("model '{}' has no source", entry.name)))
}

/// A registered GGUF file from the models cache: present (or how to fetch it) and, when
/// pinned, the registered bytes.
fn load_registered_gguf(entry: &ModelEntry, g: &GgufSource) -> Result<Base, SubjectError> {
    let path = models_cache().join(&g.file);
    let fetch = g
        .fetch
        .clone()
        .unwrap_or_else(|| "nothing: the file was named on the command line".into());
    if !path.exists() {
        return Err(match &g.fetch {
            Some(f) => SubjectError::Missing {
                path: path.display().to_string(),
                fetch: f.clone(),
            },
            None => invalid(format!("{}: no such file", path.display())),
        });
    }
    let sha = sha256_file(&path).map_err(|e| failed("", e))?;
    if let Some(pinned) = g.sha256.as_ref().filter(|p| **p != sha) {
        return Err(invalid(format!(
            "{}: sha256 {sha} is not the registered {pinned}; rerun {fetch}",
            path.display()
        )));
    }
    load_gguf_base(entry, &path, sha)
}

/// A Hugging Face folder of the project, its model.safetensors the registered bytes when
/// pinned.
fn load_registered_folder(
    project: &Project,
    entry: &ModelEntry,
    f: &FolderSource,
) -> Result<Base, SubjectError> {
    let dir = project.path(&f.path);
    let base = load_folder(project, entry, &dir)?;
    if let Some(pinned) = f.sha256.as_ref().filter(|p| **p != base.file_sha256) {
        return Err(invalid(format!(
            "{}: sha256 {} is not the {pinned} configs/models.toml registers for '{}'",
            dir.join("model.safetensors").display(),
            base.file_sha256,
            entry.name
        )));
    }
    Ok(base)
}

/// A registered model exported to GGUF as one of its variants, then read back as a GGUF
/// model like any other; its files list the parent's first.
fn load_export(
    project: &Project,
    registry: &[ModelEntry],
    entry: &ModelEntry,
    e: &ExportSource,
) -> Result<Base, SubjectError> {
    let from = registry.iter().find(|m| m.name == e.from).ok_or_else(|| {
        invalid(format!(
            "model '{}': export source '{}' is not registered",
            entry.name, e.from
        ))
    })?;
    if from.export.is_some() {
        return Err(invalid(format!(
            "model '{}': export source '{}' is itself an export",
            entry.name, e.from
        )));
    }
    let parent = load_base(project, registry, from)?;
    let variant = Variant::parse(&e.variant).map_err(invalid)?;
    let path = stored_gguf(project, entry)
        .ok_or_else(|| invalid(format!("model '{}' has no GGUF path", entry.name)))?;
    export_variant(&parent, variant, &path)?;
    let sha = sha256_file(&path).map_err(|e| failed("", e))?;
    let mut base = load_gguf_base(entry, &path, sha)?;
    base.files = [parent.files, base.files].concat();
    Ok(base)
}

/// The GGUF file a model's stored weights are read from, if they come from one.
pub fn stored_gguf(project: &Project, entry: &ModelEntry) -> Option<std::path::PathBuf> {
    match (&entry.gguf, &entry.export) {
        (Some(g), _) => Some(models_cache().join(&g.file)),
        (None, Some(_)) => Some(
            project
                .out_dir()
                .join("models")
                .join(format!("{}.gguf", entry.name)),
        ),
        (None, None) => None,
    }
}

/// Writes `variant` of `base` (a storage type or a seeded corruption) as a GGUF at `path`
/// (what `groundtruth quantize` does); returns the weights written and the fallbacks taken.
pub fn export_variant(
    base: &Base,
    variant: Variant,
    path: &Path,
) -> Result<(Weights, Vec<crate::transform::Fallback>), SubjectError> {
    let (weights, fallbacks) = match variant {
        Variant::Base => (base.weights.clone(), vec![]),
        Variant::Convert(d) => crate::transform::convert(&base.weights, d)
            .map_err(|e| failed(format!("{} {variant}", base.model), e))?,
        // A damaged file is something users take away too (to test their own loaders).
        // Without evaluation tokens a swap of embedding rows has nothing to pick from and
        // says so.
        Variant::Corrupt(..) | Variant::Flip { .. } => (
            crate::transform::apply(&base.weights, &variant, &[])
                .map_err(|e| failed(format!("{} {variant}", base.model), e))?
                .weights,
            vec![],
        ),
    };
    export_weights(base, variant, &weights, path)?;
    Ok((weights, fallbacks))
}

/// Writes already derived `weights` of `variant` as a GGUF at `path`, with the base's
/// tokenizer, provenance and tensor order, declared as the variant's storage type.
pub fn export_weights(
    base: &Base,
    variant: Variant,
    weights: &Weights,
    path: &Path,
) -> Result<(), SubjectError> {
    // A variant declares the type it converted to; its flips do not change the type.
    let declared = variant.storage().map(crate::transform::ggml_dtype);
    crate::transform::export_gguf(path, &base.model, weights, base.export_source()?, declared)
        .map_err(|e| failed(path.display(), e))
}

fn load_gguf_base(entry: &ModelEntry, path: &Path, sha: String) -> Result<Base, SubjectError> {
    let summary = crate::gguf_guard::validate_gguf(path).map_err(|e| failed("", e))?;
    let (weights, info) = load_gguf(path).map_err(|e| failed(path.display(), e))?;
    let export_meta = info.metadata_in_file_order(&summary);
    let tokenizer = GgufTokenizer::from_metadata(&info.metadata.clone().into_iter().collect())
        .map_err(|e| failed(path.display(), e))?;
    Ok(Base {
        model: entry.name.clone(),
        weights_type: info.predominant_type(&weights),
        weights,
        tokenizer: Arc::new(tokenizer),
        file_sha256: sha.clone(),
        files: vec![FileHash {
            path: path.display().to_string(),
            sha256: sha,
        }],
        export_meta: Ok(export_meta),
        tensor_order: Some(summary.tensors.into_iter().map(|t| t.name).collect()),
    })
}

/// Writes a seeded model as a Hugging Face folder (deterministic bytes: same seed and
/// config, same file hashes); returns the hashed config file it was built from.
pub fn materialize_seeded(
    project: &Project,
    entry: &ModelEntry,
    dir: &Path,
) -> Result<FileHash, SubjectError> {
    let s = entry
        .seeded
        .as_ref()
        .ok_or_else(|| invalid(format!("model '{}' is not seeded", entry.name)))?;
    let cfg_path = project.path(&s.config);
    let text = crate::fsutil::read_text(&cfg_path).map_err(|e| failed("", e))?;
    let cfg =
        LlamaConfig::from_hf_json(&text, &cfg_path).map_err(|e| failed(cfg_path.display(), e))?;
    let weights = seeded(&cfg, s.seed).map_err(|e| failed("", e))?;
    let meta = BTreeMap::from([
        ("groundtruth.seed".to_string(), s.seed.to_string()),
        (
            "groundtruth.generator".to_string(),
            "groundtruth model::init::seeded".to_string(),
        ),
        (
            "groundtruth.config_sha256".to_string(),
            crate::fsutil::sha256_hex(text.as_bytes()),
        ),
    ]);
    save_hf_folder(
        dir,
        &weights,
        Some(&ByteTokenizer::hf_tokenizer_json()),
        &meta,
    )
    .map_err(|e| failed(dir.display(), e))?;
    Ok(FileHash {
        path: project.display(&cfg_path),
        sha256: crate::fsutil::sha256_hex(text.as_bytes()),
    })
}

fn load_folder(project: &Project, entry: &ModelEntry, dir: &Path) -> Result<Base, SubjectError> {
    let st = dir.join("model.safetensors");
    if !st.exists() {
        return Err(invalid(format!("{}: no model.safetensors", dir.display())));
    }
    let weights = load_hf_folder(dir).map_err(|e| failed(dir.display(), e))?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = HfTokenizer::from_file(&tok_path).map_err(|e| failed("", e))?;
    crate::tokenizer::check_fits(&tokenizer, weights.config.vocab_size)
        .map_err(|e| failed(tok_path.display(), e))?;
    let file_sha256 = sha256_file(&st).map_err(|e| failed("", e))?;
    let mut files = vec![
        hash(project, &dir.join("config.json"))?,
        FileHash {
            path: project.display(&st),
            sha256: file_sha256.clone(),
        },
    ];
    files.push(hash(project, &tok_path)?);
    // Only the byte vocabulary has a GGUF form here; any other tokenizer.json would need
    // its merges and pre-tokenizer translated, which nothing checks yet.
    let is_bytes =
        crate::fsutil::read_text(&tok_path).is_ok_and(|t| t == ByteTokenizer::hf_tokenizer_json());
    let export_meta = match is_bytes {
        true => Ok(ByteTokenizer::gguf_metadata()),
        false => Err(format!(
            "{}: only the byte-level tokenizer can be written to GGUF",
            tok_path.display()
        )),
    };
    Ok(Base {
        model: entry.name.clone(),
        weights,
        tokenizer: Arc::new(tokenizer),
        file_sha256,
        weights_type: "f32".into(),
        files,
        export_meta,
        tensor_order: None,
    })
}

fn hash(project: &Project, p: &Path) -> Result<FileHash, SubjectError> {
    Ok(FileHash {
        path: project.display(p),
        sha256: sha256_file(p).map_err(|e| failed("", e))?,
    })
}

/// Derives a variant of `base` and loads it with `options` (device, matmul path, dtype).
pub fn derive(
    base: &Base,
    variant: Variant,
    used_tokens: &[u32],
    options: &LoadOptions,
) -> Result<Subject, SubjectError> {
    let crate::transform::Applied {
        weights,
        notes,
        flips,
    } = crate::transform::apply(&base.weights, &variant, used_tokens)
        .map_err(|e| failed(format!("{} {variant}", base.model), e))?;
    let llama = Llama::load(&weights, options)
        .map_err(|e| failed(format!("{} {variant}: load", base.model), e))?;
    let (identity_sha256, weights_type) = match variant {
        Variant::Base => (base.file_sha256.clone(), base.weights_type.clone()),
        Variant::Convert(d) => (
            weights.sha256().map_err(|e| failed("", e))?,
            d.name().to_string(),
        ),
        Variant::Corrupt(..) | Variant::Flip { storage: None, .. } => (
            weights.sha256().map_err(|e| failed("", e))?,
            base.weights_type.clone(),
        ),
        Variant::Flip {
            storage: Some(d), ..
        } => (
            weights.sha256().map_err(|e| failed("", e))?,
            d.name().to_string(),
        ),
    };
    let path = format!(
        "weights {weights_type}; {} ({})",
        llama.numerical_path(),
        candle_version()
    );
    Ok(Subject {
        model: base.model.clone(),
        variant,
        weights,
        llama,
        tokenizer: base.tokenizer.clone(),
        identity_sha256,
        weights_type,
        files: base.files.clone(),
        path,
        notes,
        flips,
    })
}

fn candle_version() -> &'static str {
    env!("GROUNDTRUTH_DEP_VERSIONS")
        .split(", ")
        .next()
        .unwrap_or("candle")
}
