//! [`Llama`]: the one model implementation every subject runs on, returning logits for
//! every position.
//!
//! Traps documented where they live:
//! - RoPE layout: see [`super::rope_layout`]; loaders hand us HF (`Neox`) order.
//! - Tied embeddings: with `tie_word_embeddings` the output projection *is*
//!   `model.embed_tokens.weight` (same tensor, so training updates both uses).
//! - BOS: the model never prepends a BOS token; callers pass exactly the ids they mean
//!   (the oracle format records `add_bos`).
//! - Unlike candle-transformers' `quantized_llama`, which returns only the last
//!   position, [`Llama::forward`] returns `(batch, seq, vocab)`: teacher-forced drift
//!   claims need every position.

use candle_core::{DType, Device, Tensor};

use super::attention::{Attention, Mlp};
use super::cache::KvCache;
use super::config::LlamaConfig;
use super::error::{CandleContext, ModelError, Result};
use super::layers::{causal_mask, Linear, MatmulPath, Mode, RmsNorm, Rope};
use super::weights::{Weight, Weights};

/// How [`Llama::load`] places and multiplies the weights.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// f32 (dequantize at load) or candle's quantized matmul.
    pub matmul: MatmulPath,
    /// Where the tensors live.
    pub device: Device,
    /// Float type of weights, activations and logits: f32, or f64 for gradient checks
    /// against finite differences (the quantized matmul path always yields f32).
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            matmul: MatmulPath::F32,
            device: Device::Cpu,
            dtype: DType::F32,
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

/// A Llama-family decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention).
#[derive(Debug, Clone)]
pub struct Llama {
    config: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    device: Device,
    dtype: DType,
}

impl Llama {
    /// Builds the model from `weights` (checked for completeness first). Weight names
    /// appear only here.
    pub fn load(weights: &Weights, opts: &LoadOptions) -> Result<Self> {
        weights.check_complete()?;
        let cfg = &weights.config;
        let dev = &opts.device;
        let dtype = opts.dtype;
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(ModelError::Unsupported {
                what: format!("load dtype {} (f32 or f64)", dtype.as_str()),
            });
        }
        let eps = cfg.rms_norm_eps;
        let embed_w = weights.get("model.embed_tokens.weight")?;
        // Lookups need plain rows, so the embedding is float even on the quantized path
        // (candle's quantized_llama does the same).
        let embed = embed_w.to_tensor(dev, dtype)?;
        let lm_head = if cfg.tie_word_embeddings {
            match embed_w {
                // Reuse the very tensor so that gradients from both uses meet.
                Weight::Float(_) => Linear::Float(embed.clone()),
                Weight::Quant(_) => Linear::load(embed_w, opts.matmul, dev, dtype)?,
            }
        } else {
            Linear::load(weights.get("lm_head.weight")?, opts.matmul, dev, dtype)?
        };
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{l}");
            blocks.push(Block {
                input_norm: RmsNorm::load(
                    weights.get(&format!("{p}.input_layernorm.weight"))?,
                    eps,
                    dev,
                    dtype,
                )?,
                attn: Attention::load(weights, &format!("{p}.self_attn"), opts.matmul, dev, dtype)?,
                post_norm: RmsNorm::load(
                    weights.get(&format!("{p}.post_attention_layernorm.weight"))?,
                    eps,
                    dev,
                    dtype,
                )?,
                mlp: Mlp::load(weights, &format!("{p}.mlp"), opts.matmul, dev, dtype)?,
            });
        }
        Ok(Self {
            config: cfg.clone(),
            embed,
            blocks,
            norm: RmsNorm::load(weights.get("model.norm.weight")?, eps, dev, dtype)?,
            lm_head,
            rope: Rope::new(
                cfg.head_dim(),
                cfg.rope_theta,
                cfg.max_position_embeddings,
                weights.rope,
                dev,
                dtype,
            )?,
            device: dev.clone(),
            dtype,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The float type of weights and logits (see [`LoadOptions::dtype`]).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Logits `(batch, seq, vocab)` for every position of `tokens` (`(batch, seq)` ids), in
    /// f32 (f64 for a model loaded as f64). With a cache, the tokens continue the cached
    /// positions and are appended.
    pub fn forward(&self, tokens: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let x = self.hidden(tokens, cache, Mode::Fast)?;
        self.logits(&x)
    }

    /// Same logits as [`Llama::forward`] without a cache, computed from basic ops only so
    /// that `loss.backward()` reaches every parameter (slower).
    pub fn forward_train(&self, tokens: &Tensor) -> Result<Tensor> {
        let x = self.hidden(tokens, None, Mode::Differentiable)?;
        self.logits(&x)
    }

    /// The final-norm hidden states `(batch, seq, hidden)` through the differentiable path,
    /// and the output projection's weight `(vocab, hidden)` (the embedding itself when
    /// tied): what a loss that fuses the output projection needs, so that the
    /// `(batch · seq, vocab)` logits never become a node of the autograd graph.
    pub fn forward_train_hidden(&self, tokens: &Tensor) -> Result<(Tensor, Tensor)> {
        let w = self.lm_head.float_weight().ok_or_else(|| ModelError::Unsupported {
            what: "training through a quantized output projection".into(),
        })?;
        Ok((self.hidden(tokens, None, Mode::Differentiable)?, w.clone()))
    }

    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(x)?.to_dtype(self.dtype).ctx("logits")
    }

    fn hidden(&self, tokens: &Tensor, mut cache: Option<&mut KvCache>, mode: Mode) -> Result<Tensor> {
        let (b, t) = tokens.dims2().map_err(|_| ModelError::BadInput {
            reason: format!("tokens must be (batch, seq), got {:?}", tokens.dims()),
        })?;
        if t == 0 {
            return Err(ModelError::BadInput {
                reason: "empty sequence".into(),
            });
        }
        let ids = tokens.to_dtype(DType::U32)?.to_device(&self.device)?;
        let vocab = self.config.vocab_size;
        if let Some(&id) = ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .iter()
            .find(|&&id| id as usize >= vocab)
        {
            return Err(ModelError::TokenOutOfRange { id, vocab });
        }
        let offset = cache.as_ref().map_or(0, |c| c.len());
        if let Some(cb) = cache.as_ref().and_then(|c| c.batch()) {
            if cb != b {
                return Err(ModelError::BadInput {
                    reason: format!("cache holds batch {cb}, tokens have batch {b}"),
                });
            }
        }
        if offset + t > self.config.max_position_embeddings {
            return Err(ModelError::ContextOverflow {
                needed: offset + t,
                max: self.config.max_position_embeddings,
            });
        }
        let mask = if t > 1 {
            Some(
                causal_mask(t, offset, &self.device, self.dtype)?
                    .unsqueeze(0)?
                    .unsqueeze(0)?,
            )
        } else {
            None
        };
        let h = self.config.hidden_size;
        let mut x = self
            .embed
            .index_select(&ids.flatten_all()?, 0)
            .ctx("embed tokens")?
            .reshape((b, t, h))?;
        for (l, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c.layers[l]);
            let a = block.attn.forward(
                &block.input_norm.forward(&x, mode)?,
                &self.rope,
                offset,
                mask.as_ref(),
                slot,
                mode,
            )?;
            x = (x + a)?;
            let m = block.mlp.forward(&block.post_norm.forward(&x, mode)?)?;
            x = (x + m)?;
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        self.norm.forward(&x, mode)
    }
}
