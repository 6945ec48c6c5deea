//! Hand-differentiated CPU kernels for the training path (`Mode::Differentiable` in
//! [`super::layers`]): RMSNorm, softmax over the last dimension and RoPE, each one candle
//! custom op with its own backward instead of five to nine elementary graph nodes.
//!
//! Why: candle's autograd allocates a zero tensor and adds into it for every input of every
//! node, so an elementary-op RMSNorm costs some twenty full passes over the activations
//! per step. Each op here reads its inputs once forward and once backward. The maths:
//! - RMSNorm `y = x·r·w`, `r = (mean(x²) + ε)^(-1/2)`: `dx = r·g − x·r³·Σ(g·x)/h` with
//!   `g = dy·w`, and `dw = Σ_rows dy·x·r`.
//! - softmax `y = e^(x − max) / Σ e^(x − max)`: `dx = y·(dy − Σ dy·y)`.
//! - RoPE rotates each pair of dimensions by a position's angle, so its backward is the
//!   rotation by minus that angle.
//!
//! Rows run in parallel; each row's sums, and the column sums of `dw`, run in a fixed order,
//! so results do not depend on the thread count. f32 and f64 (gradient checks) on the CPU;
//! [`supported`] tells callers when to fall back to elementary ops.

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Storage, Tensor, WithDType,
};
use rayon::prelude::*;

use super::rope_layout::RopeLayout;

type CResult<T> = candle_core::Result<T>;

/// Whether the kernels here can run on `x`.
pub(crate) fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// The float operations the kernels need, for f32 and f64.
trait Real:
    WithDType
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn slice<'a>(s: &'a Storage, l: &Layout) -> CResult<&'a [Self]>;
}

macro_rules! real {
    ($t:ty, $variant:ident) => {
        impl Real for $t {
            fn of(v: f64) -> Self {
                v as $t
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn slice<'a>(s: &'a Storage, l: &Layout) -> CResult<&'a [Self]> {
                match (s, l.contiguous_offsets()) {
                    (Storage::Cpu(CpuStorage::$variant(d)), Some((a, b))) => Ok(&d[a..b]),
                    _ => candle_core::bail!(
                        "autograd kernel: expected a contiguous {} cpu tensor",
                        stringify!($t)
                    ),
                }
            }
        }
    };
}
real!(f32, F32);
real!(f64, F64);

fn cpu_slice<'a, T: Real>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [T]> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("autograd kernel: input is not contiguous".into())
    })?;
    match T::cpu_storage_as_slice(s) {
        Ok(d) => Ok(&d[a..b]),
        Err(e) => Err(e),
    }
}

/// Applies `f` to the f32 or f64 slices of up to three tensors of one dtype.
macro_rules! dispatch {
    ($dtype:expr, $f:ident ( $($arg:expr),* )) => {
        match $dtype {
            DType::F32 => $f::<f32>($($arg),*),
            DType::F64 => $f::<f64>($($arg),*),
            other => candle_core::bail!("autograd kernel: dtype {} is not f32 or f64", other.as_str()),
        }
    };
}

// ---------------------------------------------------------------- RMSNorm

/// RMSNorm over the last dimension with gain `w` (`x`'s last dimension).
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> CResult<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNormOp { eps })
}

struct RmsNormOp {
    eps: f64,
}

fn inv_rms<T: Real>(x: &[T], eps: f64) -> T {
    let mut ss = T::of(0.0);
    for &v in x {
        ss += v * v;
    }
    T::of(1.0) / (ss / T::of(x.len() as f64) + T::of(eps)).sqrt()
}

fn rms_fwd<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    eps: f64,
) -> CResult<CpuStorage> {
    let (x, w) = (cpu_slice::<T>(s1, l1)?, cpu_slice::<T>(s2, l2)?);
    let h = w.len();
    let mut y = vec![T::of(0.0); x.len()];
    y.par_chunks_mut(h).zip(x.par_chunks(h)).for_each(|(y, x)| {
        let r = inv_rms(x, eps);
        for i in 0..h {
            y[i] = x[i] * r * w[i];
        }
    });
    Ok(T::to_cpu_storage_owned(y))
}

fn rms_bwd<T: Real>(x: &Tensor, w: &Tensor, dy: &Tensor, eps: f64) -> CResult<(Tensor, Tensor)> {
    let (xs, xl) = x.storage_and_layout();
    let (ws, wl) = w.storage_and_layout();
    let (ds, dl) = dy.storage_and_layout();
    let (x_, w_, dy_) = (T::slice(&xs, xl)?, T::slice(&ws, wl)?, T::slice(&ds, dl)?);
    let h = w_.len();
    let r: Vec<T> = x_.par_chunks(h).map(|x| inv_rms(x, eps)).collect();
    let mut dx = vec![T::of(0.0); x_.len()];
    dx.par_chunks_mut(h)
        .zip(x_.par_chunks(h))
        .zip(dy_.par_chunks(h))
        .zip(r.par_iter())
        .for_each(|(((dx, x), dy), &r)| {
            let mut s = T::of(0.0);
            for i in 0..h {
                s += dy[i] * w_[i] * x[i];
            }
            let c = r * r * r * s / T::of(h as f64);
            for i in 0..h {
                dx[i] = r * dy[i] * w_[i] - x[i] * c;
            }
        });
    let mut dw = vec![T::of(0.0); h];
    for ((x, dy), &r) in x_.chunks(h).zip(dy_.chunks(h)).zip(&r) {
        for i in 0..h {
            dw[i] += dy[i] * x[i] * r;
        }
    }
    Ok((
        Tensor::from_vec(dx, x.shape(), x.device())?,
        Tensor::from_vec(dw, w.shape(), w.device())?,
    ))
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "groundtruth-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        Ok((
            dispatch!(s1.dtype(), rms_fwd(s1, l1, s2, l2, self.eps))?,
            l1.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let (dx, dw) = dispatch!(x.dtype(), rms_bwd(x, w, &dy, self.eps))?;
        Ok((Some(dx), Some(dw)))
    }
}

