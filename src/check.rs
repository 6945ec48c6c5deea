//! `groundtruth check`: judging any checkpoint against any oracle with the registered
//! claims of `claims/check/`, chosen by what the checkpoint is: stored in the oracle's
//! own type it is the same model and meets parity bounds; a requantization to type T
//! meets the bands registered for T; a type with no band is refused, never passed.

use crate::claim::{expand, load_dir, Case, ClaimError, ClaimKind, StoredAs};
use crate::judge::{Judge, SkipPolicy};
use crate::oracle::{ModelConfig, Oracle, OracleError};
use crate::plan::{execute, Plan, RUN_SEED};
use crate::project::Project;
use crate::report::Report;
use crate::report::Reporter;
use crate::subject::registry::{FolderSource, GgufSource, ModelEntry};
use crate::variant::Variant;
use std::path::Path;
use std::sync::Arc;

/// The model name check claims use for the checkpoint under check.
pub const CHECKPOINT: &str = "checkpoint";

/// Why a check could not run: bad input, one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The model path is neither a GGUF file nor a Hugging Face folder.
    #[error("{0}")]
    Model(String),
    /// The oracle breaks the contract, or a reporter could not write its output (one
    /// error type for the JSON files the harness reads and writes).
    #[error(transparent)]
    File(#[from] OracleError),
    /// A hostile or truncated GGUF.
    #[error(transparent)]
    Gguf(#[from] crate::gguf_guard::GgufError),
    /// The check claims.
    #[error(transparent)]
    Claims(#[from] ClaimError),
    /// No claim is registered for the checkpoint's storage type.
    #[error("{model}: stored as {stored} (the oracle's model is {oracle}), and no band is registered for {stored} in claims/check/ (registered: {registered}); nothing would judge it")]
    NoBand {
        /// The checkpoint.
        model: String,
        /// Its storage type.
        stored: String,
        /// The oracle's `model.weights`.
        oracle: String,
        /// The types some claim names.
        registered: String,
    },
}

/// What the checkpoint was judged as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The dominant storage type of the checkpoint's matrices.
    pub checkpoint: String,
    /// The oracle's `model.weights`.
    pub oracle: String,
}

impl Storage {
    /// `the oracle's own type (q4_1): parity bounds` or `a requantization to q8_0`.
    pub fn judged_as(&self) -> String {
        match self.checkpoint == self.oracle {
            true => format!("the oracle's own type ({}): the same model, judged by parity bounds", self.oracle),
            false => format!("a requantization of the oracle's {} model to {}: judged by the bands registered for {}", self.oracle, self.checkpoint, self.checkpoint),
        }
    }
}

/// Judges `model` (GGUF file or HF folder) against `oracle`, telling `reporters` as it goes;
/// cases on a CUDA runtime use `gpu`.
pub fn judge_checkpoint(
    project: &Project,
    model: &Path,
    oracle_path: &Path,
    reporters: Vec<Box<dyn Reporter>>,
    gpu: crate::device::DeviceSpec,
) -> Result<(Report, Storage), CheckError> {
    let oracle = crate::oracle::read(oracle_path)?;
    let entry = checkpoint_entry(model, oracle_path)?;
    let claims = load_dir(&project.claims_dir().join("check"))?;
    let ids: Vec<String> = oracle.cases.iter().map(|c| c.id.clone()).collect();
    let cases = expand(&claims, &[CHECKPOINT.to_string()], |_| Ok(ids.clone()))?;
    let rerun = format!(
        "groundtruth check --model '{}' --oracle '{}'  # case {{case}}",
        abs(model),
        abs(oracle_path)
    );
    let judge = Judge::new(project.clone(), vec![entry], claims, RUN_SEED)
        .with_policy(SkipPolicy::UserCheckpoint)
        .with_gpu(gpu);
    // A checkpoint that cannot be loaded is bad input: one line, not one error per case.
    let limits = judge.preload(CHECKPOINT).map_err(CheckError::Model)?;
    // Before any case runs: an oracle that does not fit the model is one line, not an
    // error per case after minutes of model work.
    crate::oracle::check_for(&oracle, oracle_path, &limits)?;
    let subject = judge
        .loaded_subject(CHECKPOINT, Variant::Base)
        .map_err(CheckError::Model)?;
    let storage = Storage {
        checkpoint: subject.storage_type().to_string(),
        oracle: oracle.model.weights.clone(),
    };
    if subject.identity_sha256 == oracle.model.sha256 {
        own_file_agrees(
            &oracle,
            oracle_path,
            &ModelConfig::of_llama(&subject.weights.config),
            subject.tokenizer.eos(),
        )?;
    }
    let selected = select(cases, &storage, model)?;
    let plan = Arc::new(Plan {
        project: project.clone(),
        suite: "check".into(),
        cases: selected,
        judge: Arc::new(judge),
        reproduce: rerun,
    });
    let cases: Vec<&Case> = plan.cases.iter().collect();
    Ok((execute(plan.clone(), &cases, reporters)?, storage))
}

/// `p` made absolute for the registry entry and the rerun line (as given when that fails:
/// the path is shown, never opened, through this).
fn abs(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The registry entry of the checkpoint under check: a Hugging Face folder or a GGUF file
/// (refused here when hostile, before candle allocates anything from its counts).
fn checkpoint_entry(model: &Path, oracle_path: &Path) -> Result<ModelEntry, CheckError> {
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
            return Err(CheckError::Model(format!(
                "{}: a model folder needs config.json, model.safetensors and tokenizer.json",
                model.display()
            )));
        }
        entry.folder = Some(FolderSource {
            path: abs(model),
            sha256: None,
            recipe: None,
        });
    } else if model.is_file() {
        crate::gguf_guard::validate_gguf(model)?;
        entry.gguf = Some(GgufSource {
            file: abs(model),
            sha256: None,
            fetch: None,
        });
    } else {
        let why = crate::fsutil::require_regular_file(model)
            .err()
            .map_or_else(
                || "no such file or folder".to_string(),
                |e| e.source.to_string(),
            );
        return Err(CheckError::Model(format!("{}: {why}", model.display())));
    }
    Ok(entry)
}

