//! [`TrainSpec`]: one training run resolved from a recipe (or command-line flags) — the
//! rung's architecture, the hyper-parameters, the corpus and the frozen tokenizer — and
//! the checkpoint metadata that records all of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::data::{split_point, Corpus};
use super::error::TrainError;
use super::recipe::{load_recipes, Hyper, Recipe, Recipes, RECIPES_FILE};
use crate::fsutil::{read_text, sha256_hex};
use crate::model::{load_ladder, LlamaConfig};
use crate::project::Project;
use crate::runtime::Runtime;
use crate::tokenizer::HfTokenizer;

/// The ladder file of a project.
pub const LADDER_FILE: &str = "configs/ladder.toml";

/// Value of `groundtruth.format` in checkpoint metadata.
pub const CHECKPOINT_FORMAT: &str = "groundtruth-checkpoint/1";

/// Everything that determines a trained checkpoint.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    /// Ladder rung name.
    pub rung: String,
    /// Its architecture.
    pub config: LlamaConfig,
    /// Hyper-parameters.
    pub hyper: Hyper,
    /// The corpus, verified.
    pub corpus: Arc<Corpus>,
    /// The frozen tokenizer's `tokenizer.json`.
    pub tokenizer_json: Arc<String>,
    /// Device and precision (CPU f32 unless [`TrainSpec::on`] says otherwise).
    pub runtime: Runtime,
}

impl TrainSpec {
    /// Checks that the pieces fit: valid hyper-parameters, a tokenizer of the model's
    /// vocabulary size, sequences within the model's positions.
    pub fn new(
        rung: &str,
        config: LlamaConfig,
        hyper: Hyper,
        corpus: Arc<Corpus>,
        tokenizer_json: Arc<String>,
    ) -> Result<Self, TrainError> {
        let invalid = TrainError::Spec;
        hyper
            .validate()
            .map_err(|m| invalid(format!("rung `{rung}`: {m}")))?;
        if hyper.seq_len > config.max_position_embeddings {
            return Err(invalid(format!(
                "rung `{rung}`: seq_len {} exceeds max_position_embeddings {}",
                hyper.seq_len, config.max_position_embeddings
            )));
        }
        let tok = tokenizer(&tokenizer_json)?;
        use crate::tokenizer::TextTokenizer;
        if tok.vocab_size() != config.vocab_size {
            return Err(invalid(format!(
                "rung `{rung}`: tokenizer has {} ids, the model {}",
                tok.vocab_size(),
                config.vocab_size
            )));
        }
        Ok(Self {
            rung: rung.to_string(),
            config,
            hyper,
            corpus,
            tokenizer_json,
            runtime: Runtime::default(),
        })
    }

