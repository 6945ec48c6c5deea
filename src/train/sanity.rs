//! The measurements behind the `train_sanity` claims, each a plain function so a test can
//! plant a fault (a dropped gradient, a lossy save, a shared RNG, a changed seed) and watch
//! the number move. The judge (`src/judge/train.rs`) wires them to recipes and checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use super::error::{Ctx, TrainError};
use super::optim::{AdamW, AdamWParams};
use super::recipe::{GradCheckSpec, OverfitSpec};
use super::trainer::{batch_loss, eval_loss};
use crate::model::{
    load_hf_folder, save_hf_folder, seeded, Llama, LlamaConfig, LoadOptions, TrainableLlama,
    Weights,
};
use crate::rng::SeededRng;
use crate::runtime::Runtime;

/// Runs between `backward` and the use of the gradients; tests plant faults here.
pub type GradHook<'a> =
    &'a dyn Fn(&BTreeMap<String, Var>, &mut GradStore) -> candle_core::Result<()>;

/// Mean validation loss of `weights` over `windows` on the fast f32 path, on the CPU.
pub fn loss_of(weights: &Weights, windows: &[&[u32]], batch: usize) -> Result<f64, TrainError> {
    loss_of_on(weights, windows, batch, &Device::Cpu)
}

/// [`loss_of`] on `device`.
pub fn loss_of_on(
    weights: &Weights,
    windows: &[&[u32]],
    batch: usize,
    device: &Device,
) -> Result<f64, TrainError> {
    let opts = LoadOptions {
        device: device.clone(),
        ..LoadOptions::default()
    };
    eval_loss(&Llama::load(weights, &opts)?, windows, batch)
}

/// What the overfitting run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct OverfitReport {
    /// Mean loss over windows at every offset of the cycle, before training.
    pub first_loss: f64,
    /// The same after training.
    pub final_loss: f64,
    /// Tokens in the repeated text.
    pub tokens: usize,
}

/// The `seq_len + 1` tokens of the cyclic text starting at `at`.
fn cyclic(tokens: &[u32], at: usize, seq_len: usize) -> Vec<u32> {
    (0..=seq_len)
        .map(|j| tokens[(at + j) % tokens.len()])
        .collect()
}

/// Trains `config` (seeded init) on `tokens` repeated forever, windows at seeded offsets,
/// AdamW (0.9, 0.95, no decay, clip 1) on the warmup + cosine schedule, and reports the
/// loss over all `tokens.len()` cyclic windows before and after, on `runtime`'s device and
/// precision (the losses are measured in f32).
pub fn overfit_on(
    config: &LlamaConfig,
    tokens: &[u32],
    spec: &OverfitSpec,
    hook: Option<GradHook>,
    runtime: Runtime,
) -> Result<OverfitReport, TrainError> {
    if tokens.len() < 2 {
        return Err(TrainError::Tokenizer(format!(
            "overfit text has {} tokens",
            tokens.len()
        )));
    }
    let mut model = TrainableLlama::new(&seeded(config, spec.seed)?, &runtime.device.open()?)?;
    model.set_autocast(runtime.precision.autocast());
    let all: Vec<Vec<u32>> = (0..tokens.len())
        .map(|at| cyclic(tokens, at, spec.seq_len))
        .collect();
    let windows: Vec<&[u32]> = all.iter().map(Vec::as_slice).collect();
    let first_loss = eval_loss(model.model(), &windows, spec.batch)?;
    let mut opt = AdamW::new(model.vars(), AdamWParams::with_decay(0.0));
    for step in 1..=spec.steps {
        let mut rng = SeededRng::for_stream(spec.seed, &format!("overfit/{step}"));
        let batch: Vec<u32> = (0..spec.batch)
            .flat_map(|_| {
                cyclic(
                    tokens,
                    rng.below(tokens.len() as u64) as usize,
                    spec.seq_len,
                )
            })
            .collect();
        let loss = batch_loss(model.model(), &batch, spec.batch, spec.seq_len)?;
        let mut grads = loss.backward().ctx("backward")?;
        if let Some(h) = hook {
            h(model.vars(), &mut grads).ctx("gradient hook")?;
        }
        opt.step(model.vars(), &grads, spec.lr_at(step), 1.0)?;
    }
    let final_loss = eval_loss(model.model(), &windows, spec.batch)?;
    Ok(OverfitReport {
        first_loss,
        final_loss,
        tokens: tokens.len(),
    })
}

