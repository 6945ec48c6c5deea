//! Cross-file tests of the model module: every runtime path must agree (KV cache vs
//! recompute, batch sizes, fast vs differentiable, RoPE layouts, f32 vs quantized),
//! file round trips, gradient coverage, and the real SmolLM2 GGUF when it is cached.

mod agree;
mod autograd;
mod io;
mod paths;
mod smollm2;
mod train;

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::{Llama, LoadOptions, MatmulPath, Weight, Weights};
use crate::rng::SeededRng;

pub(crate) use super::config::tests::tiny;

/// `(batch, seq)` u32 ids drawn from `seed`.
pub(crate) fn tokens(batch: usize, seq: usize, vocab: usize, seed: u64) -> Tensor {
    let mut r = SeededRng::new(seed);
    let ids: Vec<u32> = (0..batch * seq)
        .map(|_| r.below(vocab as u64) as u32)
        .collect();
    Tensor::from_vec(ids, (batch, seq), &Device::Cpu).expect("token tensor")
}

pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    crate::testutil::max_abs_diff(a, b) as f32
}

pub(crate) fn load(w: &Weights, matmul: MatmulPath) -> Llama {
    Llama::load(
        w,
        &LoadOptions {
            matmul,
            ..LoadOptions::default()
        },
    )
    .expect("load model")
}

/// `w` with every matrix quantized to `ty` (norms stay f32), as a transform would.
pub(crate) fn quantize_matrices(w: &Weights, ty: GgmlDType) -> Weights {
    let mut tensors = BTreeMap::new();
    for (name, weight) in &w.tensors {
        let q = if weight.shape().len() == 2 {
            let t = weight.to_f32_tensor(&Device::Cpu).unwrap();
            Weight::Quant(Arc::new(QTensor::quantize(&t, ty).unwrap()))
        } else {
            weight.clone()
        };
        tensors.insert(name.clone(), q);
    }
    Weights {
        config: w.config.clone(),
        tensors,
        rope: w.rope,
    }
}

/// Position-wise argmax of `(batch, seq, vocab)` logits.
pub(crate) fn argmax(logits: &Tensor) -> Vec<u32> {
    logits
        .argmax(candle_core::D::Minus1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}
