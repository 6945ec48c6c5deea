//! Helpers the unit tests of several modules share.

use candle_core::{DType, Device, Shape, Tensor, Var};

use crate::rng::SeededRng;

#[path = "../tests/common/need.rs"]
mod need;
pub(crate) use need::need_file;

/// The fetched SmolLM2-135M-Instruct Q4_1 GGUF, or `None` (see [`need_file`]).
pub(crate) fn smollm2_gguf() -> Option<std::path::PathBuf> {
    need_file(
        &crate::project::models_cache().join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        "ci/fetch-models.sh",
    )
}

/// Largest |a − b| over all elements, in f64 (any float dtype; shapes must match).
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_dtype(DType::F64))
        .and_then(|d| d.to_scalar::<f64>())
        .unwrap()
}

/// A variable of `shape` and `dtype` drawn uniformly from (−scale, scale) by the harness's
/// own seeded RNG.
pub(crate) fn seeded_var(shape: impl Into<Shape>, seed: u64, scale: f32, dtype: DType) -> Var {
    let shape = shape.into();
    let mut r = SeededRng::new(seed);
    let v: Vec<f32> = (0..shape.elem_count())
        .map(|_| r.uniform_sym(scale))
        .collect();
    Var::from_tensor(
        &Tensor::from_vec(v, shape, &Device::Cpu)
            .and_then(|t| t.to_dtype(dtype))
            .unwrap(),
    )
    .unwrap()
}

/// The micro model of the training and plan tests: a 300-token vocabulary, one layer
/// 32 wide, 4 query and 2 key/value heads.
pub(crate) fn micro_config() -> crate::model::LlamaConfig {
    crate::model::LlamaConfig {
        vocab_size: 300,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 128,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_id: None,
    }
}

/// The L2 norm of a tensor (every element), as f32.
pub(crate) fn l2_norm(t: &Tensor) -> f32 {
    t.sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .sqrt()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// A seeded one-layer model with a 64-token vocabulary and 64 positions: `hidden` wide, an
/// MLP `intermediate` wide, `heads` query and `kv_heads` key/value heads.
pub(crate) fn tiny_weights(
    hidden: usize,
    intermediate: usize,
    heads: usize,
    kv_heads: usize,
    seed: u64,
) -> crate::model::Weights {
    let cfg = crate::model::LlamaConfig {
        vocab_size: 64,
        hidden_size: hidden,
        intermediate_size: intermediate,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        max_position_embeddings: 64,
        ..micro_config()
    };
    crate::model::seeded(&cfg, seed).unwrap()
}
