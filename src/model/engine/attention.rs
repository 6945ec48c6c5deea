//! RoPE and causal grouped-query attention on row-major buffers.
//!
//! Layouts: activations are `(batch·seq, heads·head_dim)` rows; keys and values of one
//! batch row are `(positions, kv_heads·head_dim)`, the KV cache's own layout, so a cached
//! prefix is read in place and a new token only appends a row.
//!
//! Queries are processed in tiles of [`TILE`] rows; a tile only multiplies the keys its
//! last row may see, which skips most of the masked upper triangle.

use rayon::prelude::*;

use super::linear::Shared;
use super::math::exp_in_place;
use crate::model::rope_layout::RopeLayout;

/// Query rows per attention task.
const TILE: usize = 64;

/// Below this many multiply-adds an attention call runs on the calling thread: decoding
/// one token is cheaper than waking the pool.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// Head counts and width.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub(crate) q: usize,
    pub(crate) kv: usize,
    pub(crate) dim: usize,
}

/// Rotates each `dim`-wide head of each row in place; row `i` takes row `pos(i)` of the
/// `(positions, dim / 2)` tables `cos`/`sin`.
pub(crate) fn rope(
    x: &mut [f32],
    width: usize,
    dim: usize,
    pos: impl Fn(usize) -> usize,
    cos: &[f32],
    sin: &[f32],
    layout: RopeLayout,
) {
    let half = dim / 2;
    for (i, row) in x.chunks_exact_mut(width).enumerate() {
        let p = pos(i);
        let (c, s) = (
            &cos[p * half..(p + 1) * half],
            &sin[p * half..(p + 1) * half],
        );
        for head in row.chunks_exact_mut(dim) {
            match layout {
                // Rotate-half (HF): pairs are (j, j + dim/2).
                RopeLayout::Neox => {
                    let (a, b) = head.split_at_mut(half);
                    for j in 0..half {
                        let (x1, x2) = (a[j], b[j]);
                        a[j] = x1 * c[j] - x2 * s[j];
                        b[j] = x1 * s[j] + x2 * c[j];
                    }
                }
                // GGML order: pairs are (2j, 2j + 1).
                RopeLayout::Interleaved => {
                    for j in 0..half {
                        let (x0, x1) = (head[2 * j], head[2 * j + 1]);
                        head[2 * j] = x0 * c[j] - x1 * s[j];
                        head[2 * j + 1] = x0 * s[j] + x1 * c[j];
                    }
                }
            }
        }
    }
}

/// Causal attention for `t` query rows per batch row at positions `offset..offset + t`.
///
/// `q`: `(b·t, heads·dim)` (already rotated); `keys[bi]`/`values[bi]`: at least
/// `offset + t` rows of `kv·dim`; `out`: `(b·t, heads·dim)`, overwritten.
pub(crate) fn attend(
    q: &[f32],
    keys: &[&[f32]],
    values: &[&[f32]],
    t: usize,
    offset: usize,
    h: Heads,
    out: &mut [f32],
) {
    let b = keys.len();
    let tiles = t.div_ceil(TILE);
    let tasks: Vec<(usize, usize, usize)> = (0..b)
        .flat_map(|bi| (0..h.q).flat_map(move |head| (0..tiles).map(move |tile| (bi, head, tile))))
        .collect();
    let dst = Shared(out.as_mut_ptr());
    let run = |&(bi, head, tile): &(usize, usize, usize)| {
        let i0 = tile * TILE;
        let rows = TILE.min(t - i0);
        // SAFETY: each task writes its own (rows, head) block of `out`.
        unsafe {
            attend_tile(
                q,
                keys[bi],
                values[bi],
                bi * t + i0,
                offset + i0,
                rows,
                head,
                h,
                dst.get(),
            )
        }
    };
    let work = b * h.q * t * (offset + t) * h.dim;
    if work < PARALLEL_MIN_WORK {
        tasks.iter().for_each(run);
    } else {
        tasks.par_iter().for_each(run);
    }
}

/// One head, `rows` query rows starting at activation row `r0` and position `p0`.
///
/// # Safety
/// `out` must address a `(·, heads·dim)` buffer holding rows `r0..r0 + rows`, which no
/// other thread writes in this head's columns.
#[allow(clippy::too_many_arguments)]
unsafe fn attend_tile(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    r0: usize,
    p0: usize,
    rows: usize,
    head: usize,
    h: Heads,
    out: *mut f32,
) {
    let width = h.q * h.dim;
    let kv_width = h.kv * h.dim;
    let g = head / (h.q / h.kv);
    let n = p0 + rows;
    // In release builds too: the reads below index k and v up to n rows unchecked.
    assert!(k.len() >= n * kv_width && v.len() >= n * kv_width);
    let scale = 1.0 / (h.dim as f32).sqrt();
    let mut scores = vec![0f32; rows * n];
    // scores = scale · Q Kᵀ, as the reference path scales the product.
    gemm::gemm(
        rows,
        n,
        h.dim,
        scores.as_mut_ptr(),
        1,
        n as isize,
        false,
        q.as_ptr().add(r0 * width + head * h.dim),
        1,
        width as isize,
        k.as_ptr().add(g * h.dim),
        kv_width as isize,
        1,
        0.0,
        scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
    for (i, row) in scores.chunks_exact_mut(n).enumerate() {
        let (seen, masked) = row.split_at_mut(p0 + i + 1);
        softmax(seen);
        masked.fill(0.0);
    }
    gemm::gemm(
        rows,
        h.dim,
        n,
        out.add(r0 * width + head * h.dim),
        1,
        width as isize,
        false,
        scores.as_ptr(),
        1,
        n as isize,
        v.as_ptr().add(g * h.dim),
        1,
        kv_width as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// In-place softmax, as candle's `softmax_last_dim` computes it (max subtracted, sum
/// accumulated in order, each term divided by it).
pub(crate) fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in x.iter_mut() {
        *v -= max;
    }
    exp_in_place(x);
    let sum: f32 = x.iter().sum();
    for v in x.iter_mut() {
        *v /= sum;
    }
}
