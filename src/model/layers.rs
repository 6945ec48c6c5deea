//! The building blocks shared by the attention and MLP code: projections ([`Linear`]),
//! [`RmsNorm`], the RoPE table ([`Rope`]) and softmax, each with a fast inference path and
//! a differentiable one.
//!
//! Why two paths: candle's fused `rms_norm`, `softmax_last_dim` and `rope`/`rope_i` are
//! custom ops without a backward pass; a model trained through them silently gets no
//! gradient for the norm gains and wrong ones elsewhere. [`Mode::Differentiable`] spells
//! the same maths out in basic tensor ops that candle can differentiate.

use std::sync::Arc;

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor, D};

use super::engine::QuantRows;
use super::error::{CandleContext, Result};
use super::rope_layout::RopeLayout;
use super::weights::Weight;

/// Which implementation of the non-matmul ops a forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// candle's fused kernels (no backward).
    Fast,
    /// Basic ops only, so `backward` reaches every parameter.
    Differentiable,
}

/// How projection matrices are multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatmulPath {
    /// Dequantize quantized weights to f32 at load; on this CPU it is the fast path.
    #[default]
    F32,
    /// Keep quantized weights and multiply with candle's `QMatMul` kernels (activations
    /// are quantized to Q8 on the fly, as llama.cpp does).
    Quantized,
}

/// A bias-free projection `y = x Wᵀ`.
#[derive(Debug, Clone)]
pub(crate) enum Linear {
    /// f32 weight of shape `(out, in)`; when it was dequantized from blocks the engine
    /// multiplies directly (Q4_0, Q4_1, Q8_0), also those blocks, for decoding.
    Float(Tensor, Option<Arc<QuantRows>>),
    /// candle's quantized matmul.
    Quant(QMatMul),
}

impl Linear {
    /// Builds the projection for `w` under `path` (float weights in `dtype`).
    pub(crate) fn load(
        w: &Weight,
        path: MatmulPath,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        match (w, path) {
            (Weight::Quant(q), MatmulPath::Quantized) => Ok(Linear::Quant(
                QMatMul::from_arc(q.clone()).ctx("build quantized matmul")?,
            )),
            (Weight::Quant(q), MatmulPath::F32) => {
                // The blocks serve only the CPU engine's matrix-vector products (f32 only).
                let blocks = (device.is_cpu() && dtype == DType::F32)
                    .then(|| QuantRows::from_qtensor(q).map(Arc::new))
                    .flatten();
                Ok(Linear::Float(w.to_tensor(device, dtype)?, blocks))
            }
            (Weight::Float(_), _) => Ok(Linear::Float(w.to_tensor(device, dtype)?, None)),
        }
    }

    /// The float weight `(out, in)`, or `None` on the quantized path.
    pub(crate) fn float_weight(&self) -> Option<&Tensor> {
        match self {
            Linear::Float(w, _) => Some(w),
            Linear::Quant(_) => None,
        }
    }

    /// `x` of shape `(..., in)` to `(..., out)`; a float product runs in `cast` when given
    /// (see [`matmul_as`]).
    pub(crate) fn forward(&self, x: &Tensor, cast: Option<DType>) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (lead, in_dim) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, in_dim[0]))?;
        let y = match self {
            Linear::Float(w, _) => matmul_as(&x2, &w.t()?, cast).ctx("linear")?,
            Linear::Quant(q) => q.forward(&x2.contiguous()?).ctx("quantized linear")?,
        };
        let out = y.dim(1)?;
        let mut shape = lead.to_vec();
        shape.push(out);
        Ok(y.reshape(shape)?)
    }
}

/// `a · b`, in `cast` when given (autocast: both operands rounded to `cast`, the product
/// computed there — cuBLAS accumulates bf16 products in f32 — and the result returned in
/// `a`'s type). `to_dtype` is differentiable, so gradients come back in `a`'s type too, as
/// under PyTorch's autocast. `None` is the plain product.
pub(crate) fn matmul_as(
    a: &Tensor,
    b: &Tensor,
    cast: Option<DType>,
) -> candle_core::Result<Tensor> {
    match cast {
        Some(dt) if dt != a.dtype() => a
            .to_dtype(dt)?
            .matmul(&b.to_dtype(dt)?)?
            .to_dtype(a.dtype()),
        _ => a.matmul(b),
    }
}

/// Root-mean-square normalisation with a learned gain (no bias, no mean subtraction).
#[derive(Debug, Clone)]
pub(crate) struct RmsNorm {
    pub(crate) weight: Tensor,
    pub(crate) eps: f64,
}