    /// The same run on `runtime` (another device or precision trains other weights).
    pub fn on(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Resolves the registered recipe `name` of `project` (recipes, ladder, tokenizer and
    /// corpus files, each checked).
    pub fn from_recipe(project: &Project, name: &str) -> Result<(TrainSpec, Recipe), TrainError> {
        let recipes = load_recipes(&project.path(RECIPES_FILE))?;
        let recipe = recipes.get(name).cloned().ok_or_else(|| {
            TrainError::invalid(
                project.path(RECIPES_FILE),
                format!("no recipe named `{name}`"),
            )
        })?;
        let corpus =
            super::cache::corpus_for(&project.path(&recipe.corpus), &recipe.corpus_sha256)?;
        let spec = Self::for_rung(project, &recipes, &recipe.rung, recipe.hyper, corpus)?
            .on(recipe.runtime);
        Ok((spec, recipe))
    }

    /// A run of ladder rung `rung` with `hyper` on `corpus`, using the project's frozen
    /// tokenizer (checked against the SHA-256 registered in the recipes file).
    pub fn for_rung(
        project: &Project,
        recipes: &Recipes,
        rung: &str,
        hyper: Hyper,
        corpus: Arc<Corpus>,
    ) -> Result<TrainSpec, TrainError> {
        let ladder = load_ladder(&project.path(LADDER_FILE))?;
        let config = ladder
            .rung(rung)
            .ok_or_else(|| {
                TrainError::invalid(project.path(LADDER_FILE), format!("no rung named `{rung}`"))
            })?
            .config
            .clone();
        let json = Arc::new(frozen_tokenizer(project, recipes)?);
        Self::new(rung, config, hyper, corpus, json)
    }

    /// SHA-256 of the tokenizer file.
    pub fn tokenizer_sha256(&self) -> String {
        sha256_hex(self.tokenizer_json.as_bytes())
    }

    /// A tokenizer built from the run's `tokenizer.json` (built anew at each call).
    pub fn tokenizer(&self) -> Result<HfTokenizer, TrainError> {
        tokenizer(&self.tokenizer_json)
    }

    /// The safetensors metadata of the checkpoint at `step`: seed, config, hyper-parameters,
    /// corpus file and hash, split, tokenizer hash, crate versions and, off the CPU f32
    /// default, the runtime (`groundtruth.runtime`). No time, host or path, so equal runs
    /// write equal bytes.
    pub fn metadata(&self, step: u64) -> BTreeMap<String, String> {
        let split = split_point(&self.corpus.text, self.hyper.val_fraction)
            .unwrap_or(self.corpus.text.len());
        let mut m = BTreeMap::from([
            ("groundtruth.format".into(), CHECKPOINT_FORMAT.into()),
            ("groundtruth.rung".into(), self.rung.clone()),
            ("groundtruth.config".into(), json(&self.config)),
            ("groundtruth.hyper".into(), json(&self.hyper)),
            ("groundtruth.seed".into(), self.hyper.seed.to_string()),
            ("groundtruth.step".into(), step.to_string()),
            (
                "groundtruth.init".into(),
                "model::init::seeded: matrices uniform in ±0.02·√3 (std 0.02), norm gains 1".into(),
            ),
            ("groundtruth.corpus".into(), self.corpus.file_name()),
            (
                "groundtruth.corpus_sha256".into(),
                self.corpus.sha256.clone(),
            ),
            (
                "groundtruth.split".into(),
                format!(
                    "train bytes [0, {split}), validation bytes [{split}, {})",
                    self.corpus.text.len()
                ),
            ),
            (
                "groundtruth.tokenizer_sha256".into(),
                self.tokenizer_sha256(),
            ),
            ("groundtruth.versions".into(), versions()),
        ]);
        if let Some(r) = self.runtime.metadata_value() {
            m.insert("groundtruth.runtime".into(), r);
        }
        m
    }

    /// The cache key: the metadata plus the harness's source fingerprint (not in the
    /// metadata, so the weights' bytes do not depend on it), so a code change retrains.
    pub fn key(&self) -> String {
        let m = serde_json::to_string(&self.metadata(self.hyper.steps)).unwrap_or_default();
        let m = format!("{m}\nsource {}", env!("GROUNDTRUTH_SOURCE_HASH"));
        sha256_hex(m.as_bytes())[..16].to_string()
    }
}

/// Compact JSON, struct fields in declaration order (a plain struct cannot fail to serialize).
pub(super) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `groundtruth X, candle-core Y, …`: the versions whose arithmetic produced the weights.
pub fn versions() -> String {
    format!(
        "groundtruth {}, {}, {}",
        env!("CARGO_PKG_VERSION"),
        env!("GROUNDTRUTH_DEP_VERSIONS"),
        env!("GROUNDTRUTH_RUSTC")
    )
}

fn tokenizer(json: &str) -> Result<HfTokenizer, TrainError> {
    tokenizers::Tokenizer::from_bytes(json.as_bytes())
        .map(HfTokenizer::new)
        .map_err(TrainError::TokenizerLibrary)
}

/// The ladder's frozen `tokenizer.json` (path from `configs/ladder.toml`), checked against
/// the SHA-256 registered in the recipes file.
pub fn frozen_tokenizer(project: &Project, recipes: &Recipes) -> Result<String, TrainError> {
    let ladder = load_ladder(&project.path(LADDER_FILE))?;
    let rel = ladder.vocabulary.tokenizer.ok_or_else(|| {
        TrainError::invalid(
            project.path(LADDER_FILE),
            "field `vocabulary.tokenizer` is not set",
        )
    })?;
    let path = project.path(&rel);
    let text = read_text(&path)?;
    let sha = sha256_hex(text.as_bytes());
    if sha != recipes.tokenizer.sha256 {
        return Err(TrainError::invalid(path, format!("sha256 {sha} is not the {} registered in {RECIPES_FILE} (rebuild with `groundtruth tokenizer build`)", recipes.tokenizer.sha256)));
    }
    Ok(text)
}

/// Learns the ladder tokenizer from the recipes file's corpus: the bytes of `tokenizer.json`.
pub fn build_tokenizer(project: &Project, recipes: &Recipes) -> Result<String, TrainError> {
    let ladder = load_ladder(&project.path(LADDER_FILE))?;
    let spec = &recipes.tokenizer;
    let corpus = Corpus::load(&project.path(&spec.corpus), Some(&spec.corpus_sha256))?;
    Ok(
        super::bpe::train_bpe(&corpus.text, ladder.vocabulary.size, spec.min_frequency)?
            .tokenizer_json(),
    )
}
