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