impl RmsNorm {
    pub(crate) fn load(w: &Weight, eps: f64, device: &Device, dtype: DType) -> Result<Self> {
        Ok(Self {
            weight: w.to_tensor(device, dtype)?,
            eps,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match mode {
            Mode::Fast => candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps as f32)
                .ctx("rms_norm"),
            Mode::Differentiable if super::autograd::supported(x) => {
                super::autograd::rms_norm(x, &self.weight, self.eps)
                    .ctx("rms_norm (differentiable)")
            }
            Mode::Differentiable => {
                let h = x.dim(D::Minus1)? as f64;
                let ms = (x.sqr()?.sum_keepdim(D::Minus1)? / h)?;
                let normed = x.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
                normed
                    .broadcast_mul(&self.weight)
                    .ctx("rms_norm (differentiable)")
            }
        }
    }
}

/// Softmax over the last dimension.
pub(crate) fn softmax_last(x: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Fast => candle_nn::ops::softmax_last_dim(x).ctx("softmax"),
        Mode::Differentiable if super::autograd::supported(x) => {
            super::autograd::softmax_last(x).ctx("softmax (differentiable)")
        }
        Mode::Differentiable => {
            // Subtracting the row max changes nothing mathematically but keeps exp finite.
            let max = x.max_keepdim(D::Minus1)?.detach();
            let e = x.broadcast_sub(&max)?.exp()?;
            let s = e.sum_keepdim(D::Minus1)?;
            e.broadcast_div(&s).ctx("softmax (differentiable)")
        }
    }
}

/// RoPE's frequencies. The cosine and sine table is built per forward pass for exactly
/// the positions that pass runs ([`Rope::table`]), so memory follows the sequences
/// actually run, never the context length a file declares. Each entry is computed the same
/// way whatever range it is built for, so results are bit-identical to a table
/// precomputed for every position.
#[derive(Debug, Clone)]
pub(crate) struct Rope {
    /// `theta^(-2i/d)` for `i` in `0..head_dim / 2`, in f64.
    inv: Vec<f64>,
    pub(crate) layout: RopeLayout,
    pub(crate) device: Device,
    pub(crate) dtype: DType,
}

/// Cosines and sines `(seq, head_dim / 2)` for the positions of one forward pass.
#[derive(Debug, Clone)]
pub(crate) struct RopeTable {
    cos: Tensor,
    sin: Tensor,
    layout: RopeLayout,
}

impl Rope {
    /// Frequencies `theta^(-2i/d)` are computed in f64; table entries are rounded once to
    /// `dtype`.
    pub(crate) fn new(
        head_dim: usize,
        theta: f64,
        layout: RopeLayout,
        device: &Device,
        dtype: DType,
    ) -> Self {
        let half = head_dim / 2;
        let inv = (0..half)
            .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
            .collect();
        Self {
            inv,
            layout,
            device: device.clone(),
            dtype,
        }
    }

