//! [`sft`]: supervised fine-tuning of a trained model on arithmetic traces — the SFT
//! vocabulary (tags and end token appended), seeded batches of train-split problems, the
//! loss on the completion only, AdamW with warmup + cosine and clipping, the held-out
//! loss before, during and after, and a Hugging Face folder that loads like any other.
//!
//! Same spec, same machine: bit-identical weights (batches are functions of seed and
//! step; the new rows of the seed; nothing reads a clock into the arithmetic).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::data::unigram_entropy;
use super::error::TrainError;
use super::metrics::{write_run_reports, MetricsRow};
use super::optim::AdamW;
use super::sft_config::SftHyper;
use super::sft_data::{masked_eval_loss, masked_loss, Example};
use super::sft_vocab::{extend_tokenizer, extend_weights, tokenizer_config};
use super::spec::{json, versions};
use super::trainer::{descend, evaluates, progress_bar};
use crate::fsutil::{atomic_write, sha256_file, sha256_hex};
use crate::metrics::Tags;
use crate::model::{save_hf_folder, TrainableLlama, Weights};
use crate::problems::{ProblemSpace, Split};
use crate::tokenizer::HfTokenizer;

/// Value of `groundtruth.format` in SFT checkpoint metadata.
pub const SFT_FORMAT: &str = "groundtruth-sft/1";

/// Everything that determines an SFT checkpoint.
#[derive(Debug, Clone)]
pub struct SftSpec {
    /// Recipe name (or `cli`).
    pub name: String,
    /// What the base is (a registered model name or a folder), for metadata.
    pub base_label: String,
    /// SHA-256 of the base's `model.safetensors`.
    pub base_sha256: String,
    /// The base weights.
    pub base: Weights,
    /// The base's `tokenizer.json` (its ids are the embedding's rows).
    pub base_tokenizer_json: Arc<String>,
    /// The trace tags.
    pub tags: Tags,
    /// The token that ends an answer (added to the vocabulary; generation stops there).
    pub end_token: String,
    /// The problem space and split.
    pub space: ProblemSpace,
    /// Levels trained on (and evaluated on).
    pub levels: Vec<u8>,
    /// Hyper-parameters.
    pub hyper: SftHyper,
    /// Held-out problems of the validation loss.
    pub eval_problems: usize,
}

impl SftSpec {
    /// The tokens appended to the vocabulary, in id order: the four tags, then the end token.
    pub fn specials(&self) -> Vec<&str> {
        let mut v = self.tags.in_order().to_vec();
        v.push(&self.end_token);
        v
    }

    /// Checks the pieces fit (hyper-parameters, levels, a base of float weights).
    pub fn validate(&self) -> Result<(), TrainError> {
        self.hyper
            .validate()
            .map_err(|m| TrainError::Spec(format!("sft '{}': {m}", self.name)))?;
        self.space.validate().map_err(TrainError::Spec)?;
        if self.levels.is_empty()
            || self
                .levels
                .iter()
                .any(|&l| l == 0 || l > self.space.max_level)
        {
            return Err(TrainError::Spec(format!(
                "sft '{}': levels {:?} are not in 1..={}",
                self.name, self.levels, self.space.max_level
            )));
        }
        if self.eval_problems == 0 {
            return Err(TrainError::Spec(format!(
                "sft '{}': eval_problems must be at least 1",
                self.name
            )));
        }
        Ok(())
    }

    /// The checkpoint metadata at `step`: base, data, tags, hyper-parameters, versions.
    /// No time, host or path, so equal runs write equal bytes.
    pub fn metadata(&self, step: u64, tokenizer_sha256: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("groundtruth.format".into(), SFT_FORMAT.into()),
            ("groundtruth.sft.recipe".into(), self.name.clone()),
            ("groundtruth.sft.base".into(), self.base_label.clone()),
            (
                "groundtruth.sft.base_sha256".into(),
                self.base_sha256.clone(),
            ),
            (
                "groundtruth.sft.base_tokenizer_sha256".into(),
                sha256_hex(self.base_tokenizer_json.as_bytes()),
            ),
            ("groundtruth.sft.hyper".into(), json(&self.hyper)),
            ("groundtruth.sft.levels".into(), json(&self.levels)),
            ("groundtruth.sft.problems".into(), json(&self.space)),
            ("groundtruth.sft.tags".into(), json(&self.tags)),
            ("groundtruth.sft.end_token".into(), self.end_token.clone()),
            (
                "groundtruth.sft.eval_problems".into(),
                self.eval_problems.to_string(),
            ),
            ("groundtruth.seed".into(), self.hyper.seed.to_string()),
            ("groundtruth.step".into(), step.to_string()),
            (
                "groundtruth.tokenizer_sha256".into(),
                tokenizer_sha256.to_string(),
            ),
            ("groundtruth.versions".into(), versions()),
        ])
    }

    /// The cache key: the final metadata plus the harness's source fingerprint.
    pub fn key(&self) -> String {
        let m = serde_json::to_string(&self.metadata(self.hyper.steps, "")).unwrap_or_default();
        sha256_hex(format!("{m}\nsource {}", env!("GROUNDTRUTH_SOURCE_HASH")).as_bytes())[..16]
            .to_string()
    }
}

