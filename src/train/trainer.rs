//! [`train`]: the deterministic training loop — seeded init, per-step seeded batches,
//! AdamW with warmup + cosine and gradient clipping, periodic validation on the fixed
//! held-out windows, atomic checkpoints, exact resume, and the run's CSV, plot and summary.
//!
//! Same spec, same machine: bit-identical weights. Nothing here reads a clock, a hash-map
//! order or an unseeded RNG into the arithmetic, and resuming restores every piece of state
//! the next step reads (weights, moments, step count; batches and the learning rate are
//! functions of the step).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::checkpoint::{checkpoint_name, read_checkpoint, write_checkpoint};
use super::data::{sample_batch, unigram_entropy, Data};
use super::error::{Ctx, TrainError};
use super::lm_head::linear_cross_entropy;
use super::loss::{cross_entropy, row_losses};
use super::metrics::{metrics_csv, write_run_reports, MetricsRow};
use super::optim::AdamW;
use super::spec::TrainSpec;
use crate::fsutil::{atomic_write, sha256_file};
use crate::model::{save_hf_folder, seeded, Llama, TrainableLlama};

/// How a run is carried out (none of it changes the weights).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder: the final model as a Hugging Face folder, `checkpoint-NNNNNN/`
    /// folders, `metrics.csv`, `loss.svg`, `train_summary.json`.
    pub out: PathBuf,
    /// Steps between validation evaluations (the last step is always evaluated).
    pub eval_every: u64,
    /// Steps between checkpoints; 0 writes only the last one.
    pub checkpoint_every: u64,
    /// A checkpoint folder to continue from.
    pub resume: Option<PathBuf>,
    /// Stop (with a checkpoint) after this step, as an interrupted run would.
    pub stop_after: Option<u64>,
    /// Show a progress bar.
    pub progress: bool,
}

impl RunOptions {
    /// Defaults for `out`: evaluate every 50 steps, checkpoint only at the end, quiet. (The
    /// device and precision are the spec's: they change the weights.)
    pub fn new(out: &Path) -> Self {
        Self {
            out: out.to_path_buf(),
            eval_every: 50,
            checkpoint_every: 0,
            resume: None,
            stop_after: None,
            progress: false,
        }
    }
}

/// What a run produced (`train_summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    /// Rung trained.
    pub rung: String,
    /// Steps completed.
    pub step: u64,
    /// Steps of the full schedule.
    pub steps: u64,
    /// Training loss of the last step's batch.
    pub final_train_loss: f64,
    /// Validation loss after the last step.
    pub final_val_loss: Option<f64>,
    /// Unigram entropy of the training tokens, nats.
    pub unigram_entropy_train: f64,
    /// `ln(vocab)`: the loss of a uniform guess.
    pub ln_vocab: f64,
    /// Validation tokens scored.
    pub val_tokens: usize,
    /// [`crate::model::Weights::sha256`] of the final weights.
    pub weights_sha256: String,
    /// SHA-256 of the final `model.safetensors`.
    pub model_file_sha256: Option<String>,
    /// Seconds in training steps (evaluation and I/O excluded), this invocation.
    pub train_seconds: f64,
    /// Training tokens per second over this invocation's steps.
    pub tokens_per_second: f64,
    /// Device and precision, in words (`Runtime`'s display and description).
    pub runtime: String,
}

/// Mean next-token loss of `tokens` (`batch` rows of `seq_len + 1`) through the
/// differentiable path with the fused output projection + cross-entropy.
pub fn batch_loss(
    model: &Llama,
    tokens: &[u32],
    batch: usize,
    seq_len: usize,
) -> Result<Tensor, TrainError> {
    let (inputs, targets) = split_rows(tokens, batch, seq_len);
    let x = Tensor::from_vec(inputs, (batch, seq_len), model.device()).ctx("batch inputs")?;
    let (h, w) = model.forward_train_hidden(&x)?;
    let d = h.dim(2).ctx("hidden")?;
    let rows = h.reshape((batch * seq_len, d)).ctx("hidden rows")?;
    match model.autocast() {
        None => linear_cross_entropy(&rows, &w, &targets).ctx("loss"),
        // Under autocast the output layer is a bf16 product like the others; the logits
        // come back in f32 for the loss.
        Some(cast) => crate::model::matmul_as(&rows, &w.t().ctx("output weight")?, Some(cast))
            .and_then(|logits| cross_entropy(&logits, &targets))
            .ctx("loss"),
    }
}

