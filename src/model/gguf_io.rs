//! GGUF files (llama.cpp's format): [`load_gguf`] and [`save_gguf`].
//!
//! Names are mapped between llama.cpp (`blk.N.attn_q.weight`) and Hugging Face
//! (`model.layers.N.self_attn.q_proj.weight`). GGUF stores Q/K rows permuted for
//! interleaved RoPE (see [`super::rope_layout`]); loading un-permutes them so the
//! returned [`Weights`] are always in HF order, and saving permutes them back.
//! Quantized tensors stay quantized ([`Weight::Quant`]); f32 tensors become
//! [`Weight::Float`].

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device};

use super::atomic::write_atomic;
use super::config::LlamaConfig;
use super::error::{io_err, ModelError, Result};
use super::rope_layout::RopeLayout;
use super::weights::{ggml_type_name, Weight, Weights};
use crate::excerpt::excerpt;

/// A GGUF metadata value as a non-negative integer, whatever its integer width (`None` for
/// a negative number or another type).
pub fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        Value::F32(_) | Value::F64(_) | Value::Bool(_) | Value::String(_) | Value::Array(_) => None,
    }
}

/// What a GGUF file says besides the tensors.
#[derive(Debug, Clone)]
pub struct GgufInfo {
    /// The file read.
    pub path: PathBuf,
    /// Every metadata key (tokenizer included), sorted.
    pub metadata: BTreeMap<String, Value>,
    /// Storage type of each tensor, by HF name.
    pub tensor_types: BTreeMap<String, GgmlDType>,
}

impl GgufInfo {
    /// The metadata in the order the file stores it (`summary` is the file's validated
    /// header; `metadata` is sorted), as an export that keeps a source's keys writes them.
    pub fn metadata_in_file_order(
        &self,
        summary: &crate::gguf_guard::GgufSummary,
    ) -> Vec<(String, Value)> {
        summary
            .metadata
            .iter()
            .filter_map(|e| {
                self.metadata
                    .get(&e.key)
                    .map(|v| (e.key.clone(), v.clone()))
            })
            .collect()
    }

    /// The storage type holding the most matrix elements (`q4_1` for a "Q4_1" file whose
    /// norms are f32), as the oracle format's `model.weights` names it.
    pub fn predominant_type(&self, weights: &Weights) -> String {
        let mut by_type: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (name, t) in &self.tensor_types {
            if let Some(w) = weights.tensors.get(name) {
                if w.shape().len() == 2 {
                    *by_type.entry(ggml_type_name(*t)).or_default() += w.elem_count();
                }
            }
        }
        by_type
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(t, _)| t.to_string())
            .unwrap_or_default()
    }
}

/// (llama.cpp suffix, HF suffix) inside a block.
const BLOCK_NAMES: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// `blk.3.attn_q.weight` to `model.layers.3.self_attn.q_proj.weight`.
pub fn gguf_to_hf(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = BLOCK_NAMES.iter().find(|(g, _)| *g == part)?.1;
    Some(format!("model.layers.{layer}.{hf}.weight"))
}

/// The llama.cpp name of an HF tensor name (`model.layers.3.self_attn.q_proj.weight` to
/// `blk.3.attn_q.weight`); the inverse of [`gguf_to_hf`].
pub fn hf_to_gguf(name: &str) -> Option<String> {
    match name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = name
        .strip_prefix("model.layers.")?
        .strip_suffix(".weight")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let g = BLOCK_NAMES.iter().find(|(_, h)| *h == part)?.0;
    Some(format!("blk.{layer}.{g}.weight"))
}

struct Meta<'a> {
    path: &'a Path,
    map: &'a BTreeMap<String, Value>,
}

impl Meta<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> ModelError {
        ModelError::Gguf {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn uint(&self, key: &str) -> Result<Option<u64>> {
        let v = match self.map.get(key) {
            None => return Ok(None),
            Some(v) => v,
        };
        value_u64(v).map(Some).ok_or_else(|| {
            self.err(
                key,
                format!(
                    "expected a non-negative integer, got {}",
                    excerpt(format!("{v:?}"))
                ),
            )
        })
    }

    fn req_usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.uint(key)?
            .map(|n| {
                usize::try_from(n).map_err(|_| self.err(key, format!("{n} does not fit in usize")))
            })
            .transpose()
    }

    /// A token id: must fit in u32 (the id type); [`LlamaConfig::validate`] checks it
    /// against the vocabulary.
    fn token_id(&self, key: &str) -> Result<Option<u32>> {
        self.uint(key)?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| self.err(key, format!("{n} is not a token id (above u32)")))
            })
            .transpose()
    }

    /// Floats are f32 in GGUF; going through their shortest decimal form turns the
    /// stored `1e-5f32` back into the f64 `1e-5` the config was written with.
    fn float(&self, key: &str) -> Result<Option<f64>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(format!("{x}").parse::<f64>().ok()),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(v) => Err(self.err(
                key,
                format!("expected a float, got {}", excerpt(format!("{v:?}"))),
            )),
        }
    }
}