/// What an SFT run produced (`sft_summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftSummary {
    pub recipe: String,
    /// The base model's registry name, or the `--from` folder.
    pub base: String,
    /// Base `model.safetensors` SHA-256.
    pub base_sha256: String,
    /// Optimizer steps run (every step of the recipe: a summary is written at the end only).
    pub steps: u64,
    /// Completion-only loss on the held-out problems before any step.
    pub val_loss_before: f64,
    /// The same after the last step.
    pub final_val_loss: f64,
    /// Loss of the last step's batch.
    pub final_train_loss: f64,
    /// Ids of the tags and the end token.
    pub special_ids: Vec<u32>,
    /// SHA-256 of the SFT `tokenizer.json`.
    pub tokenizer_sha256: String,
    /// [`Weights::sha256`] of the final weights.
    pub weights_sha256: String,
    /// SHA-256 of the final `model.safetensors`.
    pub model_file_sha256: String,
    /// Seconds in training steps.
    pub train_seconds: f64,
    /// Completion and prompt tokens per second over the steps.
    pub tokens_per_second: f64,
}

/// How an SFT run is carried out (none of it changes the weights).
#[derive(Debug, Clone)]
pub struct SftOptions {
    /// Output folder: the model as a Hugging Face folder, `metrics.csv`, `loss.svg`, `sft_summary.json`.
    pub out: PathBuf,
    /// Steps between held-out evaluations (the last step is always evaluated).
    pub eval_every: u64,
    /// Show a progress bar.
    pub progress: bool,
    /// Where to train.
    pub device: Device,
}

/// The base tokenizer extended with the SFT tags (their ids, the last one ending an
/// answer), as JSON, as a tokenizer, and its SHA-256.
struct SftTokenizer {
    json: String,
    ids: Vec<u32>,
    end: u32,
    tokenizer: HfTokenizer,
    sha256: String,
}

fn sft_tokenizer(spec: &SftSpec) -> Result<SftTokenizer, TrainError> {
    let vocab = spec.base.config.vocab_size;
    let (json, ids) = extend_tokenizer(&spec.base_tokenizer_json, &spec.specials(), vocab)?;
    let end = *ids
        .last()
        .ok_or_else(|| TrainError::Spec("no end token".into()))?;
    let tokenizer = HfTokenizer::new(
        tokenizers::Tokenizer::from_bytes(json.as_bytes()).map_err(TrainError::TokenizerLibrary)?,
    );
    let sha256 = sha256_hex(json.as_bytes());
    Ok(SftTokenizer {
        json,
        ids,
        end,
        tokenizer,
        sha256,
    })
}

/// Step `step`'s batch: training problems drawn from the seed, step and position.
fn train_batch(
    spec: &SftSpec,
    step: u64,
    example: &dyn Fn(&crate::problems::Problem) -> Result<Example, TrainError>,
) -> Result<Vec<Example>, TrainError> {
    let h = spec.hyper;
    (0..h.batch)
        .map(|i| {
            spec.space
                .train_example(&spec.levels, h.seed, step, i)
                .map_err(TrainError::Spec)
                .and_then(|p| example(&p))
        })
        .collect()
}

/// The bar's message after a step; without a terminal (the bar hidden), a line on
/// standard error at each evaluation instead.
fn show_progress(bar: &indicatif::ProgressBar, progress: bool, row: &MetricsRow, steps: u64) {
    let (step, value) = (row.step, row.train_loss);
    bar.set_message(format!(
        "loss {value:.4}{}",
        row.val_loss
            .map(|v| format!(" held-out {v:.4}"))
            .unwrap_or_default()
    ));
    if progress && bar.is_hidden() && row.val_loss.is_some() {
        eprintln!(
            "sft step {step}/{steps}: loss {value:.4} held-out {:.4}",
            row.val_loss.unwrap_or(f64::NAN)
        );
    }
    bar.inc(1);
}

/// What the steps of an SFT run left: a metrics row per step, training seconds and
/// tokens, and the first answer tokens (at least 50,000 when there are that many) for the
/// unigram entropy.
struct Steps {
    rows: Vec<MetricsRow>,
    seconds: f64,
    tokens: u64,
    unigram_tokens: Vec<u32>,
}