/// The oracle made from this very file must describe it: its `model.config` must be the
/// file's and its continuations must end at the file's EOS. Otherwise the oracle is
/// broken (exit 2), not the checkpoint falsified.
fn own_file_agrees(
    oracle: &Oracle,
    path: &Path,
    ours: &ModelConfig,
    eos: Option<u32>,
) -> Result<(), OracleError> {
    let contract = |msg: String| OracleError::contract(path, msg);
    if let Some(want) = &oracle.model.config {
        let (_, differ) = want.mismatches(ours);
        if !differ.is_empty() {
            return Err(contract(format!(
                "field 'model.config' disagrees with the oracle's own model file (same sha256): {}",
                differ.join("; ")
            )));
        }
    }
    if let Some(eos) = eos {
        oracle.check_eos(eos).map_err(contract)?;
    }
    Ok(())
}

/// The cases whose claims judge a checkpoint of this storage type; an error when the type
/// is not the oracle's and no drift band names it.
fn select(cases: Vec<Case>, storage: &Storage, model: &Path) -> Result<Vec<Case>, CheckError> {
    let fits = |c: &Case| {
        c.claim
            .kind
            .stored_as()
            .selects(&storage.checkpoint, &storage.oracle)
    };
    let banded = cases.iter().any(|c| {
        c.claim.kind.claim_kind() == ClaimKind::OracleDrift
            && *c.claim.kind.stored_as() != StoredAs::Unrestricted
            && fits(c)
    });
    if storage.checkpoint != storage.oracle && !banded {
        let mut registered: Vec<String> = cases
            .iter()
            .flat_map(|c| c.claim.kind.stored_as().names())
            .filter(|t| t != crate::claim::STORED_AS_ORACLE)
            .collect();
        registered.sort_unstable();
        registered.dedup();
        return Err(CheckError::NoBand {
            model: model.display().to_string(),
            stored: storage.checkpoint.clone(),
            oracle: storage.oracle.clone(),
            registered: registered.join(", "),
        });
    }
    Ok(cases.into_iter().filter(fits).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cases() -> Vec<Case> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("claims/check");
        let claims = load_dir(&dir).unwrap();
        expand(&claims, &[CHECKPOINT.to_string()], |_| Ok(vec!["p".into()])).unwrap()
    }

    fn ids(cases: &[Case]) -> Vec<String> {
        let mut v: Vec<String> = cases.iter().map(|c| c.claim.id.clone()).collect();
        v.dedup();
        v
    }

    #[test]
    fn a_checkpoint_gets_the_claims_of_what_it_is_and_a_type_without_a_band_is_refused() {
        let s = |c: &str, o: &str| Storage {
            checkpoint: c.into(),
            oracle: o.into(),
        };
        let same = ids(&select(check_cases(), &s("q4_1", "q4_1"), Path::new("m.gguf")).unwrap());
        assert_eq!(
            same,
            ["CK-1", "CK-8", "CK-9", "CK-10", "CK-11", "CK-12", "CK-13"]
        );
        let q8 = ids(&select(check_cases(), &s("q8_0", "q4_1"), Path::new("m.gguf")).unwrap());
        assert_eq!(q8, ["CK-1", "CK-13", "CK-17", "CK-18", "CK-19"]);
        let e = select(check_cases(), &s("q2_k", "q4_1"), Path::new("m.gguf"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.gguf: stored as q2_k") && e.contains("no band is registered for q2_k"),
            "{e}"
        );
    }
}
