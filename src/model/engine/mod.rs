//! The CPU inference engine behind [`Llama::forward`] on the f32 path: the same
//! arithmetic as the candle reference path (f32 activations, weights dequantized
//! exactly), written over plain buffers.
//!
//! Why not candle ops: teacher-forced scoring and greedy decoding are the harness's hot
//! path, and candle spends most of a decoded token on per-op overhead (~30 ops a layer,
//! each allocating), on copying the whole KV cache to append one row, and on streaming
//! 540 MB of f32 weights. Here a layer is a handful of calls into `gemm` (prefill) or
//! into matrix–vector kernels on the stored Q4/Q8 blocks (decoding), the KV cache grows
//! in place, and the output projection runs only for the rows the caller asks for.
//!
//! Results equal the reference path's up to f32 summation order; the model tests compare
//! every path (`src/model/tests/paths.rs`).

mod attention;
mod linear;
mod math;
mod pass;
mod quant;
mod step;

pub(crate) use linear::QUANT_MAX_ROWS;
pub(crate) use quant::QuantRows;
pub(crate) use step::forward_step;

use candle_core::{CpuStorage, Storage, StorageRef, Tensor};
use rayon::prelude::*;

use super::cache::{HostKv, KvCache};
use super::error::{ModelError, Result};
use super::layers::{Linear, RmsNorm};
use super::llama::Llama;
use attention::{attend, rope, Heads};
use linear::{matmul, matmul_many, Mat};
use math::exp_in_place;
use pass::Pass;

/// Rows above which elementwise steps are split across threads.
const PARALLEL_MIN_ROWS: usize = 32;

/// A read lock on an f32 CPU tensor's storage with its contiguous range: weights are
/// read in place, so a [`crate::model::TrainableLlama`]'s variables are seen as updated.
struct Held<'a> {
    guard: StorageRef<'a>,
    lo: usize,
    hi: usize,
}

impl<'a> Held<'a> {
    fn new(t: &'a Tensor) -> Result<Held<'a>> {
        let (guard, layout) = t.storage_and_layout();
        let range = layout.contiguous_offsets();
        let held = match (range, &*guard) {
            (Some((lo, hi)), Storage::Cpu(CpuStorage::F32(_))) => Some((lo, hi)),
            _ => None,
        };
        match held {
            Some((lo, hi)) => Ok(Held { guard, lo, hi }),
            None => Err(ModelError::Unsupported {
                what: format!(
                    "engine input: a {:?} tensor that is not contiguous f32 on the CPU",
                    t.dims()
                ),
            }),
        }
    }

    fn get(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.lo..self.hi],
            _ => &[],
        }
    }
}

/// Whether every tensor of `llama` is one the engine reads (f32, contiguous, CPU, and
/// projections not on candle's quantized kernels).
pub(crate) fn supports(llama: &Llama) -> bool {
    let f32_cpu = |t: &Tensor| {
        t.device().is_cpu() && t.dtype() == candle_core::DType::F32 && t.is_contiguous()
    };
    let lin = |l: &Linear| matches!(l, Linear::Float(w, _) if f32_cpu(w));
    f32_cpu(&llama.embed)
        && f32_cpu(&llama.norm.weight)
        && lin(&llama.lm_head)
        && llama.rope.device.is_cpu()
        && llama.rope.dtype == candle_core::DType::F32
        && llama.blocks.iter().all(|b| {
            [
                &b.attn.q,
                &b.attn.k,
                &b.attn.v,
                &b.attn.o,
                &b.mlp.gate,
                &b.mlp.up,
                &b.mlp.down,
            ]
            .into_iter()
            .all(lin)
                && f32_cpu(&b.input_norm.weight)
                && f32_cpu(&b.post_norm.weight)
        })
}

/// The weights of one projection, locked for reading.
struct HeldMat<'a> {
    w: Held<'a>,
    rows: usize,
    cols: usize,
    quant: Option<&'a QuantRows>,
}

impl<'a> HeldMat<'a> {
    fn new(l: &'a Linear) -> Result<HeldMat<'a>> {
        let (t, quant) = match l {
            Linear::Float(t, q) => (t, q.as_deref()),
            Linear::Quant(_) => {
                return Err(ModelError::Unsupported {
                    what: "engine input: candle quantized matmul".into(),
                })
            }
        };
        let (rows, cols) = t.dims2()?;
        Ok(HeldMat {
            w: Held::new(t)?,
            rows,
            cols,
            quant,
        })
    }

    fn mat(&self) -> Mat<'_> {
        Mat {
            f32: self.w.get(),
            rows: self.rows,
            cols: self.cols,
            quant: self.quant,
        }
    }
}