// ---------------------------------------------------------------- softmax

/// Softmax over the last dimension (masked entries at −∞ get probability 0).
pub(crate) fn softmax_last(x: &Tensor) -> CResult<Tensor> {
    x.contiguous()?.apply_op1(SoftmaxOp)
}

struct SoftmaxOp;

fn softmax_fwd<T: Real>(s: &CpuStorage, l: &Layout) -> CResult<CpuStorage> {
    let x = cpu_slice::<T>(s, l)?;
    let d = *l.dims().last().unwrap_or(&1);
    let mut y = vec![T::of(0.0); x.len()];
    y.par_chunks_mut(d.max(1))
        .zip(x.par_chunks(d.max(1)))
        .for_each(|(y, x)| {
            let mut m = x[0];
            for &v in x {
                m = if v > m { v } else { m };
            }
            let mut s = T::of(0.0);
            for (o, &v) in y.iter_mut().zip(x) {
                *o = (v - m).exp();
                s += *o;
            }
            for o in y.iter_mut() {
                *o /= s;
            }
        });
    Ok(T::to_cpu_storage_owned(y))
}

fn softmax_bwd<T: Real>(y: &Tensor, dy: &Tensor) -> CResult<Tensor> {
    let (ys, yl) = y.storage_and_layout();
    let (ds, dl) = dy.storage_and_layout();
    let (y_, dy_) = (T::slice(&ys, yl)?, T::slice(&ds, dl)?);
    let d = *y.dims().last().unwrap_or(&1);
    let mut dx = vec![T::of(0.0); y_.len()];
    dx.par_chunks_mut(d.max(1))
        .zip(y_.par_chunks(d.max(1)))
        .zip(dy_.par_chunks(d.max(1)))
        .for_each(|((dx, y), dy)| {
            let mut dot = T::of(0.0);
            for i in 0..y.len() {
                dot += dy[i] * y[i];
            }
            for i in 0..y.len() {
                dx[i] = y[i] * (dy[i] - dot);
            }
        });
    Tensor::from_vec(dx, y.shape(), y.device())
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "groundtruth-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        Ok((dispatch!(s.dtype(), softmax_fwd(s, l))?, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> CResult<Option<Tensor>> {
        let dy = dy.contiguous()?;
        Ok(Some(dispatch!(y.dtype(), softmax_bwd(y, &dy))?))
    }
}

// ---------------------------------------------------------------- RoPE

/// Rotates `x` `(batch, heads, seq, head_dim)` by the angles whose cosines and sines are
/// `cos`, `sin` `(seq, head_dim / 2)`, pairs laid out as `layout` says.
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, layout: RopeLayout) -> CResult<Tensor> {
    let op = RopeOp {
        cos: cos.contiguous()?,
        sin: sin.contiguous()?,
        layout,
        inverse: false,
    };
    x.contiguous()?.apply_op1(op)
}

struct RopeOp {
    cos: Tensor,
    sin: Tensor,
    layout: RopeLayout,
    inverse: bool,
}

fn rotate<T: Real>(
    x: &[T],
    cos: &[T],
    sin: &[T],
    seq: usize,
    d: usize,
    layout: RopeLayout,
    inverse: bool,
) -> Vec<T> {
    let half = d / 2;
    let mut y = vec![T::of(0.0); x.len()];
    y.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .enumerate()
        .for_each(|(row, (y, x))| {
            let t = row % seq;
            for i in 0..half {
                let c = cos[t * half + i];
                let s = if inverse {
                    T::of(0.0) - sin[t * half + i]
                } else {
                    sin[t * half + i]
                };
                let (a, b) = match layout {
                    RopeLayout::Neox => (i, i + half),
                    RopeLayout::Interleaved => (2 * i, 2 * i + 1),
                };
                y[a] = x[a] * c - x[b] * s;
                y[b] = x[b] * c + x[a] * s;
            }
        });
    y
}

fn rope_fwd<T: Real>(op: &RopeOp, s: &CpuStorage, l: &Layout) -> CResult<CpuStorage> {
    let x = cpu_slice::<T>(s, l)?;
    let (_, _, seq, d) = l.shape().dims4()?;
    let (cs, cl) = op.cos.storage_and_layout();
    let (ss, sl) = op.sin.storage_and_layout();
    Ok(T::to_cpu_storage_owned(rotate(
        x,
        T::slice(&cs, cl)?,
        T::slice(&ss, sl)?,
        seq,
        d,
        op.layout,
        op.inverse,
    )))
}

impl CustomOp1 for RopeOp {
    fn name(&self) -> &'static str {
        "groundtruth-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        Ok((
            dispatch!(s.dtype(), rope_fwd(self, s, l))?,
            l.shape().clone(),
        ))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> CResult<Option<Tensor>> {
        let inv = RopeOp {
            cos: self.cos.clone(),
            sin: self.sin.clone(),
            layout: self.layout,
            inverse: !self.inverse,
        };
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&inv)?))
    }
}