/// The llama config a GGUF's metadata declares (`vocab` and `tied` come from the tensors).
fn config_from_meta(m: &Meta, vocab: usize, tied: bool) -> Result<LlamaConfig> {
    match m.map.get("general.architecture") {
        Some(Value::String(a)) if a == "llama" => {}
        Some(v) => {
            return Err(m.err(
                "general.architecture",
                format!("{} is not \"llama\"", excerpt(format!("{v:?}"))),
            ))
        }
        None => return Err(m.err("general.architecture", "missing")),
    }
    let heads = m.req_usize("llama.attention.head_count")?;
    let cfg = LlamaConfig {
        vocab_size: vocab,
        hidden_size: m.req_usize("llama.embedding_length")?,
        intermediate_size: m.req_usize("llama.feed_forward_length")?,
        num_hidden_layers: m.req_usize("llama.block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: m
            .opt_usize("llama.attention.head_count_kv")?
            .unwrap_or(heads),
        rms_norm_eps: m
            .float("llama.attention.layer_norm_rms_epsilon")?
            .unwrap_or(1e-5),
        rope_theta: m.float("llama.rope.freq_base")?.unwrap_or(10_000.0),
        max_position_embeddings: m.opt_usize("llama.context_length")?.unwrap_or(2048),
        tie_word_embeddings: tied,
        bos_token_id: m.token_id("tokenizer.ggml.bos_token_id")?,
        eos_token_id: m.token_id("tokenizer.ggml.eos_token_id")?,
    };
    cfg.validate()
        .map_err(|e| m.err("llama.*", e.to_string()))?;
    // The vocabulary is the embedding's row count; a declared size that contradicts it is
    // refused. (A token list of another length is what the `structure` claims measure, so
    // such a file still loads for them; commands that tokenize refuse a tokenizer whose
    // ids the embedding lacks, see `tokenizer::check_fits`.)
    if let Some(n) = m.opt_usize("llama.vocab_size")?.filter(|&n| n != vocab) {
        return Err(m.err(
            "llama.vocab_size",
            format!("{n} is not token_embd.weight's {vocab} rows"),
        ));
    }
    if let Some(rd) = m.uint("llama.rope.dimension_count")? {
        if rd as usize != cfg.head_dim() {
            return Err(m.err(
                "llama.rope.dimension_count",
                format!("partial RoPE ({rd} of {}) is unsupported", cfg.head_dim()),
            ));
        }
    }
    if m.map.contains_key("llama.rope.scaling.type") {
        return Err(m.err("llama.rope.scaling.type", "RoPE scaling is unsupported"));
    }
    Ok(cfg)
}

/// Reads a llama-architecture GGUF file into HF-named, HF-ordered [`Weights`].
/// Embeddings are tied when `output.weight` is absent; the vocabulary size is the row
/// count of `token_embd.weight`. Errors name the file and the key or tensor.
pub fn load_gguf(path: &Path) -> Result<(Weights, GgufInfo)> {
    let gerr = |key: &str, reason: String| ModelError::Gguf {
        path: path.to_path_buf(),
        key: key.into(),
        reason,
    };
    // candle trusts the header's counts and lengths; the bounded check goes first.
    crate::gguf_guard::validate_gguf(path).map_err(|e| gerr("header", e.to_string()))?;
    let mut file = std::fs::File::open(path).map_err(io_err("open", path))?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| gerr("header", e.to_string()))?;
    let metadata: BTreeMap<String, Value> = content.metadata.clone().into_iter().collect();
    let meta = Meta {
        path,
        map: &metadata,
    };
    let embd = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| gerr("token_embd.weight", "missing tensor".into()))?;
    let vocab = embd.shape.dims().first().copied().unwrap_or(0);
    let tied = !content.tensor_infos.contains_key("output.weight");
    let config = config_from_meta(&meta, vocab, tied)?;

    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = BTreeMap::new();
    let mut tensor_types = BTreeMap::new();
    for gname in names {
        let hf = gguf_to_hf(gname)
            .ok_or_else(|| gerr(gname, "tensor has no Llama counterpart".into()))?;
        let qt = content
            .tensor(&mut file, gname, &Device::Cpu)
            .map_err(|e| gerr(gname, e.to_string()))?;
        tensor_types.insert(hf.clone(), qt.dtype());
        let w = if qt.dtype() == GgmlDType::F32 {
            Weight::Float(
                qt.dequantize(&Device::Cpu)
                    .map_err(|e| gerr(gname, e.to_string()))?,
            )
        } else {
            Weight::Quant(Arc::new(qt))
        };
        tensors.insert(hf, w);
    }
    let stored = Weights {
        config,
        tensors,
        rope: RopeLayout::Interleaved,
    };
    let in_file = |e: ModelError| gerr("tensors", e.to_string());
    stored.check_complete().map_err(in_file)?;
    let weights = stored.to_layout(RopeLayout::Neox).map_err(in_file)?;
    Ok((
        weights,
        GgufInfo {
            path: path.to_path_buf(),
            metadata,
            tensor_types,
        },
    ))
}