/// Rows of `seq_len + 1` ids into inputs (all but the last id) and targets (all but the first).
pub fn split_rows(tokens: &[u32], batch: usize, seq_len: usize) -> (Vec<u32>, Vec<u32>) {
    let mut inputs = Vec::with_capacity(batch * seq_len);
    let mut targets = Vec::with_capacity(batch * seq_len);
    for row in tokens.chunks(seq_len + 1).take(batch) {
        inputs.extend_from_slice(&row[..seq_len]);
        targets.extend_from_slice(&row[1..]);
    }
    (inputs, targets)
}

/// Mean next-token loss over `windows` (each `seq_len + 1` ids), `batch` windows per
/// forward pass on the fast inference path, summed in window order in f64.
pub fn eval_loss(model: &Llama, windows: &[&[u32]], batch: usize) -> Result<f64, TrainError> {
    let mut sum = 0f64;
    let mut n = 0usize;
    for chunk in windows.chunks(batch.max(1)) {
        let seq_len = chunk[0].len() - 1;
        let flat: Vec<u32> = chunk.iter().flat_map(|w| w.iter().copied()).collect();
        let (inputs, targets) = split_rows(&flat, chunk.len(), seq_len);
        let x =
            Tensor::from_vec(inputs, (chunk.len(), seq_len), model.device()).ctx("eval inputs")?;
        let logits = model.forward(&x, None)?;
        let v = logits.dim(2).ctx("logits")?;
        let rows = logits
            .reshape((chunk.len() * seq_len, v))
            .and_then(|l| l.to_device(&Device::Cpu))
            .ctx("logits")?;
        for l in row_losses(&rows, &targets).ctx("eval loss")? {
            sum += l;
            n += 1;
        }
    }
    Ok(sum / n.max(1) as f64)
}

/// Where a run starts: the seeded weights at step 0, or a checkpoint's weights, optimizer
/// and metrics when resuming.
struct Start {
    weights: crate::model::Weights,
    optimizer: Option<AdamW>,
    metrics: Vec<MetricsRow>,
    step: u64,
}

/// The start of `spec`'s run: `opts.resume`'s checkpoint, refused when another run (any
/// differing `groundtruth.*` metadata key, either way) made it; else the seeded weights.
fn start_of(spec: &TrainSpec, opts: &RunOptions) -> Result<Start, TrainError> {
    Ok(match &opts.resume {
        Some(dir) => {
            let ck = read_checkpoint(dir, spec.hyper.adamw())?;
            let want = spec.metadata(ck.state.step);
            // Both ways: a key only the checkpoint has (a runtime, say) differs too.
            let differing: Vec<&String> = want
                .keys()
                .chain(ck.metadata.keys().filter(|k| k.starts_with("groundtruth.")))
                .filter(|k| want.get(*k) != ck.metadata.get(*k))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if !differing.is_empty() {
                return Err(TrainError::invalid(
                    dir.join("model.safetensors"),
                    format!(
                        "checkpoint was made by a different run: metadata {differing:?} differ"
                    ),
                ));
            }
            Start {
                weights: ck.weights,
                optimizer: Some(ck.optimizer),
                metrics: ck.state.metrics,
                step: ck.state.step,
            }
        }
        None => Start {
            weights: seeded(&spec.config, spec.hyper.seed)?,
            optimizer: None,
            metrics: Vec::new(),
            step: 0,
        },
    })
}

/// The hashes of what a run wrote: its final weights, and its model.safetensors when it
/// ran to the end.
struct Written {
    weights_sha256: String,
    model_file_sha256: Option<String>,
}

