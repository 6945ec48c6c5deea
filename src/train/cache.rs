//! Trained checkpoints cached under the output folder ([`ensure_trained`]) and tokenized
//! corpora cached per process ([`data_for`]), so the claims of one run share one training.
//!
//! A recipe's cache folder is `models/trained/<recipe>-<key>` where the key hashes the
//! final checkpoint's metadata (architecture, hyper-parameters, corpus, tokenizer, crate
//! versions): change any of them and a fresh run trains. A run trains into a temporary
//! folder renamed into place when complete, so another process never reads half of one;
//! within a process one lock per folder makes concurrent claims wait for a single run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use super::data::{Corpus, Data};
use super::error::TrainError;
use super::recipe::{Recipe, RECIPES_FILE};
use super::spec::TrainSpec;
use super::trainer::{train, RunOptions, RunSummary};
use crate::fsutil::{read_text, sha256_file};
use crate::project::Project;
use crate::report::FileHash;

/// A finished run in the cache.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Its folder (a Hugging Face folder plus checkpoints, metrics and summary).
    pub dir: PathBuf,
    /// What was trained.
    pub spec: TrainSpec,
    /// The recipe.
    pub recipe: Recipe,
    /// The run's summary.
    pub summary: RunSummary,
    /// `configs/recipes.toml`, hashed, for evidence.
    pub recipes_file: FileHash,
}

fn lock_for(dir: &PathBuf) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(dir.clone()).or_default().clone()
}

/// The cache folder of `spec` trained under recipe `name`.
pub fn cache_dir(project: &Project, name: &str, spec: &TrainSpec) -> PathBuf {
    project
        .out_dir()
        .join("models")
        .join("trained")
        .join(format!("{name}-{}", spec.key()))
}

/// The trained checkpoint of recipe `name`: read from the cache, or trained now (once per
/// process even when several threads ask).
pub fn ensure_trained(project: &Project, name: &str) -> Result<Trained, TrainError> {
    let (spec, recipe) = TrainSpec::from_recipe(project, name)?;
    let dir = cache_dir(project, name, &spec);
    let lock = lock_for(&dir);
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    let summary_path = dir.join("train_summary.json");
    if !summary_path.is_file() {
        let tmp = dir.with_extension(format!("tmp.{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|source| crate::fsutil::FsError {
                path: tmp.clone(),
                source,
            })?;
        }
        let data = data_for(&spec)?;
        let mut opts = RunOptions::new(&tmp);
        opts.eval_every = recipe.eval_every;
        train(&spec, &data, &opts)?;
        // Another process may have finished the same run meanwhile: its result is equal.
        if std::fs::rename(&tmp, &dir).is_err() && summary_path.is_file() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let text = read_text(&summary_path)?;
    let summary: RunSummary = serde_json::from_str(&text).map_err(|e| TrainError::Invalid {
        file: summary_path.clone(),
        msg: e.to_string(),
    })?;
    let rf = project.path(RECIPES_FILE);
    let recipes_file = FileHash {
        path: project.display(&rf),
        sha256: sha256_file(&rf)?,
    };
    Ok(Trained {
        dir,
        spec,
        recipe,
        summary,
        recipes_file,
    })
}

/// The tokenized split of `spec`'s corpus, computed once per process per corpus,
/// tokenizer and split.
pub fn data_for(spec: &TrainSpec) -> Result<Arc<Data>, TrainError> {
    type Key = (String, String, u64);
    static DATA: OnceLock<Mutex<HashMap<Key, Arc<OnceLock<Arc<Data>>>>>> = OnceLock::new();
    let key = (
        spec.corpus.sha256.clone(),
        spec.tokenizer_sha256(),
        spec.hyper.val_fraction.to_bits(),
    );
    let slot = DATA
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default()
        .clone();
    if let Some(d) = slot.get() {
        return Ok(d.clone());
    }
    let tok = spec.tokenizer()?;
    // The split must hold a window of the longest sequence any caller uses.
    let data = Arc::new(Data::new(
        &spec.corpus,
        &tok,
        spec.hyper.val_fraction,
        spec.hyper.seq_len,
    )?);
    Ok(slot.get_or_init(|| data).clone())
}

/// Reads a corpus once per process per path.
pub fn corpus_for(path: &std::path::Path, sha256: &str) -> Result<Arc<Corpus>, TrainError> {
    static CORPORA: OnceLock<Mutex<HashMap<(PathBuf, String), Arc<Corpus>>>> = OnceLock::new();
    let key = (path.to_path_buf(), sha256.to_string());
    if let Some(c) = CORPORA
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(c.clone());
    }
    let c = Arc::new(Corpus::load(path, Some(sha256))?);
    CORPORA
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, c.clone());
    Ok(c)
}
