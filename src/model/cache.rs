//! [`KvCache`]: keys and values of past positions, for incremental decoding.

use candle_core::Tensor;

use super::config::LlamaConfig;

/// Per-layer keys and values (after RoPE, before the GQA repeat) of every position fed so
/// far. A cache belongs to one batch: feed it the same batch size every call.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// `(keys, values)` per layer, each `(batch, kv_heads, len, head_dim)`.
    pub(crate) layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for a model with `cfg`'s layer count.
    pub fn new(cfg: &LlamaConfig) -> Self {
        Self {
            layers: vec![None; cfg.num_hidden_layers],
            len: 0,
        }
    }

    /// Positions cached so far (the RoPE offset of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position, keeping the layer count.
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }

    /// Batch size of the cached tensors, if any.
    pub(crate) fn batch(&self) -> Option<usize> {
        self.layers
            .iter()
            .flatten()
            .next()
            .and_then(|(k, _)| k.dims().first().copied())
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
