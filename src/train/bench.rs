//! Training throughput and the machine's matmul rate, for `groundtruth bench train`.
//! Numbers only: no test asserts a timing.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::error::{Ctx, TrainError};
use super::optim::{AdamW, AdamWParams};
use super::trainer::batch_loss;
use crate::model::{seeded, LlamaConfig, TrainableLlama};
use crate::rng::SeededRng;
use crate::runtime::Runtime;

/// Best matmul rate (GFLOP/s) of candle on `device` in `dtype`, over products of the
/// sizes a training step of the ladder's GPU rungs multiplies (larger on a GPU, which a
/// 1024³ product leaves mostly idle). The denominator of MFU: what this software reaches
/// on this machine, not a datasheet figure.
pub fn matmul_gflops_on(device: &Device, dtype: DType) -> f64 {
    let shapes: &[(usize, usize, usize)] = if device.is_cpu() {
        &[(1024, 1024, 1024), (2048, 512, 2048)]
    } else {
        &[(4096, 4096, 4096), (8192, 1024, 8192)]
    };
    let mut best = 0f64;
    for &(m, k, n) in shapes {
        let mut r = SeededRng::new(1);
        let mut mk = |a: usize, b: usize| {
            Tensor::from_vec(
                (0..a * b).map(|_| r.uniform_sym(1.0)).collect::<Vec<f32>>(),
                (a, b),
                device,
            )
            .and_then(|t| t.to_dtype(dtype))
        };
        let (Ok(a), Ok(b)) = (mk(m, k), mk(k, n)) else {
            continue;
        };
        // One untimed product (kernel selection, allocation); a GPU runs asynchronously,
        // so each timing waits for the device.
        if a.matmul(&b).and_then(|_| device.synchronize()).is_err() {
            continue;
        }
        for _ in 0..5 {
            let t0 = Instant::now();
            if a.matmul(&b).and_then(|_| device.synchronize()).is_err() {
                break;
            }
            let s = t0.elapsed().as_secs_f64();
            best = best.max(2.0 * (m * k * n) as f64 / s / 1e9);
        }
    }
    best
}

/// Measured training throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Training tokens per second over the timed steps.
    pub tokens_per_second: f64,
    /// Mean seconds per step.
    pub step_seconds: f64,
}

/// Times `steps` full training steps (forward, backward, clipped AdamW update) of `config`
/// after `warmup` untimed ones, on seeded random tokens (throughput does not depend on
/// the text), on `runtime`'s device and precision.
pub fn train_throughput(
    config: &LlamaConfig,
    batch: usize,
    seq_len: usize,
    warmup: u64,
    steps: u64,
    runtime: Runtime,
) -> Result<Throughput, TrainError> {
    let device = runtime.device.open()?;
    let mut model = TrainableLlama::new(&seeded(config, 1)?, &device)?;
    model.set_autocast(runtime.precision.autocast());
    let mut opt = AdamW::new(model.vars(), AdamWParams::with_decay(0.1));
    let mut rng = SeededRng::new(2);
    let vocab = config.vocab_size as u64;
    let batches: Vec<Vec<u32>> = (0..2)
        .map(|_| {
            (0..batch * (seq_len + 1))
                .map(|_| rng.below(vocab) as u32)
                .collect()
        })
        .collect();
    let mut timed = 0f64;
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let loss = batch_loss(model.model(), &batches[i as usize % 2], batch, seq_len)?;
        let grads = loss.backward().ctx("backward")?;
        opt.step(model.vars(), &grads, 1e-3, 1.0)?;
        device.synchronize().ctx("synchronize")?;
        if i >= warmup {
            timed += t0.elapsed().as_secs_f64();
        }
    }
    let per_step = timed / steps.max(1) as f64;
    Ok(Throughput {
        tokens_per_second: (batch * seq_len) as f64 / per_step,
        step_seconds: per_step,
    })
}