/// Logits `(b, t − first, vocab)`, flattened, of the rows `first..t` of each batch row of
/// `ids` (`b·t` ids, already range-checked); with a cache, positions continue it.
pub(crate) fn forward(
    m: &Llama,
    ids: &[u32],
    b: usize,
    t: usize,
    mut cache: Option<&mut KvCache>,
    first: usize,
) -> Result<Vec<f32>> {
    let mut pass = Pass::new(&m.config, b * t);
    let (h, kvw, heads) = (pass.h, pass.kvw, pass.heads);
    let offset = cache.as_ref().map_or(0, |c| c.len());
    if let Some(c) = cache.as_deref_mut() {
        c.host_prepare(b)
            .map_err(|reason| ModelError::BadInput { reason })?;
    }
    let mut x = embed_rows(m, ids, h)?;
    // Rows of the table are the positions offset..offset + t of this pass.
    let (cos, sin) = m.rope.host_table(offset, t);
    let pos = |i: usize| i % t;
    for (l, blk) in m.blocks.iter().enumerate() {
        pass.project_qkv(blk, &x, matmul_many)?;
        rope(&mut pass.q, h, heads.dim, pos, &cos, &sin, m.rope.layout);
        rope(&mut pass.k, kvw, heads.dim, pos, &cos, &sin, m.rope.layout);
        let (q, att) = (&pass.q, &mut pass.att);
        let kv = LayerKv {
            k: &pass.k,
            v: &pass.v,
            t,
        };
        match cache.as_deref_mut() {
            Some(c) => attend_cached(q, kv, &mut c.host[l], offset, heads, att),
            None => {
                let keys: Vec<&[f32]> = kv.k.chunks_exact(t * kvw).collect();
                let vals: Vec<&[f32]> = kv.v.chunks_exact(t * kvw).collect();
                attend(q, &keys, &vals, t, 0, heads, att);
            }
        }
        pass.finish_layer(blk, &mut x, matmul_many)?;
    }
    if let Some(c) = cache {
        c.advance(t);
    }
    logits_of_rows(m, &x, (b, t, h), first)
}

/// Each id's embedding row: `(ids.len(), h)`.
pub(super) fn embed_rows(m: &Llama, ids: &[u32], h: usize) -> Result<Vec<f32>> {
    let embed = Held::new(&m.embed)?;
    let mut x = vec![0f32; ids.len() * h];
    for (dst, &id) in x.chunks_exact_mut(h).zip(ids) {
        dst.copy_from_slice(&embed.get()[id as usize * h..(id as usize + 1) * h]);
    }
    Ok(x)
}

/// One layer's new keys and values, `t` rows per batch row.
#[derive(Clone, Copy)]
struct LayerKv<'a> {
    k: &'a [f32],
    v: &'a [f32],
    t: usize,
}

/// Appends the layer's new keys and values to each batch row's cache slot and attends
/// over everything cached (positions from `offset`).
fn attend_cached(
    q: &[f32],
    new: LayerKv<'_>,
    slots: &mut [HostKv],
    offset: usize,
    heads: Heads,
    att: &mut [f32],
) {
    let (t, kvw) = (new.t, heads.kv * heads.dim);
    for (bi, slot) in slots.iter_mut().enumerate() {
        slot.k
            .extend_from_slice(&new.k[bi * t * kvw..(bi + 1) * t * kvw]);
        slot.v
            .extend_from_slice(&new.v[bi * t * kvw..(bi + 1) * t * kvw]);
    }
    let keys: Vec<&[f32]> = slots.iter().map(|s| s.k.as_slice()).collect();
    let vals: Vec<&[f32]> = slots.iter().map(|s| s.v.as_slice()).collect();
    attend(q, &keys, &vals, t, offset, heads, att);
}

/// Logits of the rows `first..t` of each batch row of the hidden states `x` (`(b, t, h)`):
/// final norm, then the LM head.
fn logits_of_rows(
    m: &Llama,
    x: &[f32],
    (b, t, h): (usize, usize, usize),
    first: usize,
) -> Result<Vec<f32>> {
    let keep = t - first;
    let mut last = Vec::with_capacity(b * keep * h);
    for bi in 0..b {
        last.extend_from_slice(&x[(bi * t + first) * h..(bi + 1) * t * h]);
    }
    let mut normed = vec![0f32; last.len()];
    rms_norm(&last, &m.norm, &mut normed)?;
    let head = HeldMat::new(&m.lm_head)?;
    let mut logits = vec![0f32; b * keep * head.rows];
    matmul(&normed, head.mat(), &mut logits, false);
    Ok(logits)
}

/// `y = x / sqrt(mean(x²) + eps) · w` per row, in candle's `rms_norm` order.
fn rms_norm(x: &[f32], norm: &RmsNorm, y: &mut [f32]) -> Result<()> {
    let w = Held::new(&norm.weight)?;
    let w = w.get();
    let n = w.len();
    let eps = norm.eps as f32;
    let row = |(src, dst): (&[f32], &mut [f32])| {
        let sum2: f32 = src.iter().map(|v| v * v).sum();
        let scale = (sum2 / n as f32 + eps).sqrt();
        for ((d, s), a) in dst.iter_mut().zip(src).zip(w) {
            *d = *s / scale * *a;
        }
    };
    if x.len() / n > PARALLEL_MIN_ROWS {
        x.par_chunks(n).zip(y.par_chunks_mut(n)).for_each(row);
    } else {
        x.chunks(n).zip(y.chunks_mut(n)).for_each(row);
    }
    Ok(())
}

/// `g = silu(g) · u`, SwiGLU's gate (`silu(a) = a / (1 + exp(−a))`, as candle computes it).
fn silu_mul(g: &mut [f32], u: &[f32], width: usize) {
    let row = |e: &mut Vec<f32>, (gr, ur): (&mut [f32], &[f32])| {
        e.clear();
        e.extend(gr.iter().map(|a| -a));
        exp_in_place(e);
        for ((a, b), e) in gr.iter_mut().zip(ur).zip(e.iter()) {
            *a = *a / (1.0 + e) * *b;
        }
    };
    if g.len() / width > PARALLEL_MIN_ROWS {
        g.par_chunks_mut(width)
            .zip(u.par_chunks(width))
            .for_each_init(Vec::new, row);
    } else {
        let mut e = Vec::new();
        g.chunks_mut(width)
            .zip(u.chunks(width))
            .for_each(|p| row(&mut e, p));
    }
}