    /// f64 cosines and sines, row-major `(len, head_dim / 2)`, of positions `start..start + len`.
    fn angles(&self, start: usize, len: usize) -> (Vec<f64>, Vec<f64>) {
        let n = len * self.inv.len();
        let (mut cos, mut sin) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for p in start..start + len {
            for f in &self.inv {
                let a = p as f64 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        (cos, sin)
    }

    /// The table for positions `start..start + len`, as tensors on the model's device.
    pub(crate) fn table(&self, start: usize, len: usize) -> Result<RopeTable> {
        let (cos, sin) = self.angles(start, len);
        let shape = (len, self.inv.len());
        // f64 → f32 rounds each value once, exactly as `as f32` does.
        Ok(RopeTable {
            cos: Tensor::from_vec(cos, shape, &self.device)?.to_dtype(self.dtype)?,
            sin: Tensor::from_vec(sin, shape, &self.device)?.to_dtype(self.dtype)?,
            layout: self.layout,
        })
    }

    /// The same table as f32 host buffers (the CPU engine's).
    pub(crate) fn host_table(&self, start: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
        let (cos, sin) = self.angles(start, len);
        (
            cos.into_iter().map(|v| v as f32).collect(),
            sin.into_iter().map(|v| v as f32).collect(),
        )
    }
}

impl RopeTable {
    /// Rotates `x` of shape `(batch, heads, seq, head_dim)` for the table's positions.
    pub(crate) fn apply(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, h, t, d) = x.dims4()?;
        let (cos, sin) = (&self.cos, &self.sin);
        if cos.dim(0)? != t {
            return Err(super::error::ModelError::BadInput {
                reason: format!("a RoPE table of {} positions applied to {t}", cos.dim(0)?),
            });
        }
        let x = x.contiguous()?;
        match (mode, self.layout) {
            (Mode::Fast, RopeLayout::Neox) => candle_nn::rotary_emb::rope(&x, cos, sin).ctx("rope"),
            (Mode::Fast, RopeLayout::Interleaved) => {
                candle_nn::rotary_emb::rope_i(&x, cos, sin).ctx("rope_i")
            }
            (Mode::Differentiable, layout) if super::autograd::supported(&x) => {
                super::autograd::rope(&x, cos, sin, layout).ctx("rope (differentiable)")
            }
            (Mode::Differentiable, RopeLayout::Neox) => {
                let cos = Tensor::cat(&[cos, cos], 1)?;
                let sin = Tensor::cat(&[sin, sin], 1)?;
                let x1 = x.narrow(D::Minus1, 0, d / 2)?;
                let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
                let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
                (x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?).ctx("rope (differentiable)")
            }
            (Mode::Differentiable, RopeLayout::Interleaved) => {
                let pairs = x.reshape((b, h, t, d / 2, 2))?;
                let x0 = pairs.narrow(4, 0, 1)?;
                let x1 = pairs.narrow(4, 1, 1)?;
                let cos = cos.unsqueeze(2)?;
                let sin = sin.unsqueeze(2)?;
                let y0 = (x0.broadcast_mul(&cos)? - x1.broadcast_mul(&sin)?)?;
                let y1 = (x0.broadcast_mul(&sin)? + x1.broadcast_mul(&cos)?)?;
                Tensor::cat(&[&y0, &y1], 4)?
                    .reshape((b, h, t, d))
                    .ctx("rope_i (differentiable)")
            }
        }
    }
}

/// Additive causal mask `(seq, offset + seq)` in `dtype`: query `i` (absolute position
/// `offset + i`) sees keys `0..=offset + i`.
pub(crate) fn causal_mask(
    seq: usize,
    offset: usize,
    device: &Device,
    dtype: DType,
) -> Result<Tensor> {
    let total = offset + seq;
    let data: Vec<f32> = (0..seq)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(data, (seq, total), device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let mut r = SeededRng::new(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| r.uniform_sym(1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    use crate::testutil::max_abs_diff as max_diff;

    #[test]
    fn a_table_for_some_positions_equals_those_rows_of_a_whole_table() {
        // Bit for bit: each entry is computed the same way whatever range it is built for,
        // so building per pass changes no result.
        let rope = Rope::new(16, 10_000.0, RopeLayout::Neox, &Device::Cpu, DType::F32);
        let whole = rope.table(0, 40).unwrap();
        let part = rope.table(17, 23).unwrap();
        for (a, b) in [(&whole.cos, &part.cos), (&whole.sin, &part.sin)] {
            let a: Vec<Vec<f32>> = a.narrow(0, 17, 23).unwrap().to_vec2().unwrap();
            let b: Vec<Vec<f32>> = b.to_vec2().unwrap();
            assert_eq!(a, b);
        }
        let (cos, _) = rope.host_table(17, 23);
        assert_eq!(
            cos,
            part.cos.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn differentiable_ops_match_fused_ones() {
        let x = rand(&[2, 3, 5, 8], 1);
        for layout in [RopeLayout::Neox, RopeLayout::Interleaved] {
            let rope = Rope::new(8, 10_000.0, layout, &Device::Cpu, DType::F32)
                .table(3, 5)
                .unwrap();
            let fast = rope.apply(&x, Mode::Fast).unwrap();
            let slow = rope.apply(&x, Mode::Differentiable).unwrap();
            assert!(max_diff(&fast, &slow) < 1e-5, "{layout:?}");
        }
        let w = Weight::Float(rand(&[8], 2));
        let n = RmsNorm::load(&w, 1e-5, &Device::Cpu, DType::F32).unwrap();
        assert!(
            max_diff(
                &n.forward(&x, Mode::Fast).unwrap(),
                &n.forward(&x, Mode::Differentiable).unwrap()
            ) < 1e-5
        );
        let m = causal_mask(5, 0, &Device::Cpu, DType::F32)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let s = x
            .broadcast_add(
                &m.narrow(3, 0, 5)
                    .unwrap()
                    .narrow(2, 0, 5)
                    .unwrap()
                    .pad_with_zeros(3, 0, 3)
                    .unwrap(),
            )
            .unwrap();
        assert!(
            max_diff(
                &softmax_last(&s, Mode::Fast).unwrap(),
                &softmax_last(&s, Mode::Differentiable).unwrap()
            ) < 1e-6
        );
    }

    #[test]
    fn mask_respects_offset() {
        let m: Vec<Vec<f32>> = causal_mask(2, 3, &Device::Cpu, DType::F32)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(m[0][3], 0.0);
        assert_eq!(m[0][4], f32::NEG_INFINITY);
        assert_eq!(m[1][4], 0.0);
    }
}
