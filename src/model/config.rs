//! [`LlamaConfig`]: the architecture hyper-parameters, with exactly the Hugging Face
//! `config.json` field names so a folder we write loads in `transformers` as it is.

use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};

/// The largest sizes a config may declare (checked by [`LlamaConfig::validate`]). They are
/// far above any model the harness runs (Llama 3 405B: hidden 16384, intermediate 53248,
/// 126 layers, 128 heads, vocabulary 128256; the longest contexts are 10M tokens), so only
/// a damaged or hostile file reaches them; within them every size product fits in 64 bits.
/// A file must also hold every tensor these sizes imply before anything is allocated from
/// them (see [`super::Weights::check_complete`]).
pub mod limits {
    /// `vocab_size`.
    pub const VOCAB: usize = 1 << 22;
    /// `hidden_size`.
    pub const HIDDEN: usize = 1 << 16;
    /// `intermediate_size`.
    pub const INTERMEDIATE: usize = 1 << 18;
    /// `num_hidden_layers`.
    pub const LAYERS: usize = 1 << 10;
    /// `num_attention_heads` (and so `num_key_value_heads`).
    pub const HEADS: usize = 1 << 10;
    /// `max_position_embeddings`.
    pub const CONTEXT: usize = 1 << 24;
}

/// Llama-family hyper-parameters (RMSNorm, RoPE, SwiGLU, grouped-query attention).
///
/// `head_dim` is always `hidden_size / num_attention_heads`; configs that set a different
/// `head_dim` are rejected by [`LlamaConfig::from_hf_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    /// Rows of the embedding matrix.
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (equal to query heads unless grouped-query attention).
    pub num_key_value_heads: usize,
    /// RMSNorm epsilon, added to the mean square before the square root.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// Longest sequence the RoPE table is built for.
    pub max_position_embeddings: usize,
    /// Whether the output projection reuses `model.embed_tokens.weight`.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence id, if the tokenizer has one. The model never prepends it.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id, if the tokenizer has one.
    pub eos_token_id: Option<u32>,
}

/// The lenient first stage for real `config.json` files, which carry many fields we do
/// not model. Fields that would change the computation if set are read so that they can
/// be refused instead of silently ignored.
#[derive(Deserialize)]
struct HfConfigRaw {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    bos_token_id: Option<serde_json::Value>,
    eos_token_id: Option<serde_json::Value>,
    model_type: Option<String>,
    hidden_act: Option<String>,
    head_dim: Option<usize>,
    rope_scaling: Option<serde_json::Value>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
}

