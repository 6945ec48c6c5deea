//! Checkpoints: a Hugging Face folder (`config.json`, `model.safetensors` with the run's
//! metadata, `tokenizer.json`) plus `optimizer.safetensors` (AdamW moments) and
//! `trainer_state.json` (step, metrics so far, file hashes), written into a temporary
//! folder and renamed into place, so a reader or a crash sees a whole checkpoint or none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::metrics::MetricsRow;
use super::optim::{AdamW, AdamWParams, Moments};
use crate::fsutil::{atomic_write, sha256_file};
use crate::model::{load_hf_folder, read_hf_metadata, save_hf_folder, Weights};

/// Value of `format` in `trainer_state.json`.
pub const STATE_FORMAT: &str = "groundtruth-trainer-state/1";

/// `trainer_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// [`STATE_FORMAT`].
    pub format: String,
    /// Steps completed.
    pub step: u64,
    /// Optimizer steps taken (equals `step`).
    pub optimizer_t: u64,
    /// SHA-256 of `model.safetensors`.
    pub model_sha256: String,
    /// SHA-256 of `optimizer.safetensors`.
    pub optimizer_sha256: String,
    /// One row per step so far.
    pub metrics: Vec<MetricsRow>,
}

fn invalid(file: &Path, msg: String) -> TrainError {
    TrainError::invalid(file, msg)
}

/// `checkpoint-000300`.
pub fn checkpoint_name(step: u64) -> String {
    format!("checkpoint-{step:06}")
}

/// Writes the checkpoint folder `dir` whole: everything goes to a sibling temporary folder
/// first, which is then renamed to `dir` (an older `dir` is moved aside, then removed).
pub fn write_checkpoint(
    dir: &Path,
    weights: &Weights,
    tokenizer_json: &str,
    metadata: &BTreeMap<String, String>,
    opt: &AdamW,
    metrics: &[MetricsRow],
) -> Result<(), TrainError> {
    crate::fsutil::write_dir_atomic(dir, |tmp| -> Result<(), TrainError> {
        save_hf_folder(tmp, weights, Some(tokenizer_json), metadata)?;
        atomic_write(&tmp.join("optimizer.safetensors"), &optimizer_bytes(opt)?)?;
        let step = metadata
            .get("groundtruth.step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(opt.t);
        let state = TrainerState {
            format: STATE_FORMAT.into(),
            step,
            optimizer_t: opt.t,
            model_sha256: sha256_file(&tmp.join("model.safetensors"))?,
            optimizer_sha256: sha256_file(&tmp.join("optimizer.safetensors"))?,
            metrics: metrics.to_vec(),
        };
        let text = serde_json::to_string_pretty(&state).map_err(|e| invalid(tmp, e.to_string()))?;
        atomic_write(&tmp.join("trainer_state.json"), text.as_bytes())?;
        Ok(())
    })
}

/// A checkpoint read back: weights, metadata, optimizer and state, hashes verified.
pub struct Checkpoint {
    /// Model weights.
    pub weights: Weights,
    /// `model.safetensors` metadata.
    pub metadata: BTreeMap<String, String>,
    /// Optimizer with its moments and step count.
    pub optimizer: AdamW,
    /// Trainer state.
    pub state: TrainerState,
}

/// Reads a checkpoint folder written by [`write_checkpoint`]; a file whose hash is not the
/// one recorded in `trainer_state.json` is an error naming it.
pub fn read_checkpoint(dir: &Path, params: AdamWParams) -> Result<Checkpoint, TrainError> {
    let state_path = dir.join("trainer_state.json");
    let state: TrainerState = crate::input::read_json(&state_path, crate::fsutil::MAX_TEXT_BYTES)
        .map_err(|e| invalid(&state_path, e.detail()))?;
    if state.format != STATE_FORMAT {
        return Err(invalid(
            &state_path,
            format!("field `format`: '{}' is not '{STATE_FORMAT}'", state.format),
        ));
    }
    for (file, want) in [
        ("model.safetensors", &state.model_sha256),
        ("optimizer.safetensors", &state.optimizer_sha256),
    ] {
        let got = sha256_file(&dir.join(file))?;
        if &got != want {
            return Err(invalid(
                &dir.join(file),
                format!("sha256 {got} is not the {want} recorded in trainer_state.json"),
            ));
        }
    }
    let weights = load_hf_folder(dir)?;
    let metadata = read_hf_metadata(dir)?;
    let opt_path = dir.join("optimizer.safetensors");
    let bytes = crate::model::read_safetensors(&opt_path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(&opt_path, e.to_string()))?;
    let mut state_map = BTreeMap::new();
    for name in weights.tensors.keys() {
        let read = |kind: &str| -> Result<Vec<f32>, TrainError> {
            let key = format!("{kind}/{name}");
            let view = st
                .tensor(&key)
                .map_err(|e| invalid(&opt_path, format!("tensor `{key}`: {e}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(invalid(&opt_path, format!("tensor `{key}` is not F32")));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        state_map.insert(
            name.clone(),
            Moments {
                m: read("m")?,
                v: read("v")?,
            },
        );
    }
    let optimizer = AdamW::restore(params, state_map, state.optimizer_t);
    Ok(Checkpoint {
        weights,
        metadata,
        optimizer,
        state,
    })
}

/// The moments as safetensors `m/<name>`, `v/<name>` (f32, flat); the crate's serializer
/// orders tensors by name, so the bytes are a function of the values.
fn optimizer_bytes(opt: &AdamW) -> Result<Vec<u8>, TrainError> {
    if !opt.is_synced() {
        // Writing the host copy now would store moments some steps old.
        return Err(TrainError::invalid("optimizer.safetensors", "the optimizer's moments on the device are newer than its host copy (AdamW::sync first)"));
    }
    let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let owned: Vec<(String, Vec<u8>, usize)> = opt
        .state
        .iter()
        .flat_map(|(n, m)| {
            [
                (format!("m/{n}"), le(&m.m), m.m.len()),
                (format!("v/{n}"), le(&m.v), m.v.len()),
            ]
        })
        .collect();
    let views = owned
        .iter()
        .map(|(n, b, k)| TensorView::new(Dtype::F32, vec![*k], b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrainError::invalid(PathBuf::from("optimizer.safetensors"), e.to_string()))?;
    safetensors::serialize(views, None)
        .map_err(|e| TrainError::invalid(PathBuf::from("optimizer.safetensors"), e.to_string()))
}
