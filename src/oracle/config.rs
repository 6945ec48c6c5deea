//! `model.config`: the hyperparameters that fix a model's arithmetic, as the oracle's
//! runtime read them, and their comparison with a checkpoint's.
//!
//! Every key is optional: a runtime leaves out what it does not know. A key the oracle
//! states must match the checkpoint exactly; floats are compared at f32 precision, the
//! precision every runtime here computes in (a GGUF stores `rms_norm_eps` as the f32
//! nearest 1e-5, a `config.json` as the f64 1e-5: the same model).

use crate::model::LlamaConfig;
use serde::{Deserialize, Deserializer, Serialize};

/// RoPE scaling as the oracle states it: `null` (none) or the runtime's parameters.
pub type RopeScaling = Option<serde_json::Map<String, serde_json::Value>>;

/// The oracle's `model.config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `llama`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Rows of the embedding matrix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<u64>,
    /// Residual width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<u64>,
    /// Feed-forward width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<u64>,
    /// Transformer blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_layers: Option<u64>,
    /// Query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_heads: Option<u64>,
    /// Key/value heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_kv_heads: Option<u64>,
    /// Width of one head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    /// Trained context length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// RoPE base frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// RoPE scaling: absent (not stated), `null` (none) or an object.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rope_scaling: Option<RopeScaling>,
    /// RMSNorm epsilon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rms_norm_eps: Option<f64>,
    /// Whether the output projection is the token embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
    /// Beginning-of-sequence id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id: where the oracle's greedy continuations stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
}

/// A key that is present, even as `null`, is `Some` (serde's default would fold `null`
/// into "absent").
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RopeScaling>, D::Error> {
    RopeScaling::deserialize(d).map(Some)
}

/// One key's value on each side, rendered for messages.
enum Side {
    Int(Option<u64>),
    Float(Option<f64>),
    Text(Option<String>),
    Flag(Option<bool>),
    Scaling(Option<RopeScaling>),
}

impl Side {
    fn show(&self) -> String {
        let none = || "none".to_string();
        match self {
            Side::Int(v) => v.map_or_else(none, |x| x.to_string()),
            Side::Float(v) => v.map_or_else(none, |x| format!("{x:e}")),
            Side::Text(v) => v.clone().map_or_else(none, |x| format!("{x:?}")),
            Side::Flag(v) => v.map_or_else(none, |x| x.to_string()),
            Side::Scaling(v) => match v {
                None => none(),
                Some(None) => "null".into(),
                Some(Some(m)) => serde_json::Value::Object(m.clone()).to_string(),
            },
        }
    }

    fn stated(&self) -> bool {
        match self {
            Side::Int(v) => v.is_some(),
            Side::Float(v) => v.is_some(),
            Side::Text(v) => v.is_some(),
            Side::Flag(v) => v.is_some(),
            Side::Scaling(v) => v.is_some(),
        }
    }

    fn same(&self, other: &Side) -> bool {
        match (self, other) {
            (Side::Int(a), Side::Int(b)) => a.is_some() && a == b,
            (Side::Float(Some(a)), Side::Float(Some(b))) => (*a as f32) == (*b as f32),
            (Side::Text(a), Side::Text(b)) => a.is_some() && a == b,
            (Side::Flag(a), Side::Flag(b)) => a.is_some() && a == b,
            (Side::Scaling(a), Side::Scaling(b)) => a.is_some() && a == b,
            // `sides()` lists the same keys in the same order on both sides, so a pair of
            // different kinds never occurs; if it did, it would not be a match.
            _ => false,
        }
    }
}

impl ModelConfig {
    /// The harness's model, in the oracle's terms. The harness runs Llama only and refuses
    /// RoPE scaling, so those two keys are fixed.
    pub fn of_llama(c: &LlamaConfig) -> ModelConfig {
        let n = |x: usize| Some(x as u64);
        ModelConfig {
            architecture: Some("llama".into()),
            vocab_size: n(c.vocab_size),
            hidden_size: n(c.hidden_size),
            intermediate_size: n(c.intermediate_size),
            num_layers: n(c.num_hidden_layers),
            num_heads: n(c.num_attention_heads),
            num_kv_heads: n(c.num_key_value_heads),
            head_dim: n(c.head_dim()),
            context_length: n(c.max_position_embeddings),
            rope_theta: Some(c.rope_theta),
            rope_scaling: Some(None),
            rms_norm_eps: Some(c.rms_norm_eps),
            tie_word_embeddings: Some(c.tie_word_embeddings),
            bos_token_id: c.bos_token_id,
            eos_token_id: c.eos_token_id,
        }
    }