/// Keys `save_gguf` derives from the config; `extra_metadata` may not set them.
fn structural_metadata(cfg: &LlamaConfig) -> Vec<(String, Value)> {
    let u = |n: usize| Value::U32(n as u32);
    let mut m = vec![
        (
            "general.architecture".to_string(),
            Value::String("llama".into()),
        ),
        ("llama.vocab_size".into(), u(cfg.vocab_size)),
        (
            "llama.context_length".into(),
            u(cfg.max_position_embeddings),
        ),
        ("llama.embedding_length".into(), u(cfg.hidden_size)),
        ("llama.block_count".into(), u(cfg.num_hidden_layers)),
        ("llama.feed_forward_length".into(), u(cfg.intermediate_size)),
        (
            "llama.attention.head_count".into(),
            u(cfg.num_attention_heads),
        ),
        (
            "llama.attention.head_count_kv".into(),
            u(cfg.num_key_value_heads),
        ),
        ("llama.rope.dimension_count".into(), u(cfg.head_dim())),
        (
            "llama.rope.freq_base".into(),
            Value::F32(cfg.rope_theta as f32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(cfg.rms_norm_eps as f32),
        ),
    ];
    if let Some(b) = cfg.bos_token_id {
        m.push(("tokenizer.ggml.bos_token_id".into(), Value::U32(b)));
    }
    if let Some(e) = cfg.eos_token_id {
        m.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(e)));
    }
    m
}

/// Writes `weights` as a llama GGUF (version 2) at `path`, atomically: llama metadata
/// from the config, then `extra_metadata` (tokenizer, provenance) in the given order;
/// tensors under llama.cpp names with Q/K rows permuted for interleaved RoPE. Quantized
/// tensors are written as they are, float ones in their own dtype (f32/f16/bf16).
///
/// `extra_metadata` may repeat a config-derived key (so a loaded file's
/// [`GgufInfo::metadata`] can be passed back whole) only with the same value.
pub fn save_gguf(path: &Path, weights: &Weights, extra_metadata: &[(String, Value)]) -> Result<()> {
    save_gguf_in_order(path, weights, extra_metadata, None)
}

/// The config's structural metadata plus `extra` (a source file's keys), refusing an extra
/// key that contradicts the config, is given twice, or changes the alignment candle writes.
fn merged_metadata(
    config: &LlamaConfig,
    extra_metadata: &[(String, Value)],
) -> Result<Vec<(String, Value)>> {
    let mut metadata = structural_metadata(config);
    for (k, v) in extra_metadata {
        if let Some((_, ours)) = metadata.iter().find(|(s, _)| s == k) {
            // Value has no PartialEq; Debug output is exact for every variant.
            if format!("{ours:?}") == format!("{v:?}") {
                continue;
            }
            return Err(ModelError::BadInput {
                reason: format!(
                    "extra GGUF metadata `{k}` = {v:?} contradicts the config ({ours:?})"
                ),
            });
        }
        if k == "general.alignment" && !matches!(v, Value::U32(32)) {
            // candle's writer always pads to 32 bytes; another value would misplace data.
            return Err(ModelError::Unsupported {
                what: "GGUF key `general.alignment`".into(),
            });
        }
        if extra_metadata.iter().filter(|(s, _)| s == k).count() > 1 {
            return Err(ModelError::BadInput {
                reason: format!("extra GGUF metadata `{k}` is given twice"),
            });
        }
        metadata.push((k.clone(), v.clone()));
    }
    Ok(metadata)
}

/// The Hugging Face names of the tensors in file order: the canonical one, or `file_order`
/// (llama.cpp names) when it names exactly the config's tensors.
fn tensor_order(config: &LlamaConfig, file_order: Option<&[String]>) -> Result<Vec<String>> {
    let mut order = vec![
        "model.embed_tokens.weight".to_string(),
        "model.norm.weight".to_string(),
    ];
    if !config.tie_word_embeddings {
        order.push("lm_head.weight".into());
    }
    for l in 0..config.num_hidden_layers {
        order.extend(
            BLOCK_NAMES
                .iter()
                .map(|(_, h)| format!("model.layers.{l}.{h}.weight")),
        );
    }
    if let Some(given) = file_order {
        let mut want: Vec<String> = order.iter().filter_map(|h| hf_to_gguf(h)).collect();
        let mut got = given.to_vec();
        want.sort();
        got.sort();
        if want != got {
            return Err(ModelError::BadInput {
                reason: format!(
                    "a tensor order of {} names is not a permutation of the config's {} tensors",
                    given.len(),
                    want.len()
                ),
            });
        }
        order = given.iter().filter_map(|g| gguf_to_hf(g)).collect();
    }
    Ok(order)
}

