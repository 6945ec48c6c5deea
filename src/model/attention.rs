//! Grouped-query causal self-attention and the SwiGLU MLP: one transformer block's parts.

use candle_core::{DType, Device, Tensor};

use super::config::LlamaConfig;
use super::error::{CandleContext, Result};
use super::layers::{matmul_as, softmax_last, Linear, MatmulPath, Mode, RopeTable};
use super::weights::Weights;

/// Where a block part's projections load from: `{prefix}.{name}.weight` of `w`, for
/// `path` on `dev` in `dtype`.
pub(crate) struct Projections<'a> {
    pub(crate) w: &'a Weights,
    pub(crate) prefix: String,
    pub(crate) path: MatmulPath,
    pub(crate) dev: &'a Device,
    pub(crate) dtype: DType,
}

impl Projections<'_> {
    fn linear(&self, name: &str) -> Result<Linear> {
        let w = self.w.get(&format!("{}.{name}.weight", self.prefix))?;
        Linear::load(w, self.path, self.dev, self.dtype)
    }
}

/// Multi-head attention whose `kv_heads` key/value heads are shared by groups of query
/// heads (query head `h` reads KV head `h / (heads / kv_heads)`, as in HF's `repeat_kv`).
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    pub(crate) fn load(src: &Projections<'_>) -> Result<Self> {
        let cfg: &LlamaConfig = &src.w.config;
        Ok(Self {
            q: src.linear("q_proj")?,
            k: src.linear("k_proj")?,
            v: src.linear("v_proj")?,
            o: src.linear("o_proj")?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `x`: `(batch, seq, hidden)` at absolute positions `offset..offset + seq`, `rope`
    /// that range's table; `mask`: `(seq, offset + seq)` or `None` when `seq == 1`;
    /// `cache`: this layer's slot; `cast`: the type matrix products run in (autocast), `None`
    /// for the model's own.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        rope: &RopeTable,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        mode: Mode,
        cast: Option<DType>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = rope.apply(&split(self.q.forward(x, cast)?, self.heads)?, mode)?;
        let mut k = rope.apply(&split(self.k.forward(x, cast)?, self.kv_heads)?, mode)?;
        let mut v = split(self.v.forward(x, cast)?, self.kv_heads)?;
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.as_ref() {
                k = Tensor::cat(&[pk, &k], 2).ctx("append keys to cache")?;
                v = Tensor::cat(&[pv, &v], 2).ctx("append values to cache")?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let k = self.repeat_kv(k)?;
        let v = self.repeat_kv(v)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (matmul_as(&q, &k.t()?, cast).ctx("attention scores")? * scale)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let probs = softmax_last(&scores, mode)?;
        let y = matmul_as(&probs, &v, cast).ctx("attention values")?;
        let y = y
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.o.forward(&y, cast)
    }

    /// `(b, kv_heads, n, d)` to `(b, heads, n, d)`, each KV head repeated for its group.
    fn repeat_kv(&self, x: Tensor) -> Result<Tensor> {
        let rep = self.heads / self.kv_heads;
        if rep == 1 {
            return Ok(x);
        }
        let (b, kv, n, d) = x.dims4()?;
        Ok(x.unsqueeze(2)?
            .broadcast_as((b, kv, rep, n, d))?
            .reshape((b, kv * rep, n, d))?)
    }
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

impl Mlp {
    pub(crate) fn load(src: &Projections<'_>) -> Result<Self> {
        Ok(Self {
            gate: src.linear("gate_proj")?,
            up: src.linear("up_proj")?,
            down: src.linear("down_proj")?,
        })
    }

    /// `cast` as in [`Attention::forward`].
    pub(crate) fn forward(&self, x: &Tensor, cast: Option<DType>) -> Result<Tensor> {
        let g = self.gate.forward(x, cast)?.silu()?;
        let u = self.up.forward(x, cast)?;
        self.down.forward(&(g * u).ctx("swiglu")?, cast)
    }
}
