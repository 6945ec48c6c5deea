//! Projections `y = x·Wᵀ` for the engine: `gemm` on f32 weights for many rows, a
//! parallel matrix–vector product on the stored blocks for few.
//!
//! The cut-over: a product with `m` activation rows reads the whole weight once either
//! way, but f32 weights are 5–6× more bytes than Q4_1/Q8_0 blocks, while `gemm` does the
//! arithmetic several times faster per row than the block kernels. Below
//! [`QUANT_MAX_ROWS`] rows (decoding, short prompts) the bytes dominate.

use rayon::prelude::*;

use super::quant::{block_sums, Out, QuantRows};

/// Largest activation row count multiplied on the stored blocks (measured on SmolLM2).
pub(crate) const QUANT_MAX_ROWS: usize = 16;

/// Largest row count for which an f32 product is split by output features instead of
/// letting `gemm` parallelise it (`gemm` runs a single thread for one row).
const SPLIT_MAX_ROWS: usize = 4;

/// A projection's weights: the f32 matrix `(rows, cols)`, and its stored blocks when the
/// engine can multiply them directly.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) f32: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) quant: Option<&'a QuantRows>,
}

/// A raw pointer that threads may share because each writes a disjoint set of elements.
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub(crate) *mut f32);
// SAFETY: every user writes disjoint elements and the buffer outlives the parallel scope.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not the field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }

    /// The buffer as a block kernel's output: rows of `ld` features, written or, with
    /// `add`, added to.
    fn out(self, ld: usize, add: bool) -> Out {
        Out {
            ptr: self.0,
            ld,
            add,
        }
    }
}

/// Output-feature ranges for `threads` workers, a few per worker to even out load.
fn ranges(rows: usize) -> Vec<(usize, usize)> {
    let parts = (rayon::current_num_threads() * 4).clamp(1, rows.div_ceil(16).max(1));
    let step = rows.div_ceil(parts);
    (0..rows)
        .step_by(step.max(1))
        .map(|o| (o, (o + step).min(rows)))
        .collect()
}

/// `y = x·Wᵀ` (or `y += x·Wᵀ` with `add`) for `x` of shape `(m, w.cols)` and `y` of shape
/// `(m, w.rows)`, both row-major.
pub(crate) fn matmul(x: &[f32], w: Mat<'_>, y: &mut [f32], add: bool) {
    matmul_many(x, &[w], &mut [y], add);
}