/// Runs every step of `spec` with `opt`, evaluating on `eval` every `opts.eval_every` steps
/// and at the last.
fn train_steps(
    spec: &SftSpec,
    opts: &SftOptions,
    model: &TrainableLlama,
    opt: &mut AdamW,
    eval: &[Example],
    end: u32,
    example: &dyn Fn(&crate::problems::Problem) -> Result<Example, TrainError>,
) -> Result<Steps, TrainError> {
    let h = spec.hyper;
    let bar = progress_bar(opts.progress, h.steps, 0);
    let (mut rows, mut seconds, mut tokens, mut unigram_tokens) =
        (Vec::new(), 0f64, 0u64, Vec::new());
    for step in 1..=h.steps {
        let batch = train_batch(spec, step, example)?;
        if unigram_tokens.len() < 50_000 {
            unigram_tokens.extend(
                batch
                    .iter()
                    .flat_map(|e| e.tokens[e.prompt_len..].iter().copied()),
            );
        }
        let t0 = Instant::now();
        let loss = masked_loss(model.model(), &batch, end)?;
        let lr = h.lr_at(step);
        let stepped = descend(model, opt, loss, step, lr, h.grad_clip, t0)?;
        seconds += stepped.seconds;
        tokens += batch.iter().map(|e| e.tokens.len() as u64).sum::<u64>();
        let val_loss = evaluates(step, opts.eval_every, h.steps)
            .then(|| masked_eval_loss(model.model(), eval, end, h.batch))
            .transpose()?;
        let row = MetricsRow {
            val_loss,
            tokens,
            ..stepped
        };
        show_progress(&bar, opts.progress, &row, h.steps);
        rows.push(row);
    }
    bar.finish_and_clear();
    Ok(Steps {
        rows,
        seconds,
        tokens,
        unigram_tokens,
    })
}

/// Fine-tunes `spec` as `opts` says; see the module docs.
pub fn sft(spec: &SftSpec, opts: &SftOptions) -> Result<SftSummary, TrainError> {
    spec.validate()?;
    let h = spec.hyper;
    let SftTokenizer {
        json: tok_json,
        ids,
        end,
        tokenizer: tok,
        sha256: tok_sha,
    } = sft_tokenizer(spec)?;
    let example = |p: &crate::problems::Problem| Example::of(p, &tok, &spec.tags, end);
    let held = spec
        .space
        .problems(Split::HeldOut, &spec.levels, spec.eval_problems, h.seed)
        .map_err(TrainError::Spec)?;
    let eval: Vec<Example> = held.iter().map(example).collect::<Result<_, _>>()?;
    let weights = extend_weights(&spec.base, ids.len(), end, h.seed)?;
    let model = TrainableLlama::new(&weights, &opts.device)?;
    let mut opt = AdamW::new(model.vars(), h.adamw());
    let val_loss_before = masked_eval_loss(model.model(), &eval, end, h.batch)?;
    let Steps {
        rows,
        seconds,
        tokens,
        unigram_tokens,
    } = train_steps(spec, opts, &model, &mut opt, &eval, end, &example)?;
    let snap = model.snapshot()?;
    save_hf_folder(
        &opts.out,
        &snap,
        Some(&tok_json),
        &spec.metadata(h.steps, &tok_sha),
    )?;
    atomic_write(
        &opts.out.join("tokenizer_config.json"),
        tokenizer_config(&spec.end_token).as_bytes(),
    )?;
    let last = rows
        .last()
        .ok_or_else(|| TrainError::Spec("no step ran".into()))?;
    let summary = SftSummary {
        recipe: spec.name.clone(),
        base: spec.base_label.clone(),
        base_sha256: spec.base_sha256.clone(),
        steps: h.steps,
        val_loss_before,
        final_val_loss: last.val_loss.unwrap_or(f64::NAN),
        final_train_loss: last.train_loss,
        special_ids: ids,
        tokenizer_sha256: tok_sha,
        weights_sha256: snap.sha256()?,
        model_file_sha256: sha256_file(&opts.out.join("model.safetensors"))?,
        train_seconds: seconds,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
    };
    write_reports(
        &opts.out,
        spec,
        &rows,
        &summary,
        unigram_entropy(&unigram_tokens),
        weights.config.vocab_size,
    )?;
    Ok(summary)
}

fn write_reports(
    out: &Path,
    spec: &SftSpec,
    rows: &[MetricsRow],
    s: &SftSummary,
    unigram: f64,
    vocab: usize,
) -> Result<(), TrainError> {
    let title = format!(
        "SFT {} from {} · seed {} · {} steps × {} problems",
        spec.name, spec.base_label, spec.hyper.seed, s.steps, spec.hyper.batch
    );
    write_run_reports(
        out,
        rows,
        &title,
        ((vocab as f64).ln(), unigram),
        "sft_summary.json",
        s,
    )
}