/// Each tensor of `order` under its GGUF name as the QTensor the writer takes: quantized
/// ones as stored, float ones in their own type (f16, bf16) or else f32.
fn stored_tensors(w: &Weights, order: &[String]) -> Result<Vec<(String, Arc<QTensor>)>> {
    let mut qtensors: Vec<(String, Arc<QTensor>)> = Vec::with_capacity(order.len());
    for hf in order {
        let gname =
            hf_to_gguf(hf).ok_or_else(|| ModelError::UnexpectedTensor { name: hf.clone() })?;
        let q = match w.get(hf)? {
            Weight::Quant(q) => q.clone(),
            Weight::Float(t) => {
                let ty = match t.dtype() {
                    DType::F16 => GgmlDType::F16,
                    DType::BF16 => GgmlDType::BF16,
                    _ => GgmlDType::F32,
                };
                let t = if ty == GgmlDType::F32 {
                    t.to_dtype(DType::F32)?
                } else {
                    t.clone()
                };
                let bytes = Weight::Float(t).raw_bytes()?;
                Arc::new(qtensor_from_ggml(
                    ty,
                    &bytes,
                    w.get(hf)?.shape(),
                    &Device::Cpu,
                )?)
            }
        };
        qtensors.push((gname, q));
    }
    Ok(qtensors)
}

/// [`save_gguf`] with the tensors in `order` (llama.cpp names, e.g. a source file's order,
/// as `llama-quantize` keeps it) instead of the canonical one; `order` must name exactly
/// the config's tensors.
pub fn save_gguf_in_order(
    path: &Path,
    weights: &Weights,
    extra_metadata: &[(String, Value)],
    file_order: Option<&[String]>,
) -> Result<()> {
    let w = weights.to_layout(RopeLayout::Interleaved)?;
    w.check_complete()?;
    let metadata = merged_metadata(&w.config, extra_metadata)?;
    let order = tensor_order(&w.config, file_order)?;
    let qtensors = stored_tensors(&w, &order)?;
    let meta_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = qtensors
        .iter()
        .map(|(k, q)| (k.as_str(), q.as_ref()))
        .collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &meta_refs, &tensor_refs).map_err(|e| ModelError::Gguf {
        path: path.to_path_buf(),
        key: "write".into(),
        reason: e.to_string(),
    })?;
    let mut bytes = buf.into_inner();
    for (k, v) in &metadata {
        if matches!(v, Value::Array(a) if a.is_empty()) {
            empty_array_as_strings(&mut bytes, k);
        }
    }
    write_atomic(path, &bytes)
}

/// GGUF value type codes.
const GGUF_TYPE_U32: u32 = 4;
const GGUF_TYPE_STRING: u32 = 8;
const GGUF_TYPE_ARRAY: u32 = 9;

/// candle writes an empty array's element type as u32; llama.cpp refuses a
/// `tokenizer.ggml.merges` that is not a string array even when it is empty (a byte-level
/// vocabulary has no merges). An empty array's element type carries no data, so it is
/// rewritten as string in place: key, array type, element type, length 0.
fn empty_array_as_strings(bytes: &mut [u8], key: &str) {
    let mut needle = Vec::with_capacity(key.len() + 24);
    needle.extend_from_slice(&(key.len() as u64).to_le_bytes());
    needle.extend_from_slice(key.as_bytes());
    needle.extend_from_slice(&GGUF_TYPE_ARRAY.to_le_bytes());
    let at = needle.len();
    needle.extend_from_slice(&GGUF_TYPE_U32.to_le_bytes());
    needle.extend_from_slice(&0u64.to_le_bytes());
    if let Some(pos) = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
    {
        bytes[pos + at..pos + at + 4].copy_from_slice(&GGUF_TYPE_STRING.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for (g, h) in [
            (
                "blk.12.attn_output.weight",
                "model.layers.12.self_attn.o_proj.weight",
            ),
            (
                "blk.0.ffn_norm.weight",
                "model.layers.0.post_attention_layernorm.weight",
            ),
            ("output.weight", "lm_head.weight"),
        ] {
            assert_eq!(gguf_to_hf(g).as_deref(), Some(h));
            assert_eq!(hf_to_gguf(h).as_deref(), Some(g));
        }
        assert_eq!(gguf_to_hf("rope_freqs.weight"), None);
        assert_eq!(gguf_to_hf("blk.x.attn_q.weight"), None);
    }
}