/// The rows of `x` once every product's shapes agree, `None` when there is nothing to
/// compute. Checked in release builds too: the unsafe writes of [`matmul_many`] and
/// [`matmul_rows`] rely on these shapes, and a wrong one is a panic naming it, never a
/// write out of bounds.
fn checked_rows(x: &[f32], ws: &[Mat<'_>], ys: &[&mut [f32]]) -> Option<usize> {
    let cols = ws.first()?.cols;
    let m = x.len() / cols;
    for (w, y) in ws.iter().zip(ys) {
        assert_eq!(
            (w.cols, x.len(), y.len(), w.f32.len()),
            (cols, m * cols, m * w.rows, w.rows * w.cols)
        );
        assert!(w.quant.is_none_or(|q| q.dims() == (w.rows, w.cols)));
    }
    (m > 0).then_some(m)
}

/// The parallel tasks over `ws`: (matrix, first output, end output), disjoint within a
/// matrix.
fn tasks(ws: &[Mat<'_>]) -> Vec<(usize, usize, usize)> {
    ws.iter()
        .enumerate()
        .flat_map(|(i, w)| ranges(w.rows).into_iter().map(move |(a, b)| (i, a, b)))
        .collect()
}

/// `ys[i] (+)= x·W_iᵀ` for projections of the same input (Q, K, V; gate, up). With few
/// rows they share one parallel region: each region is a wait for the slowest thread,
/// and on a loaded 2-core machine that wait, not the arithmetic, is what adds up.
pub(crate) fn matmul_many(x: &[f32], ws: &[Mat<'_>], ys: &mut [&mut [f32]], add: bool) {
    let Some(m) = checked_rows(x, ws, ys) else {
        return;
    };
    let blocks = |w: &Mat<'_>| w.quant.is_some() && m <= QUANT_MAX_ROWS;
    if ws.iter().any(|w| !blocks(w) && m > SPLIT_MAX_ROWS) {
        one_at_a_time(x, m, ws, ys, add, &blocks);
        return;
    }
    let sums = sums_if_needed(x, ws, &blocks);
    let outs: Vec<Shared> = ys.iter_mut().map(|y| Shared(y.as_mut_ptr())).collect();
    let tasks = tasks(ws);
    tasks.into_par_iter().for_each(|(i, o0, o1)| {
        let (w, out) = (ws[i], outs[i]);
        match w.quant.filter(|_| blocks(&w)) {
            // SAFETY: y_i is (m, w.rows), and tasks of one matrix have disjoint o.
            Some(q) => unsafe { q.dot_rows(o0, o1, x, &sums, out.out(w.rows, add)) },
            // SAFETY: columns o0..o1 of y_i and rows o0..o1 of W_i are in bounds; tasks
            // write disjoint columns.
            None => unsafe {
                gemm_f32(
                    m,
                    o1 - o0,
                    w.cols,
                    out.get().add(o0),
                    w.rows,
                    x.as_ptr(),
                    w.f32.as_ptr().add(o0 * w.cols),
                    add,
                    gemm::Parallelism::None,
                )
            },
        }
    });
}

/// The block sums of `x` when a matrix multiplied on its stored blocks (`on_blocks` says
/// which are) needs them, else nothing.
fn sums_if_needed(x: &[f32], ws: &[Mat<'_>], on_blocks: &dyn Fn(&Mat<'_>) -> bool) -> Vec<f32> {
    if ws
        .iter()
        .any(|w| on_blocks(w) && w.quant.is_some_and(|q| q.kind().needs_sums()))
    {
        block_sums(x)
    } else {
        Vec::new()
    }
}

/// [`matmul_many`] for many rows: each product on its own, a float one as one gemm over
/// rayon's pool. `m` rows of `x`; shapes as [`matmul_many`] checks them.
fn one_at_a_time(
    x: &[f32],
    m: usize,
    ws: &[Mat<'_>],
    ys: &mut [&mut [f32]],
    add: bool,
    blocks: &dyn Fn(&Mat<'_>) -> bool,
) {
    for (w, y) in ws.iter().zip(ys.iter_mut()) {
        if blocks(w) {
            matmul_many(x, std::slice::from_ref(w), &mut [&mut **y], add);
        } else {
            // SAFETY: shapes checked by the caller, matmul_many: x is (m, w.cols), y is
            // (m, w.rows), w.f32 is (w.rows, w.cols).
            unsafe {
                gemm_f32(
                    m,
                    w.rows,
                    w.cols,
                    y.as_mut_ptr(),
                    w.rows,
                    x.as_ptr(),
                    w.f32.as_ptr(),
                    add,
                    gemm::Parallelism::Rayon(0),
                )
            }
        }
    }
}

/// `dst (m×n, row stride ld) (+)= lhs (m×k, row-major) · rhsᵀ` where `rhs` is `(n, k)`
/// row-major: the layout of a projection weight.
///
/// # Safety
/// The pointers must address buffers of those shapes.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    ld: usize,
    lhs: *const f32,
    rhs: *const f32,
    add: bool,
    par: gemm::Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        ld as isize,
        add,
        lhs,
        1,
        k as isize,
        rhs,
        k as isize,
        1,
        if add { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        par,
    )
}

/// `ys[i] (+)= x·W_iᵀ` computed for each row of `x` exactly as [`matmul_many`] computes a
/// single row (the same output ranges, the same kernel: `gemm` on one row, or the stored
/// blocks, whose kernel gives each row its own accumulators), in one parallel region. So a
/// row's result does not depend on which other rows share the call: batched decoding
/// gives each sequence the bits it gets alone.
pub(crate) fn matmul_rows(x: &[f32], ws: &[Mat<'_>], ys: &mut [&mut [f32]], add: bool) {
    let Some(m) = checked_rows(x, ws, ys) else {
        return;
    };
    let sums = sums_if_needed(x, ws, &|_| true);
    let outs: Vec<Shared> = ys.iter_mut().map(|y| Shared(y.as_mut_ptr())).collect();
    let tasks = tasks(ws);
    tasks.into_par_iter().for_each(|(i, o0, o1)| {
        let (w, out) = (ws[i], outs[i]);
        match w.quant {
            // SAFETY: y_i is (m, w.rows), and tasks of one matrix have disjoint o.
            Some(q) => unsafe { q.dot_rows(o0, o1, x, &sums, out.out(w.rows, add)) },
            // SAFETY: as in `matmul_many`, one row at a time.
            None => {
                for r in 0..m {
                    unsafe {
                        gemm_f32(
                            1,
                            o1 - o0,
                            w.cols,
                            out.get().add(r * w.rows + o0),
                            w.rows,
                            x.as_ptr().add(r * w.cols),
                            w.f32.as_ptr().add(o0 * w.cols),
                            add,
                            gemm::Parallelism::None,
                        )
                    }
                }
            }
        }
    });
}