/// What the gradient check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheckReport {
    /// Largest per-tensor relative error.
    pub max_rel_error: f64,
    /// The tensor where it occurred.
    pub worst: String,
    /// Per tensor: `‖backprop − fd‖ / ‖fd‖` over its checked coordinates.
    pub per_tensor: Vec<(String, f64)>,
    /// Coordinates checked in all.
    pub coords: usize,
}

/// Backprop against central differences, in f64, on `config` with seeded init and the
/// batch `tokens` (`spec.batch` rows of `spec.seq_len + 1`): every coordinate of each norm
/// gain and `spec.coords_per_matrix` seeded coordinates of each matrix. A gradient the
/// hook removes counts as zero. On `device`, still in f64: central differences need it,
/// and a gradient check of bf16 products would measure their rounding, not the backward
/// pass.
pub fn grad_check_on(
    config: &LlamaConfig,
    tokens: &[u32],
    spec: &GradCheckSpec,
    hook: Option<GradHook>,
    device: &Device,
) -> Result<GradCheckReport, TrainError> {
    let batch = |m: &Llama| batch_loss(m, tokens, spec.batch, spec.seq_len);
    grad_check_loss_on(config, spec, &batch, hook, device)
}

/// [`grad_check_on`] of any loss of the model (the SFT's masked loss is checked so):
/// backprop against central differences of `loss` itself, coordinates chosen as there.
pub fn grad_check_loss_on(
    config: &LlamaConfig,
    spec: &GradCheckSpec,
    loss_of_model: &dyn Fn(&Llama) -> Result<Tensor, TrainError>,
    hook: Option<GradHook>,
    device: &Device,
) -> Result<GradCheckReport, TrainError> {
    let model = TrainableLlama::with_dtype(&seeded(config, spec.seed)?, device, DType::F64)?;
    let loss = || -> Result<f64, TrainError> {
        loss_of_model(model.model())?.to_scalar::<f64>().ctx("loss")
    };
    let mut grads = loss_of_model(model.model())?.backward().ctx("backward")?;
    if let Some(h) = hook {
        h(model.vars(), &mut grads).ctx("gradient hook")?;
    }
    let mut per_tensor = Vec::new();
    let mut coords = 0;
    for (name, var) in model.vars() {
        let n = var.elem_count();
        let chosen: Vec<usize> = if var.rank() == 1 {
            (0..n).collect()
        } else {
            let mut rng = SeededRng::for_stream(spec.seed, &format!("grad-check/{name}"));
            let mut set = BTreeSet::new();
            while set.len() < spec.coords_per_matrix.min(n) {
                set.insert(rng.below(n as u64) as usize);
            }
            set.into_iter().collect()
        };
        let analytic: Vec<f64> = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all().and_then(|g| g.to_vec1()).ctx("gradient")?,
            None => vec![0.0; n],
        };
        let shape = var.shape().clone();
        let mut values: Vec<f64> = var.flatten_all().and_then(|v| v.to_vec1()).ctx("values")?;
        let (mut diff, mut norm) = (0f64, 0f64);
        for &c in &chosen {
            let orig = values[c];
            let mut at = |x: f64| -> Result<f64, TrainError> {
                values[c] = x;
                var.set(&Tensor::from_slice(&values, shape.clone(), device).ctx("perturb")?)
                    .ctx("perturb")?;
                loss()
            };
            let fd = (at(orig + spec.h)? - at(orig - spec.h)?) / (2.0 * spec.h);
            at(orig)?;
            diff += (analytic[c] - fd).powi(2);
            norm += fd * fd;
        }
        coords += chosen.len();
        let rel = match (diff.sqrt(), norm.sqrt()) {
            (0.0, _) => 0.0,
            (d, n) if n > 0.0 => d / n,
            _ => f64::INFINITY,
        };
        per_tensor.push((name.clone(), rel));
    }
    let (worst, max_rel_error) =
        per_tensor
            .iter()
            .cloned()
            .fold((String::new(), 0.0), |acc, (n, r)| {
                if r > acc.1 || r.is_nan() {
                    (n, r)
                } else {
                    acc
                }
            });
    Ok(GradCheckReport {
        max_rel_error,
        worst,
        per_tensor,
        coords,
    })
}