/// The run's summary from its metrics (resumed at step `start`, `seconds` of training).
fn summarize(
    spec: &TrainSpec,
    data: &Data,
    metrics: &[MetricsRow],
    start: u64,
    seconds: f64,
    written: Written,
) -> RunSummary {
    let h = spec.hyper;
    let tokens_per_step = (h.batch * h.seq_len) as u64;
    let last = metrics.last();
    let done = last.map_or(start, |r| r.step);
    let ran = done - start;
    RunSummary {
        rung: spec.rung.clone(),
        step: done,
        steps: h.steps,
        final_train_loss: last.map_or(f64::NAN, |r| r.train_loss),
        final_val_loss: last.and_then(|r| r.val_loss),
        unigram_entropy_train: unigram_entropy(&data.train),
        ln_vocab: (spec.config.vocab_size as f64).ln(),
        val_tokens: data.val_windows(h.seq_len).len() * h.seq_len,
        weights_sha256: written.weights_sha256,
        model_file_sha256: written.model_file_sha256,
        train_seconds: seconds,
        tokens_per_second: (ran * tokens_per_step) as f64 / seconds.max(1e-9),
        runtime: format!(
            "{}: {}",
            spec.runtime.device,
            spec.runtime.precision.describe()
        ),
    }
}

/// One optimizer step down `loss` (refused when the loss is not finite: the run diverged),
/// as its metrics row: the loss value, the gradient norm before clipping and the seconds
/// since `t0`; the caller adds the validation loss and the token count.
pub(super) fn descend(
    model: &TrainableLlama,
    opt: &mut AdamW,
    loss: Tensor,
    step: u64,
    lr: f64,
    grad_clip: f64,
    t0: Instant,
) -> Result<MetricsRow, TrainError> {
    let value = f64::from(loss.to_scalar::<f32>().ctx("loss value")?);
    if !value.is_finite() {
        return Err(TrainError::Diverged {
            step,
            what: format!("loss {value}"),
        });
    }
    let grads = loss.backward().ctx("backward")?;
    let info = opt.step(model.vars(), &grads, lr, grad_clip)?;
    Ok(MetricsRow {
        step,
        lr,
        train_loss: value,
        grad_norm: info.grad_norm,
        val_loss: None,
        tokens: 0,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Whether step `step` of `steps` measures the validation loss: every `eval_every` steps
/// (0 counts as 1) and the last.
pub(super) fn evaluates(step: u64, eval_every: u64, steps: u64) -> bool {
    step.is_multiple_of(eval_every.max(1)) || step == steps
}

/// After an evaluation: without a terminal the bar is invisible, so a log line instead;
/// and the CSV so far, so a long run can be followed from a file.
fn follow_evaluation(
    opts: &RunOptions,
    bar_hidden: bool,
    metrics: &[MetricsRow],
    message: &str,
    (step, steps): (u64, u64),
) -> Result<(), TrainError> {
    if opts.progress && bar_hidden {
        // Progress on standard error is best effort: a closed stream must not stop training.
        let _ = writeln!(std::io::stderr(), "step {step}/{steps}: {message}");
    }
    atomic_write(
        &opts.out.join("metrics.csv"),
        metrics_csv(metrics).as_bytes(),
    )?;
    Ok(())
}

/// Writes the trained model as a Hugging Face folder; the SHA-256 of its model.safetensors.
fn save_model(
    spec: &TrainSpec,
    out: &Path,
    snap: &crate::model::Weights,
    step: u64,
) -> Result<String, TrainError> {
    save_hf_folder(out, snap, Some(&spec.tokenizer_json), &spec.metadata(step))?;
    Ok(sha256_file(&out.join("model.safetensors"))?)
}

/// Trains `spec` on `data` as `opts` says; see the module docs.
pub fn train(spec: &TrainSpec, data: &Data, opts: &RunOptions) -> Result<RunSummary, TrainError> {
    let h = spec.hyper;
    let Start {
        weights,
        optimizer: restored,
        mut metrics,
        step: start,
    } = start_of(spec, opts)?;
    let device = spec.runtime.device.open()?;
    let mut model = TrainableLlama::new(&weights, &device)?;
    model.set_autocast(spec.runtime.precision.autocast());
    let mut opt = restored.unwrap_or_else(|| AdamW::new(model.vars(), spec.hyper.adamw()));
    let windows = data.val_windows(h.seq_len);
    let end = opts.stop_after.map_or(h.steps, |s| s.min(h.steps));
    let tokens_per_step = (h.batch * h.seq_len) as u64;
    let bar = progress_bar(opts.progress, h.steps, start);
    let mut seconds = 0f64;
    std::fs::create_dir_all(&opts.out).map_err(|source| crate::fsutil::FsError {
        path: opts.out.clone(),
        source,
    })?;
    for step in start + 1..=end {
        let t0 = Instant::now();
        let lr = h.lr_at(step);
        let batch = sample_batch(&data.train, h.seed, step, h.batch, h.seq_len);
        let loss = batch_loss(model.model(), &batch, h.batch, h.seq_len)?;
        let stepped = descend(&model, &mut opt, loss, step, lr, h.grad_clip, t0)?;
        seconds += stepped.seconds;
        let val_loss = evaluates(step, opts.eval_every, h.steps)
            .then(|| eval_loss(model.model(), &windows, h.batch))
            .transpose()?;
        let row = MetricsRow {
            val_loss,
            tokens: step * tokens_per_step,
            ..stepped
        };
        let message = progress_message(&row, &metrics, tokens_per_step);
        let evaluated = row.val_loss.is_some();
        bar.set_message(message.clone());
        bar.inc(1);
        metrics.push(row);
        if evaluated {
            follow_evaluation(opts, bar.is_hidden(), &metrics, &message, (step, h.steps))?;
        }
        if (opts.checkpoint_every > 0 && step % opts.checkpoint_every == 0) || step == end {
            opt.sync()?;
            let snap = model.snapshot()?;
            write_checkpoint(
                &opts.out.join(checkpoint_name(step)),
                &snap,
                &spec.tokenizer_json,
                &spec.metadata(step),
                &opt,
                &metrics,
            )?;
        }
    }
    bar.finish_and_clear();
    let snap = model.snapshot()?;
    let last = metrics.last();
    let done = last.map_or(start, |r| r.step);
    // Only a finished run is a model; one stopped early is its checkpoints.
    let model_file_sha256 = (done == h.steps)
        .then(|| save_model(spec, &opts.out, &snap, done))
        .transpose()?;
    let written = Written {
        weights_sha256: snap.sha256()?,
        model_file_sha256,
    };
    let summary = summarize(spec, data, &metrics, start, seconds, written);
    write_reports(&opts.out, spec, &metrics, &summary)?;
    Ok(summary)
}

fn write_reports(
    out: &Path,
    spec: &TrainSpec,
    metrics: &[MetricsRow],
    s: &RunSummary,
) -> Result<(), TrainError> {
    let tps = (spec.hyper.batch * spec.hyper.seq_len) as u64;
    let title = format!(
        "{} · seed {} · {} steps × {} tokens",
        spec.rung, spec.hyper.seed, s.steps, tps
    );
    write_run_reports(
        out,
        metrics,
        &title,
        (s.ln_vocab, s.unigram_entropy_train),
        "train_summary.json",
        s,
    )
}

pub(crate) fn progress_bar(show: bool, steps: u64, start: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(start);
    bar
}

fn progress_message(row: &MetricsRow, before: &[MetricsRow], tokens_per_step: u64) -> String {
    let val = row
        .val_loss
        .or_else(|| before.iter().rev().find_map(|r| r.val_loss));
    let val = val.map(|v| format!(" val {v:.4}")).unwrap_or_default();
    format!(
        "loss {:.4}{val} lr {:.2e} {:.0} tok/s",
        row.train_loss,
        row.lr,
        row.tokens_per_second(tokens_per_step)
    )
}
