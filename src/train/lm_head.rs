//! [`linear_cross_entropy`]: the output projection and the cross-entropy as one op, whose
//! logits never enter the autograd graph.
//!
//! Why: the `(batch · seq, vocab)` logits are the largest tensor of a training step (33M
//! floats for 16 × 128 × 16000). As a graph node they cost a fresh allocation per step (too
//! large for the heap, so a fresh mmap and 32k page faults each time), candle's zero-fill
//! and add per gradient accumulation, and transposed copies for the weight gradient. Here,
//! on the CPU in f32, the logits live in one buffer reused across steps, the three products
//! (`logits = x·Wᵀ`, `dx = G·W`, `dW = Gᵀ·x`) are direct gemm calls on it, and the
//! gradient `G` overwrites the logits in place. Other dtypes and devices take the same
//! maths through candle's ops.

use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::kernels::row_lse;
use super::loss::{check_targets, cross_entropy, softmax_grad_in_place_f32};

type CResult<T> = candle_core::Result<T>;

/// Mean cross-entropy of the logits `x · wᵀ` (`x`: `(n, hidden)`, `w`: `(vocab, hidden)`)
/// against `targets`, differentiable with respect to `x` and `w`.
pub fn linear_cross_entropy(x: &Tensor, w: &Tensor, targets: &[u32]) -> CResult<Tensor> {
    let (n, h) = x.dims2()?;
    let (v, hw) = w.dims2()?;
    if h != hw {
        candle_core::bail!("linear cross-entropy: hidden {h} vs weight {:?}", w.dims());
    }
    check_targets(n, v, targets)?;
    if !(x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32) {
        return fallback(x, w, targets);
    }
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let mut buf = Buffer::take(n * v);
    let losses = {
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (xd, wd) = (f32_slice(&xs, xl)?, f32_slice(&ws, wl)?);
        // logits (n × v) = x (n × h) · wᵀ: wᵀ's element (k, j) is w[j, k].
        gemm(
            n,
            v,
            h,
            &mut buf.0[..n * v],
            v,
            1,
            false,
            xd,
            h,
            1,
            wd,
            1,
            h,
        );
        buf.0[..n * v]
            .par_chunks(v)
            .zip(targets.par_iter())
            .map(|(row, &t)| match row_lse(row) {
                (_, true) => f32::NAN,
                (lse, false) => (lse - f64::from(row[t as usize])) as f32,
            })
            .collect::<Vec<f32>>()
    };
    let op = LinearCe {
        value: Mutex::new(Some(losses)),
        logits: Mutex::new(Some(buf)),
        targets: Arc::new(targets.to_vec()),
    };
    x.apply_op2(&w, op)?.mean_all()
}

/// The same value and gradients through candle's own ops.
fn fallback(x: &Tensor, w: &Tensor, targets: &[u32]) -> CResult<Tensor> {
    cross_entropy(&x.matmul(&w.t()?)?, targets)
}

fn f32_slice<'a>(s: &'a Storage, l: &Layout) -> CResult<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(d)), Some((a, b))) => Ok(&d[a..b]),
        _ => candle_core::bail!("linear cross-entropy: expected a contiguous f32 cpu tensor"),
    }
}

/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)`, strides in elements (row, column),
/// on candle's thread count. Each output element's sum runs over `k` in one thread, in
/// order, so results do not depend on the thread count.
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    d_rs: usize,
    d_cs: usize,
    acc: bool,
    lhs: &[f32],
    l_rs: usize,
    l_cs: usize,
    rhs: &[f32],
    r_rs: usize,
    r_cs: usize,
) {
    let extent = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(
        dst.len() >= extent(m, n, d_rs, d_cs)
            && lhs.len() >= extent(m, k, l_rs, l_cs)
            && rhs.len() >= extent(k, n, r_rs, r_cs),
        "gemm operands too short"
    );
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above keeps every strided access inside the three slices, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            d_cs as isize,
            d_rs as isize,
            acc,
            lhs.as_ptr(),
            l_cs as isize,
            l_rs as isize,
            rhs.as_ptr(),
            r_cs as isize,
            r_rs as isize,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// A logits buffer borrowed from a process-wide pool and returned on drop, so steps after
/// the first reuse memory that is already mapped.
struct Buffer(Vec<f32>);

fn pool() -> &'static Mutex<Vec<Vec<f32>>> {
    static POOL: OnceLock<Mutex<Vec<Vec<f32>>>> = OnceLock::new();
    POOL.get_or_init(Default::default)
}

impl Buffer {
    fn take(len: usize) -> Buffer {
        let mut p = pool().lock().unwrap_or_else(|e| e.into_inner());
        let mut v = match p.iter().position(|b| b.len() >= len) {
            Some(i) => p.swap_remove(i),
            None => Vec::new(),
        };
        if v.len() < len {
            // Every element is written by the gemm before it is read; the fill only maps pages.
            v.resize(len, 0.0);
        }
        Buffer(v)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        let mut p = pool().lock().unwrap_or_else(|e| e.into_inner());
        // Two buffers cover a training step plus an evaluation in flight.
        if p.len() < 2 {
            p.push(v);
        }
    }
}

struct LinearCe {
    value: Mutex<Option<Vec<f32>>>,
    logits: Mutex<Option<Buffer>>,
    targets: Arc<Vec<u32>>,
}

fn poisoned<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("linear cross-entropy: poisoned lock".into())
}

impl CustomOp2 for LinearCe {
    fn name(&self) -> &'static str {
        "groundtruth-linear-cross-entropy"
    }

    /// Hands over the per-row losses computed eagerly in [`linear_cross_entropy`].
    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let v = self.value.lock().map_err(poisoned)?.take();
        let Some(v) = v else {
            candle_core::bail!("{}: the forward runs once", self.name())
        };
        let n = v.len();
        Ok((CpuStorage::F32(v), Shape::from(n)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let (n, h) = x.dims2()?;
        let (v, _) = w.dims2()?;
        let kept = self.logits.lock().map_err(poisoned)?.take();
        let Some(mut buf) = kept else {
            // A second backward through the same graph: recompute through candle.
            let (gx, gw) = fallback(&x.detach(), &w.detach(), &self.targets)?
                .backward()
                .map(|g| (g.get(x).cloned(), g.get(w).cloned()))?;
            return Ok((gx, gw));
        };
        let lg: Vec<f32> = Tensor::stack(&[res, grad_res], 1)?
            .flatten_all()?
            .to_vec1()?;
        let g = &mut buf.0[..n * v];
        softmax_grad_in_place_f32(g, v, &lg, &self.targets);
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (xd, wd) = (f32_slice(&xs, xl)?, f32_slice(&ws, wl)?);
        let mut dx = vec![0f32; n * h];
        gemm(n, h, v, &mut dx, h, 1, false, g, v, 1, wd, h, 1);
        let mut dw = vec![0f32; v * h];
        // dW (v × h) = Gᵀ (v × n) · x (n × h): Gᵀ's element (j, r) is G[r, j].
        gemm(v, h, n, &mut dw, h, 1, false, g, 1, v, xd, h, 1);
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (n, h), dev)?),
            Some(Tensor::from_vec(dw, (v, h), dev)?),
        ))
    }
}