    fn sides(&self) -> [(&'static str, Side); 15] {
        [
            ("architecture", Side::Text(self.architecture.clone())),
            ("vocab_size", Side::Int(self.vocab_size)),
            ("hidden_size", Side::Int(self.hidden_size)),
            ("intermediate_size", Side::Int(self.intermediate_size)),
            ("num_layers", Side::Int(self.num_layers)),
            ("num_heads", Side::Int(self.num_heads)),
            ("num_kv_heads", Side::Int(self.num_kv_heads)),
            ("head_dim", Side::Int(self.head_dim)),
            ("context_length", Side::Int(self.context_length)),
            ("rope_theta", Side::Float(self.rope_theta)),
            ("rope_scaling", Side::Scaling(self.rope_scaling.clone())),
            ("rms_norm_eps", Side::Float(self.rms_norm_eps)),
            ("tie_word_embeddings", Side::Flag(self.tie_word_embeddings)),
            ("bos_token_id", Side::Int(self.bos_token_id.map(u64::from))),
            ("eos_token_id", Side::Int(self.eos_token_id.map(u64::from))),
        ]
    }

    /// Compares every key this (the oracle's) config states with `checkpoint`'s: the
    /// number of keys compared and one line per differing key, naming it and both values.
    pub fn mismatches(&self, checkpoint: &ModelConfig) -> (usize, Vec<String>) {
        let mut compared = 0;
        let mut out = Vec::new();
        for ((key, want), (_, got)) in self.sides().into_iter().zip(checkpoint.sides()) {
            if !want.stated() {
                continue;
            }
            compared += 1;
            if !want.same(&got) {
                out.push(format!(
                    "{key}: oracle {}, checkpoint {}",
                    want.show(),
                    got.show()
                ));
            }
        }
        (compared, out)
    }

    /// Values no runtime could have read; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("rope_theta", self.rope_theta),
            ("rms_norm_eps", self.rms_norm_eps),
        ] {
            if v.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
                return Err(format!(
                    "{key}': {} is not a positive finite number",
                    v.unwrap_or_default()
                ));
            }
        }
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("context_length", self.context_length),
        ];
        if let Some((key, _)) = sizes.iter().find(|(_, v)| *v == Some(0)) {
            return Err(format!("{key}': must be positive"));
        }
        if let (Some(eos), Some(vocab)) = (self.eos_token_id, self.vocab_size) {
            if u64::from(eos) >= vocab {
                return Err(format!(
                    "eos_token_id': {eos} is not below vocab_size {vocab}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> ModelConfig {
        serde_json::from_str(
            r#"{"architecture": "llama", "vocab_size": 49152, "hidden_size": 576, "num_layers": 30,
                "rope_theta": 100000.0, "rope_scaling": null, "rms_norm_eps": 9.999999747378752e-06,
                "tie_word_embeddings": true, "eos_token_id": 2}"#,
        )
        .unwrap()
    }

    #[test]
    fn null_and_absent_rope_scaling_differ() {
        assert_eq!(smollm2().rope_scaling, Some(None));
        let absent: ModelConfig = serde_json::from_str(r#"{"architecture": "llama"}"#).unwrap();
        assert_eq!(absent.rope_scaling, None);
        assert!(serde_json::from_str::<ModelConfig>(r#"{"rope_thetta": 1.0}"#).is_err());
    }

    #[test]
    fn every_differing_key_is_named_and_floats_compare_at_f32() {
        let oracle = smollm2();
        let mut ours = oracle.clone();
        ours.rms_norm_eps = Some(1e-5); // the f64 1e-5 of a config.json: the same f32
        assert_eq!(oracle.mismatches(&ours), (9, vec![]));
        ours.rope_theta = Some(10000.0);
        ours.rms_norm_eps = Some(1e-6);
        ours.eos_token_id = None;
        let (n, m) = oracle.mismatches(&ours);
        assert_eq!(n, 9);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(
            m[0].starts_with("rope_theta: oracle 1e5, checkpoint 1e4"),
            "{m:?}"
        );
        assert!(
            m[2].starts_with("eos_token_id: oracle 2, checkpoint none"),
            "{m:?}"
        );
    }

    #[test]
    fn impossible_values_are_refused() {
        let mut c = smollm2();
        c.rms_norm_eps = Some(-1.0);
        assert!(c.validate().unwrap_err().contains("rms_norm_eps"));
        let mut c = smollm2();
        c.eos_token_id = Some(49152);
        assert!(c.validate().unwrap_err().contains("eos_token_id"));
    }
}
