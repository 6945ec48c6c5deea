//! What a pass does around attention, layer by layer: normalize, project to queries, keys
//! and values, then add the output projection and the MLP to the residual stream. The
//! prompt pass ([`super::forward`]) and the batched decoding step
//! ([`super::step::forward_step`]) share it so that a step computes each row exactly as a
//! single-stream pass does; they differ only in how rows are multiplied ([`Multiply`]) and
//! in attention.

use super::attention::Heads;
use super::linear::Mat;
use super::{rms_norm, silu_mul, HeldMat};
use crate::model::config::LlamaConfig;
use crate::model::error::Result;
use crate::model::llama::Block;

/// How a pass multiplies rows by matrices: `matmul_many` (the rows of one pass, split by
/// the matrices' size) or `matmul_rows` (one row per sequence of a decoding step).
pub(super) type Multiply = fn(&[f32], &[Mat<'_>], &mut [&mut [f32]], bool);

/// A pass's working buffers for `rows` rows and the widths they follow.
pub(super) struct Pass {
    pub(super) heads: Heads,
    /// Hidden width.
    pub(super) h: usize,
    /// Key/value width (`heads.kv · heads.dim`).
    pub(super) kvw: usize,
    inter: usize,
    xn: Vec<f32>,
    pub(super) q: Vec<f32>,
    pub(super) k: Vec<f32>,
    pub(super) v: Vec<f32>,
    /// Attention output, `(rows, h)`: attention writes it, [`Pass::finish_layer`] reads it.
    pub(super) att: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
}

impl Pass {
    pub(super) fn new(cfg: &LlamaConfig, rows: usize) -> Pass {
        let heads = Heads {
            q: cfg.num_attention_heads,
            kv: cfg.num_key_value_heads,
            dim: cfg.head_dim(),
        };
        let (h, inter) = (cfg.hidden_size, cfg.intermediate_size);
        let kvw = heads.kv * heads.dim;
        let zeros = |width: usize| vec![0f32; rows * width];
        Pass {
            heads,
            h,
            kvw,
            inter,
            xn: zeros(h),
            q: zeros(h),
            k: zeros(kvw),
            v: zeros(kvw),
            att: zeros(h),
            g: zeros(inter),
            u: zeros(inter),
        }
    }

    /// Normalizes the residual stream `x` and projects it to `q`, `k`, `v`.
    pub(super) fn project_qkv(&mut self, blk: &Block, x: &[f32], mm: Multiply) -> Result<()> {
        rms_norm(x, &blk.input_norm, &mut self.xn)?;
        let (wq, wk, wv) = (
            HeldMat::new(&blk.attn.q)?,
            HeldMat::new(&blk.attn.k)?,
            HeldMat::new(&blk.attn.v)?,
        );
        let outs: &mut [&mut [f32]] = &mut [&mut self.q, &mut self.k, &mut self.v];
        mm(&self.xn, &[wq.mat(), wk.mat(), wv.mat()], outs, false);
        Ok(())
    }

    /// Adds the projection of `att` and then the MLP of the normalized result to `x`.
    pub(super) fn finish_layer(&mut self, blk: &Block, x: &mut [f32], mm: Multiply) -> Result<()> {
        mm(
            &self.att,
            &[HeldMat::new(&blk.attn.o)?.mat()],
            &mut [&mut *x],
            true,
        );
        rms_norm(x, &blk.post_norm, &mut self.xn)?;
        let (wg, wu) = (HeldMat::new(&blk.mlp.gate)?, HeldMat::new(&blk.mlp.up)?);
        let outs: &mut [&mut [f32]] = &mut [&mut self.g, &mut self.u];
        mm(&self.xn, &[wg.mat(), wu.mat()], outs, false);
        silu_mul(&mut self.g, &self.u, self.inter);
        mm(
            &self.g,
            &[HeldMat::new(&blk.mlp.down)?.mat()],
            &mut [x],
            true,
        );
        Ok(())
    }
}
