//! [`KvCache`]: keys and values of past positions, for incremental decoding.

use candle_core::Tensor;

use super::config::LlamaConfig;

/// Per-layer keys and values (after RoPE, before the GQA repeat) of every position fed so
/// far. A cache belongs to one batch and one model: feed it the same batch size every call.
///
/// Two layouts, one per runtime path: the CPU engine keeps growable host buffers that a
/// new token appends one row to (no copy of the past); candle's path keeps tensors.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Candle path: `(keys, values)` per layer, each `(batch, kv_heads, len, head_dim)`.
    pub(crate) layers: Vec<Option<(Tensor, Tensor)>>,
    /// Engine path: per layer, per batch row, `(len, kv_heads·head_dim)` row-major.
    pub(crate) host: Vec<Vec<HostKv>>,
    len: usize,
}

/// One batch row's keys and values in one layer, positions as rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostKv {
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
}

impl KvCache {
    /// An empty cache for a model with `cfg`'s layer count.
    pub fn new(cfg: &LlamaConfig) -> Self {
        Self {
            layers: vec![None; cfg.num_hidden_layers],
            host: Vec::new(),
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
        self.host.clear();
        self.len = 0;
    }

    /// Batch size of the cached tensors, if any.
    pub(crate) fn batch(&self) -> Option<usize> {
        if let Some(first) = self.host.first() {
            return Some(first.len());
        }
        self.layers
            .iter()
            .flatten()
            .next()
            .and_then(|(k, _)| k.dims().first().copied())
    }

    /// Makes the engine's buffers ready for `batch` rows; refuses a cache that candle's
    /// path filled (the layouts differ).
    pub(crate) fn host_prepare(&mut self, batch: usize) -> Result<(), String> {
        if self.layers.iter().any(Option::is_some) {
            return Err("this KV cache was filled by another runtime path".into());
        }
        if self.host.is_empty() {
            self.host = vec![vec![HostKv::default(); batch]; self.layers.len()];
        }
        Ok(())
    }

    /// Whether the engine's buffers hold positions (candle's path must not extend them).
    pub(crate) fn has_host(&self) -> bool {
        !self.host.is_empty()
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
