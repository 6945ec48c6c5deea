//! `groundtruth check`: judging any checkpoint against any oracle with the registered
//! claims of `claims/check/` (exact-match claims when the file is the oracle's, drift
//! claims otherwise).

use crate::claim::{expand, load_dir, ClaimError};
use crate::judge::{Judge, SkipPolicy};
use crate::plan::{report, RUN_SEED};
use crate::project::Project;
use crate::report::Report;
use crate::subject::registry::{FolderSource, GgufSource, ModelEntry};
use std::path::Path;

/// The model name check claims use for the checkpoint under check.
pub const CHECKPOINT: &str = "checkpoint";

/// Why a check could not run: bad input, one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The model path is neither a GGUF file nor a Hugging Face folder.
    #[error("{0}")]
    Model(String),
    /// The oracle breaks the contract.
    #[error(transparent)]
    Oracle(#[from] crate::oracle::OracleError),
    /// A hostile or truncated GGUF.
    #[error(transparent)]
    Gguf(#[from] crate::gguf_check::GgufError),
    /// The check claims.
    #[error(transparent)]
    Claims(#[from] ClaimError),
}

/// Judges `model` (GGUF file or HF folder) against `oracle`.
pub fn check(project: &Project, model: &Path, oracle_path: &Path) -> Result<Report, CheckError> {
    let oracle = crate::oracle::read(oracle_path)?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let mut entry = ModelEntry {
        name: CHECKPOINT.into(),
        description: format!("{} under check", model.display()),
        oracle: Some(abs(oracle_path)),
        seeded: None,
        gguf: None,
        folder: None,
        export: None,
        trained: None,
        hub: None,
    };
    if model.is_dir() {
        if !model.join("config.json").is_file() {
            return Err(CheckError::Model(format!("{}: a model folder needs config.json, model.safetensors and tokenizer.json", model.display())));
        }
        entry.folder = Some(FolderSource { path: abs(model), sha256: None, recipe: None });
    } else if model.is_file() {
        // Hostile files are refused here, before candle allocates anything from their counts.
        crate::gguf_check::check_gguf(model)?;
        entry.gguf = Some(GgufSource { file: abs(model), sha256: None, fetch: None });
    } else {
        let why = crate::fsutil::require_regular_file(model).err().map_or_else(|| "no such file or folder".to_string(), |e| e.source.to_string());
        return Err(CheckError::Model(format!("{}: {why}", model.display())));
    }
    let claims = load_dir(&project.claims_dir().join("check"))?;
    let ids: Vec<String> = oracle.cases.iter().map(|c| c.id.clone()).collect();
    let cases = expand(&claims, &[CHECKPOINT.to_string()], |_| Ok(ids.clone()))?;
    let rerun = format!("groundtruth check --model '{}' --oracle '{}'  # case {{case}}", abs(model), abs(oracle_path));
    let judge = Judge::new(project.clone(), vec![entry], claims, "check", RUN_SEED).with_reproduce(rerun).with_policy(SkipPolicy::UserCheckpoint);
    // A checkpoint that cannot be loaded is bad input: one line, not one error per case.
    let limits = judge.preload(CHECKPOINT).map_err(CheckError::Model)?;
    // Before any case runs: an oracle that does not fit the model is one line, not an
    // error per case after minutes of model work.
    crate::oracle::check_for(&oracle, oracle_path, &limits)?;
    Ok(report("check", cases.iter().map(|c| judge.run(c)).collect(), cases.len()))
}
