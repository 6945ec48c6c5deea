//! One decoding step of many sequences at once, each with its own KV cache and position:
//! what batched generation runs after each sequence's prompt went through
//! [`super::forward`] alone.
//!
//! Every row is computed as [`super::forward`] computes one sequence's single new token:
//! the same kernels on one row (projections through [`matmul_rows`], attention over the
//! row's own cache, RoPE at the row's own position), so a sequence's logits are bit for
//! bit those it gets decoded alone, whatever shares the step. The batch saves the
//! per-call work a token alone pays: one parallel region per projection for all rows, one
//! pass over the weights per step for stored blocks, no tensor round trips.

use super::attention::{attend, rope};
use super::linear::matmul_rows;
use super::pass::Pass;
use super::{embed_rows, rms_norm, HeldMat};
use crate::model::cache::KvCache;
use crate::model::error::{ModelError, Result};
use crate::model::llama::Llama;

/// Logits `(ids.len(), vocab)`, flattened: row `r` is the next-token distribution after
/// `ids[r]` is appended to `caches[r]` (a batch-1 cache the engine filled).
pub(crate) fn forward_step(
    m: &Llama,
    ids: &[u32],
    caches: &mut [&mut KvCache],
) -> Result<Vec<f32>> {
    let rows = ids.len();
    let mut pass = Pass::new(&m.config, rows);
    let (h, kvw, heads) = (pass.h, pass.kvw, pass.heads);
    let offsets = prepare(caches)?;
    let tables: Vec<(Vec<f32>, Vec<f32>)> =
        offsets.iter().map(|&o| m.rope.host_table(o, 1)).collect();
    let mut x = embed_rows(m, ids, h)?;
    for (l, blk) in m.blocks.iter().enumerate() {
        pass.project_qkv(blk, &x, matmul_rows)?;
        for (r, c) in caches.iter_mut().enumerate() {
            let (cos, sin) = &tables[r];
            let qr = &mut pass.q[r * h..(r + 1) * h];
            let kr = &mut pass.k[r * kvw..(r + 1) * kvw];
            rope(qr, h, heads.dim, |_| 0, cos, sin, m.rope.layout);
            rope(kr, kvw, heads.dim, |_| 0, cos, sin, m.rope.layout);
            let slot = &mut c.host[l][0];
            slot.k.extend_from_slice(kr);
            slot.v.extend_from_slice(&pass.v[r * kvw..(r + 1) * kvw]);
            let (keys, vals) = ([slot.k.as_slice()], [slot.v.as_slice()]);
            attend(
                qr,
                &keys,
                &vals,
                1,
                offsets[r],
                heads,
                &mut pass.att[r * h..(r + 1) * h],
            );
        }
        pass.finish_layer(blk, &mut x, matmul_rows)?;
    }
    for c in caches.iter_mut() {
        c.advance(1);
    }
    head_rows(m, &x, rows)
}

/// Each cache's length (its row's position) once every cache is a host-side
/// single-sequence one.
fn prepare(caches: &mut [&mut KvCache]) -> Result<Vec<usize>> {
    for c in caches.iter_mut() {
        if c.batch().is_some_and(|b| b != 1) {
            return Err(ModelError::BadInput {
                reason: "a batched decoding step takes one single-sequence cache per row".into(),
            });
        }
        c.host_prepare(1)
            .map_err(|reason| ModelError::BadInput { reason })?;
    }
    Ok(caches.iter().map(|c| c.len()).collect())
}

/// The final norm and the output layer on each of the `rows` rows of `x`.
fn head_rows(m: &Llama, x: &[f32], rows: usize) -> Result<Vec<f32>> {
    let mut normed = vec![0f32; x.len()];
    rms_norm(x, &m.norm, &mut normed)?;
    let head = HeldMat::new(&m.lm_head)?;
    let mut logits = vec![0f32; rows * head.rows];
    matmul_rows(&normed, &[head.mat()], &mut [&mut logits], false);
    Ok(logits)
}
