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

use super::attention::{Attention, Mlp, Projections};
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
    /// The type float matrix products run in (autocast, see [`Llama::set_autocast`]);
    /// `None`: `dtype`.
    pub autocast: Option<DType>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            matmul: MatmulPath::F32,
            device: Device::Cpu,
            dtype: DType::F32,
            autocast: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) input_norm: RmsNorm,
    pub(super) attn: Attention,
    pub(super) post_norm: RmsNorm,
    pub(super) mlp: Mlp,
}

/// A Llama-family decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention).
#[derive(Debug, Clone)]
pub struct Llama {
    pub(super) config: LlamaConfig,
    pub(super) embed: Tensor,
    pub(super) blocks: Vec<Block>,
    pub(super) norm: RmsNorm,
    pub(super) lm_head: Linear,
    pub(super) rope: Rope,
    device: Device,
    dtype: DType,
    /// Whether [`Llama::forward`] runs on the CPU engine (f32 path on the CPU).
    pub(super) engine: bool,
    /// The type the differentiable path's matrix products run in (bf16 autocast for
    /// training); `None`: the model's own. The inference paths never cast.
    autocast: Option<DType>,
}

/// Which implementation computes a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// The CPU engine where the model supports it, else candle's fused ops.
    Fast,
    /// candle's fused ops (the reference the engine is tested against).
    #[cfg_attr(not(test), allow(dead_code))]
    Candle,
    /// candle's basic ops, differentiable.
    Differentiable,
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
            match (embed_w, opts.matmul) {
                // Reuse the very tensor so that gradients from both uses meet.
                (Weight::Float(_), _) => Linear::Float(embed.clone(), None),
                // The dequantized embedding is the output matrix already.
                (Weight::Quant(_), MatmulPath::F32) => {
                    match Linear::load(embed_w, opts.matmul, dev, dtype)? {
                        Linear::Float(_, blocks) => Linear::Float(embed.clone(), blocks),
                        other => other,
                    }
                }
                (Weight::Quant(_), MatmulPath::Quantized) => {
                    Linear::load(embed_w, opts.matmul, dev, dtype)?
                }
            }
        } else {
            Linear::load(weights.get("lm_head.weight")?, opts.matmul, dev, dtype)?
        };
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let part = |name: &str| Projections {
                w: weights,
                prefix: format!("{p}.{name}"),
                path: opts.matmul,
                dev,
                dtype,
            };
            blocks.push(Block {
                input_norm: RmsNorm::load(
                    weights.get(&format!("{p}.input_layernorm.weight"))?,
                    eps,
                    dev,
                    dtype,
                )?,
                attn: Attention::load(&part("self_attn"))?,
                post_norm: RmsNorm::load(
                    weights.get(&format!("{p}.post_attention_layernorm.weight"))?,
                    eps,
                    dev,
                    dtype,
                )?,
                mlp: Mlp::load(&part("mlp"))?,
            });
        }
        let mut model = Self {
            config: cfg.clone(),
            embed,
            blocks,
            norm: RmsNorm::load(weights.get("model.norm.weight")?, eps, dev, dtype)?,
            lm_head,
            rope: Rope::new(cfg.head_dim(), cfg.rope_theta, weights.rope, dev, dtype),
            device: dev.clone(),
            dtype,
            engine: false,
            autocast: opts.autocast,
        };
        model.engine = super::engine::supports(&model);
        Ok(model)
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

    /// Runs the float matrix products of every forward pass (inference and differentiable)
    /// in `cast` (autocast; see `layers::matmul_as`: operands rounded to `cast`, the result
    /// back in the model's type), or in the model's own type with `None`. Weights, norms,
    /// softmax, the residual stream and the logits keep the model's type; a quantized
    /// matmul is not cast. With a cast the CPU engine (f32 only) is not used.
    pub fn set_autocast(&mut self, cast: Option<DType>) {
        self.autocast = cast;
    }

    /// The matmul type of the forward passes, if it is not the model's own.
    pub fn autocast(&self) -> Option<DType> {
        self.autocast
    }

    /// Logits `(batch, seq, vocab)` for every position of `tokens` (`(batch, seq)` ids), in
    /// f32 (f64 for a model loaded as f64). With a cache, the tokens continue the cached
    /// positions and are appended.
    pub fn forward(&self, tokens: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        self.run(tokens, cache, 0, Runtime::Fast)
    }

    /// Logits `(batch, seq − first, vocab)` of the positions `first..seq` only, as
    /// [`Llama::forward`] computes them; the output projection (a fifth of SmolLM2's
    /// arithmetic) is skipped for the other rows. Every position still enters the cache.
    pub fn forward_from(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        first: usize,
    ) -> Result<Tensor> {
        self.run(tokens, cache, first, Runtime::Fast)
    }

    /// One decoding step of several sequences, each continuing its own cache (filled by
    /// [`Llama::forward`] on one sequence): row `r` of the result is the logits after
    /// `ids[r]`, bit for bit what `forward` gives that sequence alone. On the CPU engine
    /// the rows share one pass (batched decoding); elsewhere each row runs alone.
    pub fn forward_step(&self, ids: &[u32], caches: &mut [&mut KvCache]) -> Result<Vec<Vec<f32>>> {
        if ids.len() != caches.len() {
            return Err(ModelError::BadInput {
                reason: format!("{} ids for {} caches", ids.len(), caches.len()),
            });
        }
        let vocab = self.config.vocab_size;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::TokenOutOfRange { id, vocab });
        }
        if let Some(c) = caches
            .iter()
            .find(|c| c.len() + 1 > self.config.max_position_embeddings)
        {
            return Err(ModelError::ContextOverflow {
                needed: c.len() + 1,
                max: self.config.max_position_embeddings,
            });
        }
        let engine_filled = caches.iter().all(|c| c.has_host() && c.batch() == Some(1));
        if self.engine && self.autocast.is_none() && engine_filled && !ids.is_empty() {
            let flat = super::engine::forward_step(self, ids, caches)?;
            return Ok(flat.chunks_exact(vocab).map(<[f32]>::to_vec).collect());
        }
        ids.iter()
            .zip(caches.iter_mut())
            .map(|(&id, c)| {
                let input = Tensor::new(&[id], &self.device)?.unsqueeze(0)?;
                Ok(self
                    .forward(&input, Some(&mut **c))?
                    .squeeze(0)?
                    .squeeze(0)?
                    .to_vec1::<f32>()?)
            })
            .collect()
    }

    /// Same logits as [`Llama::forward`] without a cache, computed from basic ops only so
    /// that `loss.backward()` reaches every parameter (slower).
    pub fn forward_train(&self, tokens: &Tensor) -> Result<Tensor> {
        self.run(tokens, None, 0, Runtime::Differentiable)
    }

    /// The final-norm hidden states `(batch, seq, hidden)` through the differentiable path,
    /// and the output projection's weight `(vocab, hidden)` (the embedding itself when
    /// tied): what a loss that fuses the output projection needs, so that the
    /// `(batch · seq, vocab)` logits never become a node of the autograd graph.
    pub fn forward_train_hidden(&self, tokens: &Tensor) -> Result<(Tensor, Tensor)> {
        let w = self
            .lm_head
            .float_weight()
            .ok_or_else(|| ModelError::Unsupported {
                what: "training through a quantized output projection".into(),
            })?;
        match self.pass(tokens, None, 0, Runtime::Differentiable, false)? {
            Pass::Hidden(x) => Ok((x, w.clone())),
            Pass::Logits(_) => unreachable!("the differentiable path never runs on the engine"),
        }
    }

    /// How [`Llama::forward`] computes, in words, for reports.
    pub fn numerical_path(&self) -> String {
        let threads = rayon::current_num_threads();
        if let Some(cast) = self.autocast {
            return format!(
                "candle {} matmul under {} autocast (operands rounded, f32 accumulation where the backend does it; norms, softmax and residuals {}) on {:?}; {threads} threads",
                self.dtype.as_str(),
                cast.as_str(),
                self.dtype.as_str(),
                self.device
            );
        }
        if self.engine {
            let blocks = self
                .blocks
                .first()
                .is_some_and(|b| matches!(&b.mlp.up, Linear::Float(_, Some(_))));
            let rows = super::engine::QUANT_MAX_ROWS;
            let how = if blocks {
                format!("gemm above {rows} rows, Q4/Q8-block matvec up to {rows}")
            } else {
                "gemm".into()
            };
            format!("groundtruth f32 CPU engine: weights dequantized exactly, f32 activations ({how}); {threads} threads")
        } else {
            let mm = match &self.lm_head {
                Linear::Quant(_) => {
                    "candle quantized matmul (activations rounded to q8)".to_string()
                }
                Linear::Float(..) => format!("candle {} matmul", self.dtype.as_str()),
            };
            format!("{mm} on {:?}; {threads} threads", self.device)
        }
    }

    /// The forward pass on a chosen runtime (tests compare them).
    pub(crate) fn run(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        first: usize,
        runtime: Runtime,
    ) -> Result<Tensor> {
        match self.pass(tokens, cache, first, runtime, true)? {
            Pass::Logits(l) => Ok(l),
            Pass::Hidden(_) => unreachable!("logits were asked for"),
        }
    }

    /// The tokens of a pass, refused unless they are a non-empty (batch, seq) of ids in the
    /// vocabulary that fit the context after what `cache` holds, with `first` a row of them.
    fn input(&self, tokens: &Tensor, cache: Option<&KvCache>, first: usize) -> Result<Input> {
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
        let id_list = ids.flatten_all()?.to_vec1::<u32>()?;
        if let Some(&id) = id_list.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::TokenOutOfRange { id, vocab });
        }
        let offset = cache.map_or(0, |c| c.len());
        if let Some(cb) = cache.and_then(|c| c.batch()) {
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
        if first >= t {
            return Err(ModelError::BadInput {
                reason: format!("first logit row {first} is past the sequence length {t}"),
            });
        }
        Ok(Input {
            b,
            t,
            ids,
            id_list,
            offset,
        })
    }

    /// Logits of rows `first..` (or, without `logits`, their final-norm hidden states).
    fn pass(
        &self,
        tokens: &Tensor,
        mut cache: Option<&mut KvCache>,
        first: usize,
        runtime: Runtime,
        logits: bool,
    ) -> Result<Pass> {
        let Input {
            b,
            t,
            ids,
            id_list,
            offset,
        } = self.input(tokens, cache.as_deref(), first)?;
        // Autocast applies to every path: an evaluation in bf16 is the arithmetic a bf16
        // training step's forward pass does. The CPU engine is f32-only, so it stands aside.
        let cast = self.autocast;
        let mode = match runtime {
            Runtime::Fast if self.engine && cast.is_none() && logits => {
                let logits = super::engine::forward(self, &id_list, b, t, cache, first)?;
                return Ok(Pass::Logits(Tensor::from_vec(
                    logits,
                    (b, t - first, self.config.vocab_size),
                    &self.device,
                )?));
            }
            Runtime::Fast | Runtime::Candle => Mode::Fast,
            Runtime::Differentiable => Mode::Differentiable,
        };
        if cache.as_ref().is_some_and(|c| c.has_host()) {
            return Err(ModelError::BadInput {
                reason: "this KV cache was filled by the CPU engine, not candle's path".into(),
            });
        }
        // One position attends to everything cached: no mask.
        let mask = (t > 1)
            .then(|| -> Result<Tensor> {
                let m = causal_mask(t, offset, &self.device, self.dtype)?;
                Ok(m.unsqueeze(0)?.unsqueeze(0)?)
            })
            .transpose()?;
        let h = self.config.hidden_size;
        let rope = self.rope.table(offset, t)?;
        let mut x = self
            .embed
            .index_select(&ids.flatten_all()?, 0)
            .ctx("embed tokens")?
            .reshape((b, t, h))?;
        for (l, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c.layers[l]);
            let a = block.attn.forward(
                &block.input_norm.forward(&x, mode)?,
                &rope,
                mask.as_ref(),
                slot,
                mode,
                cast,
            )?;
            x = (x + a)?;
            let m = block
                .mlp
                .forward(&block.post_norm.forward(&x, mode)?, cast)?;
            x = (x + m)?;
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        let x = self.norm.forward(&x.narrow(1, first, t - first)?, mode)?;
        if !logits {
            return Ok(Pass::Hidden(x));
        }
        Ok(Pass::Logits(
            self.lm_head
                .forward(&x, cast)?
                .to_dtype(self.dtype)
                .ctx("logits")?,
        ))
    }
}

/// A pass's checked input: batch and sequence length, the ids on the model's device and
/// on the host, and the position the sequence starts at.
struct Input {
    b: usize,
    t: usize,
    ids: Tensor,
    id_list: Vec<u32>,
    offset: usize,
}

/// What [`Llama::pass`] computed.
enum Pass {
    Logits(Tensor),
    Hidden(Tensor),
}
