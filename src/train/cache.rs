//! Trained checkpoints cached under the output folder ([`ensure_trained`]), and corpora
//! and their tokenized splits cached per process ([`corpus_for`], [`data_for`]), so the
//! claims of one run share one training and one tokenization.
//!
//! A recipe's cache folder is `models/trained/<recipe>-<key>` where the key hashes the
//! final checkpoint's metadata (architecture, hyper-parameters, corpus, tokenizer, crate
//! versions) and the source fingerprint build.rs computes: change any of them and a fresh
//! run trains. A run trains into a temporary folder renamed into place when complete, so
//! another process never reads half of one;
//! within a process a [`Memo`] per folder makes concurrent claims wait for a single run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::data::{Corpus, Data};
use super::error::TrainError;
use super::recipe::{Recipe, RECIPES_FILE};
use super::spec::TrainSpec;
use super::trainer::{train, RunOptions, RunSummary};
use crate::fsutil::sha256_file;
use crate::fsutil::FileHash;
use crate::memo::Memo;
use crate::project::Project;
use crate::runtime::Runtime;

/// A finished run in the cache.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Its folder (a Hugging Face folder plus checkpoints, metrics and summary).
    pub dir: PathBuf,
    /// The recipe it was trained under (from configs/recipes.toml).
    pub recipe: Recipe,
    /// The run's summary.
    pub summary: RunSummary,
    /// `configs/recipes.toml`, hashed, for evidence.
    pub recipes_file: FileHash,
}

/// The cache folder of `spec` trained under recipe `name`.
pub fn cache_dir(project: &Project, name: &str, spec: &TrainSpec) -> PathBuf {
    project
        .out_dir()
        .join("models")
        .join("trained")
        .join(format!("{name}-{}", spec.key()))
}

/// Per-process results; an error is shared by every caller that asks for the same entry.
type Shared<T> = Result<Arc<T>, Arc<TrainError>>;

/// The trained checkpoint of recipe `name`: read from the cache, or trained now (once per
/// process even when several threads ask).
pub fn ensure_trained(project: &Project, name: &str) -> Result<Trained, TrainError> {
    ensure_trained_on(project, name, None)
}

/// [`ensure_trained`] on `runtime` instead of the recipe's own (a claim's case trains on
/// its runtime; another runtime is another run, with its own cache folder).
pub fn ensure_trained_on(
    project: &Project,
    name: &str,
    runtime: Option<Runtime>,
) -> Result<Trained, TrainError> {
    static RUNS: OnceLock<Memo<PathBuf, Shared<RunSummary>>> = OnceLock::new();
    let (spec, recipe) = TrainSpec::from_recipe(project, name)?;
    let spec = match runtime {
        Some(r) => spec.on(r),
        None => spec,
    };
    let dir = cache_dir(project, name, &spec);
    let summary = RUNS
        .get_or_init(Memo::new)
        .get_or(&dir, || {
            cached_or_train(&dir, &spec, &recipe)
                .map(Arc::new)
                .map_err(Arc::new)
        })
        .map_err(TrainError::Cached)?;
    let rf = project.path(RECIPES_FILE);
    let recipes_file = FileHash {
        path: project.display(&rf),
        sha256: sha256_file(&rf)?,
    };
    Ok(Trained {
        dir,
        recipe,
        summary: (*summary).clone(),
        recipes_file,
    })
}

fn cached_or_train(
    dir: &Path,
    spec: &TrainSpec,
    recipe: &Recipe,
) -> Result<RunSummary, TrainError> {
    let summary_path = dir.join("train_summary.json");
    if !summary_path.is_file() {
        let tmp = dir.with_extension(format!("tmp.{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|source| crate::fsutil::FsError {
                path: tmp.clone(),
                source,
            })?;
        }
        let data = data_for(spec)?;
        let mut opts = RunOptions::new(&tmp);
        opts.eval_every = recipe.eval_every;
        train(spec, &data, &opts)?;
        // Another process may have finished the same run meanwhile: its result is equal.
        if std::fs::rename(&tmp, dir).is_err() && summary_path.is_file() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(crate::input::read_json(
        &summary_path,
        crate::fsutil::MAX_TEXT_BYTES,
    )?)
}

/// The tokenized split of `spec`'s corpus, computed once per process per corpus,
/// tokenizer and split.
pub fn data_for(spec: &TrainSpec) -> Result<Arc<Data>, TrainError> {
    type Key = (String, String, u64);
    static DATA: OnceLock<Memo<Key, Shared<Data>>> = OnceLock::new();
    let key = (
        spec.corpus.sha256.clone(),
        spec.tokenizer_sha256(),
        spec.hyper.val_fraction.to_bits(),
    );
    DATA.get_or_init(Memo::new)
        .get_or(&key, || {
            let tok = spec.tokenizer().map_err(Arc::new)?;
            // The split must hold a window of this run's sequence length.
            Data::new(
                &spec.corpus,
                &tok,
                spec.hyper.val_fraction,
                spec.hyper.seq_len,
            )
            .map(Arc::new)
            .map_err(Arc::new)
        })
        .map_err(TrainError::Cached)
}

/// Reads a corpus once per process per path and expected hash. A missing file is
/// reported as such (an error naming it), never cached.
pub fn corpus_for(path: &Path, sha256: &str) -> Result<Arc<Corpus>, TrainError> {
    static CORPORA: OnceLock<Memo<(PathBuf, String), Shared<Corpus>>> = OnceLock::new();
    if !path.is_file() {
        return Err(TrainError::CorpusMissing {
            path: path.to_path_buf(),
        });
    }
    CORPORA
        .get_or_init(Memo::new)
        .get_or(&(path.to_path_buf(), sha256.to_string()), || {
            Corpus::load(path, Some(sha256))
                .map(Arc::new)
                .map_err(Arc::new)
        })
        .map_err(TrainError::Cached)
}