/// Token ids may be a number, null, or (Llama 3) a list; the first entry stands for a list,
/// and every entry must be an id below `vocab_size`.
fn token_id(
    field: &'static str,
    v: Option<serde_json::Value>,
    vocab_size: usize,
) -> Result<Option<u32>> {
    let bad = |reason: String| ModelError::Config { field, reason };
    let items = match v {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Array(items)) => items,
        Some(v) => vec![v],
    };
    let mut ids = Vec::with_capacity(items.len());
    for v in &items {
        let id = v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                bad(format!(
                    "expected a token id, got {}",
                    crate::excerpt::excerpt(v.to_string())
                ))
            })?;
        if id as usize >= vocab_size {
            return Err(bad(format!("{id} is not below vocab_size {vocab_size}")));
        }
        ids.push(id);
    }
    Ok(ids.first().copied())
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks every invariant the model relies on; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        self.validate_sizes()?;
        self.validate_head_split()?;
        self.validate_numbers()
    }

    /// Every size is positive and within the limits (which bound every allocation).
    fn validate_sizes(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(ModelError::Config { field, reason });
        for (field, v, max) in [
            ("vocab_size", self.vocab_size, limits::VOCAB),
            ("hidden_size", self.hidden_size, limits::HIDDEN),
            (
                "intermediate_size",
                self.intermediate_size,
                limits::INTERMEDIATE,
            ),
            ("num_hidden_layers", self.num_hidden_layers, limits::LAYERS),
            (
                "num_attention_heads",
                self.num_attention_heads,
                limits::HEADS,
            ),
            (
                "num_key_value_heads",
                self.num_key_value_heads,
                limits::HEADS,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                limits::CONTEXT,
            ),
        ] {
            if v == 0 {
                return bad(field, "must be positive".into());
            }
            if v > max {
                return bad(field, format!("{v} is above the limit of {max}"));
            }
        }
        Ok(())
    }

    /// The heads split the hidden size evenly, the KV heads split the heads, and each
    /// head is an even width.
    fn validate_head_split(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(ModelError::Config { field, reason });
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(
                "num_attention_heads",
                format!(
                    "{} does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            );
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad(
                "num_key_value_heads",
                format!(
                    "{} does not divide num_attention_heads {}",
                    self.num_key_value_heads, self.num_attention_heads
                ),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            // RoPE rotates pairs of dimensions.
            return bad(
                "num_attention_heads",
                format!("head_dim {} is odd", self.head_dim()),
            );
        }
        Ok(())
    }

    /// The norm epsilon and RoPE base are usable numbers and the special ids are in the
    /// vocabulary.
    fn validate_numbers(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(ModelError::Config { field, reason });
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(
                "rms_norm_eps",
                format!("{} is not a positive number", self.rms_norm_eps),
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(
                "rope_theta",
                format!("{} is not a number above 1", self.rope_theta),
            );
        }
        for (field, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
        ] {
            if let Some(id) = id {
                if id as usize >= self.vocab_size {
                    return bad(
                        field,
                        format!("{id} is not below vocab_size {}", self.vocab_size),
                    );
                }
            }
        }
        Ok(())
    }

    /// Exact number of parameters (every element of every tensor; tied embeddings once).
    pub fn param_count(&self) -> u64 {
        let (v, h, i) = (
            self.vocab_size as u64,
            self.hidden_size as u64,
            self.intermediate_size as u64,
        );
        let kv = (self.num_key_value_heads * self.head_dim()) as u64;
        let per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers as u64 * per_layer + h + head
    }

    /// Parameters in the embedding matrices (input plus untied output).
    pub fn embedding_params(&self) -> u64 {
        let e = (self.vocab_size * self.hidden_size) as u64;
        if self.tie_word_embeddings {
            e
        } else {
            2 * e
        }
    }

    /// A `config.json` that `transformers.LlamaForCausalLM.from_pretrained` loads as it is.
    pub fn to_hf_json(&self) -> String {
        let v = serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "torch_dtype": "float32",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "head_dim": self.head_dim(),
            "rope_scaling": null,
            "pretraining_tp": 1,
            "initializer_range": 0.02,
            "use_cache": true,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        });
        // serde_json renders a Value without failing; pretty output keeps diffs readable.
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
        s.push('\n');
        s
    }

    /// Reads a Hugging Face `config.json`, ignoring fields we do not model but refusing
    /// the ones that would change the computation (RoPE scaling, biases, other
    /// activations, a `head_dim` other than `hidden_size / num_attention_heads`).
    /// Missing optional fields take `transformers`' `LlamaConfig` defaults.
    pub fn from_hf_json(text: &str, path: &std::path::Path) -> Result<Self> {
        let raw: HfConfigRaw =
            crate::input::parse_json(text.as_bytes(), path).map_err(|e| ModelError::Parse {
                path: path.to_path_buf(),
                reason: e.detail(),
            })?;
        let unsupported = |what: String| ModelError::Unsupported {
            what: format!("{what} in `{}`", path.display()),
        };
        if let Some(mt) = &raw.model_type {
            if mt != "llama" && mt != "mistral" && mt != "smollm" {
                return Err(unsupported(format!(
                    "model_type \"{}\"",
                    crate::excerpt::excerpt(mt)
                )));
            }
        }
        if let Some(act) = &raw.hidden_act {
            if act != "silu" {
                return Err(unsupported(format!(
                    "hidden_act \"{}\"",
                    crate::excerpt::excerpt(act)
                )));
            }
        }
        if raw.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported("rope_scaling".into()));
        }
        if raw.attention_bias == Some(true) || raw.mlp_bias == Some(true) {
            return Err(unsupported("attention_bias/mlp_bias".into()));
        }
        // Every message names the file: a field alone does not say which config is wrong.
        let in_file = |e: ModelError| ModelError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let cfg = LlamaConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: raw.rope_theta.unwrap_or(10_000.0),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            // transformers' LlamaConfig defaults to untied.
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            bos_token_id: token_id("bos_token_id", raw.bos_token_id, raw.vocab_size)
                .map_err(in_file)?,
            eos_token_id: token_id("eos_token_id", raw.eos_token_id, raw.vocab_size)
                .map_err(in_file)?,
        };
        if let Some(hd) = raw.head_dim {
            if cfg.num_attention_heads != 0 && hd != cfg.head_dim() {
                return Err(unsupported(format!(
                    "head_dim {hd} != hidden_size / num_attention_heads = {}",
                    cfg.head_dim()
                )));
            }
        }
        cfg.validate().map_err(in_file)?;
        Ok(cfg)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    /// A tiny GQA config used by tests across the model module.
    pub(crate) fn tiny(tied: bool) -> LlamaConfig {
        LlamaConfig {
            vocab_size: 96,
            hidden_size: 64,
            intermediate_size: 96,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 64,
            tie_word_embeddings: tied,
            bos_token_id: Some(1),
            eos_token_id: Some(2),
        }
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = tiny(true);
        c.num_key_value_heads = 3;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads"), "{e}");
        let mut c = tiny(true);
        c.hidden_size = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("hidden_size"));
        let mut c = tiny(true);
        c.num_attention_heads = 5;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("num_attention_heads"));
        let mut c = tiny(true);
        c.hidden_size = 12;
        c.num_attention_heads = 4;
        c.num_key_value_heads = 4;
        assert!(c.validate().unwrap_err().to_string().contains("odd"));
    }

    #[test]
    fn sizes_above_the_limits_and_token_ids_outside_the_vocabulary_are_refused() {
        for (field, set) in [
            (
                "vocab_size",
                &(|c: &mut LlamaConfig| c.vocab_size = limits::VOCAB + 1)
                    as &dyn Fn(&mut LlamaConfig),
            ),
            ("num_hidden_layers", &|c: &mut LlamaConfig| {
                c.num_hidden_layers = 1 << 31
            }),
            ("max_position_embeddings", &|c: &mut LlamaConfig| {
                c.max_position_embeddings = usize::MAX
            }),
            ("hidden_size", &|c: &mut LlamaConfig| {
                c.hidden_size = 1 << 20
            }),
        ] {
            let mut c = tiny(true);
            set(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("above the limit"), "{e}");
        }
        let json = tiny(true).to_hf_json();
        for (ids, ok) in [
            ("[2, 3]", true),
            ("[1, 2, 1000000000]", false),
            ("[1, 2.5]", false),
            ("96", false),
        ] {
            let text = json.replace("\"eos_token_id\": 2", &format!("\"eos_token_id\": {ids}"));
            let r = LlamaConfig::from_hf_json(&text, Path::new("c.json"));
            assert_eq!(r.is_ok(), ok, "{ids}: {r:?}");
            if let Err(e) = r {
                assert!(
                    e.to_string().contains("c.json") && e.to_string().contains("eos_token_id"),
                    "{e}"
                );
            }
        }
        let e = LlamaConfig::from_hf_json(&format!("{json}{{}}"), Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("trailing content"), "{e}");
    }

    #[test]
    fn param_count_by_hand() {
        let c = tiny(true);
        // embed 96*64; per layer q,o 64*64 each, k,v 64*32 each, mlp 3*64*96, norms 2*64.
        let per_layer = 2 * 4096 + 2 * 2048 + 3 * 64 * 96 + 128;
        assert_eq!(c.param_count(), (96 * 64 + 2 * per_layer + 64) as u64);
        let u = tiny(false);
        assert_eq!(u.param_count(), c.param_count() + 96 * 64);
    }

    #[test]
    fn hf_json_round_trip_and_extra_fields() {
        let c = tiny(false);
        let json = c.to_hf_json();
        assert!(json.contains("\"LlamaForCausalLM\""));
        assert!(json.contains("\"torch_dtype\": \"float32\""));
        let back = LlamaConfig::from_hf_json(&json, Path::new("config.json")).unwrap();
        assert_eq!(back, c);
        let smol = r#"{"architectures":["LlamaForCausalLM"],"bos_token_id":1,"eos_token_id":[2, 3],
            "hidden_act":"silu","hidden_size":576,"intermediate_size":1536,"max_position_embeddings":8192,
            "model_type":"llama","num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,
            "rms_norm_eps":1e-05,"rope_theta":100000,"tie_word_embeddings":true,"vocab_size":49152,
            "transformers.js_config":{"kv_cache_dtype":{"q4f16":"float16"}},"use_cache":true}"#;
        let s = LlamaConfig::from_hf_json(smol, Path::new("config.json")).unwrap();
        assert_eq!(
            (s.head_dim(), s.eos_token_id, s.rope_theta),
            (64, Some(2), 100_000.0)
        );
    }

    #[test]
    fn hf_json_refuses_what_it_cannot_compute() {
        let base = tiny(true).to_hf_json();
        let scaled = base.replace(
            "\"rope_scaling\": null",
            "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}",
        );
        let e = LlamaConfig::from_hf_json(&scaled, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rope_scaling") && e.contains("c.json"), "{e}");
        let e = LlamaConfig::from_hf_json("{\"vocab_size\": 3}", Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("hidden_size") && e.contains("c.json"), "{e}");
    }

    #[test]
    fn strict_deserialize_rejects_unknown_fields() {
        let mut v: serde_json::Value = serde_json::to_value(tiny(true)).unwrap();
        v["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<LlamaConfig>(v).is_err());
    }
}