/// Count of differing values between two weight sets (bitwise); a tensor present in one
/// only, or of another shape or dtype, counts all its values.
pub fn weight_mismatches(a: &Weights, b: &Weights) -> Result<usize, TrainError> {
    let mut n = 0;
    let names: BTreeSet<&String> = a.tensors.keys().chain(b.tensors.keys()).collect();
    for name in names {
        match (a.tensors.get(name), b.tensors.get(name)) {
            (Some(x), Some(y)) if x.shape() == y.shape() && x.dtype_name() == y.dtype_name() => {
                let (bx, by) = (x.raw_bytes()?, y.raw_bytes()?);
                let width = bx.len() / x.elem_count().max(1);
                n += bx
                    .chunks(width.max(1))
                    .zip(by.chunks(width.max(1)))
                    .filter(|(p, q)| p != q)
                    .count();
            }
            (x, y) => n += x.or(y).map_or(0, |w| w.elem_count()),
        }
    }
    Ok(n)
}

/// What a save → reload round trip changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadReport {
    /// Weight values that differ after the round trip.
    pub weight_mismatches: usize,
    /// Validation loss the reference recorded (in memory, at the end of training).
    pub reference_loss: f64,
    /// Validation loss of the reloaded weights.
    pub reloaded_loss: f64,
}

impl ReloadReport {
    /// Differing weights, plus one if the loss differs in any bit.
    pub fn mismatches(&self) -> usize {
        self.weight_mismatches
            + usize::from(self.reference_loss.to_bits() != self.reloaded_loss.to_bits())
    }
}

/// Sends `weights` through `round_trip` and compares weights and validation loss, the
/// loss measured on `device` (where the reference loss was measured: the training's).
pub fn reload_check(
    weights: &Weights,
    reference_loss: f64,
    windows: &[&[u32]],
    batch: usize,
    device: &Device,
    round_trip: &dyn Fn(&Weights) -> Result<Weights, TrainError>,
) -> Result<ReloadReport, TrainError> {
    let back = round_trip(weights)?;
    Ok(ReloadReport {
        weight_mismatches: weight_mismatches(weights, &back)?,
        reference_loss,
        reloaded_loss: loss_of_on(&back, windows, batch, device)?,
    })
}

/// The real round trip: [`save_hf_folder`] into `dir`, then [`load_hf_folder`].
pub fn save_and_load(weights: &Weights, dir: &Path) -> Result<Weights, TrainError> {
    save_hf_folder(dir, weights, None, &BTreeMap::new())?;
    Ok(load_hf_folder(dir)?)
}

/// What the sampling check saw: two samples with one seed, one with another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingCheck {
    /// Positions where the two same-seed samples differ (plus any length difference).
    pub same_seed_mismatches: usize,
    /// Whether the other seed gave a different sample.
    pub other_seed_differs: bool,
}

impl SamplingCheck {
    /// The check's statistic: the same-seed mismatches, plus one when another seed gives
    /// exactly the same tokens (a sampler that ignores its seed reproduces itself
    /// trivially, and that is not the property the claim is about).
    pub fn violations(&self) -> usize {
        self.same_seed_mismatches + usize::from(!self.other_seed_differs)
    }
}

/// Draws two samples with `seed` and one with `seed + 1`.
pub fn sampling_mismatches<E>(
    sample: &mut dyn FnMut(u64) -> Result<Vec<u32>, E>,
    seed: u64,
) -> Result<SamplingCheck, E> {
    let a = sample(seed)?;
    let b = sample(seed)?;
    let c = sample(seed.wrapping_add(1))?;
    let diff = a.iter().zip(&b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len());
    Ok(SamplingCheck {
        same_seed_mismatches: diff,
        other_seed_differs: a != c,
    })
}
