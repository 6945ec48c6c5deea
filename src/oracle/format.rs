//! The `groundtruth-oracle/1` format, exactly as `shared/contracts/oracle-format.md` says.

use serde::{Deserialize, Serialize};

/// The format tag every oracle carries.
pub const FORMAT: &str = "groundtruth-oracle/1";

/// What a trusted runtime produced for a model on a fixed prompt set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Oracle {
    /// Always [`FORMAT`].
    pub format: String,
    /// The exact weights file the oracle was made from.
    pub model: OracleModel,
    /// Who produced it.
    pub runtime: Runtime,
    /// How the continuations were decoded.
    pub decoding: Decoding,
    /// How many log-probabilities each position records.
    pub top_k: usize,
    /// One entry per prompt.
    pub cases: Vec<OracleCase>,
    /// Optional llama.cpp-style perplexity over a text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<Perplexity>,
}

/// The model file behind an oracle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OracleModel {
    /// Hub id or local name.
    pub id: String,
    /// File name.
    pub file: String,
    /// SHA-256 of that file.
    pub sha256: String,
    /// Storage type of its weights (`f32`, `q4_1`, …).
    pub weights: String,
    /// The hyperparameters the runtime read (optional; keys it did not know are absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<super::config::ModelConfig>,
}

/// The runtime that produced the oracle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// e.g. `llama.cpp`, `transformers`.
    pub name: String,
    /// Its version string.
    pub version: String,
    /// e.g. `cpu`.
    pub device: String,
    /// Threads used.
    pub threads: u32,
}

/// Decoding settings (greedy only in version 1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Decoding {
    /// Always `greedy`.
    pub strategy: String,
    /// Continuation length unless EOS came first.
    pub max_new_tokens: usize,
    /// Whether BOS was prepended to `prompt_tokens`.
    pub add_bos: bool,
}

/// One prompt's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OracleCase {
    /// Prompt id.
    pub id: String,
    /// Prompt text.
    pub prompt: String,
    /// The oracle runtime's tokenization of `prompt`.
    pub prompt_tokens: Vec<u32>,
    /// The greedy continuation.
    pub tokens: Vec<u32>,
    /// Its detokenized text.
    pub text: String,
    /// Per generated position, the top-k `[token, ln p]`, most likely first.
    pub top_logprobs: Vec<Vec<(u32, f64)>>,
}

/// llama.cpp-style perplexity record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Perplexity {
    /// SHA-256 of the scored text.
    pub text_sha256: String,
    /// Context length.
    pub ctx: usize,
    /// Number of contexts.
    pub chunks: usize,
    /// Which tokens were scored (`second-half`).
    pub scored: String,
    /// The perplexity.
    pub ppl: f64,
    /// Number of scored tokens.
    pub n_scored: usize,
}

impl Oracle {
    /// The case with this prompt id.
    pub fn case(&self, id: &str) -> Option<&OracleCase> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Checks the rules the contract states beyond the schema; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("field 'format': expected '{FORMAT}', found '{}'", self.format));
        }
        if !is_sha256(&self.model.sha256) {
            return Err("field 'model.sha256': not 64 lowercase hex digits".into());
        }
        if self.decoding.strategy != "greedy" {
            return Err(format!("field 'decoding.strategy': only 'greedy' in version 1, found '{}'", self.decoding.strategy));
        }
        if self.top_k == 0 {
            return Err("field 'top_k': must be at least 1".into());
        }
        if self.cases.is_empty() {
            return Err("field 'cases': empty".into());
        }
        if let Some(cfg) = &self.model.config {
            cfg.validate().map_err(|m| format!("field 'model.config.{m}"))?;
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, c) in self.cases.iter().enumerate() {
            if !ids.insert(c.id.as_str()) {
                return Err(format!("field 'cases[{i}].id': duplicate id '{}'", c.id));
            }
            self.validate_case(c).map_err(|m| format!("field 'cases[{i}].{m}"))?;
        }
        if let Some(eos) = self.model.config.as_ref().and_then(|c| c.eos_token_id) {
            self.check_eos(eos)?;
        }
        if let Some(p) = &self.perplexity {
            if !is_sha256(&p.text_sha256) {
                return Err("field 'perplexity.text_sha256': not 64 lowercase hex digits".into());
            }
            if p.scored != "second-half" {
                return Err(format!("field 'perplexity.scored': only 'second-half' is defined, found '{}'", p.scored));
            }
            if p.ctx < 2 || p.chunks == 0 || p.n_scored == 0 || !(p.ppl.is_finite() && p.ppl >= 1.0) {
                return Err("field 'perplexity': ctx ≥ 2, chunks ≥ 1, n_scored ≥ 1 and a finite ppl ≥ 1 are required".into());
            }
        }
        Ok(())
    }

    /// A greedy continuation ends at the model's EOS: one that goes on after it breaks the
    /// contract (the runtime ignored its own stop token, or the file was edited). The error
    /// names the case and the position.
    pub fn check_eos(&self, eos: u32) -> Result<(), String> {
        for (i, c) in self.cases.iter().enumerate() {
            if let Some(p) = c.tokens.iter().position(|&t| t == eos).filter(|&p| p + 1 < c.tokens.len()) {
                return Err(format!(
                    "field 'cases[{i}].tokens[{p}]' (case '{}', position {p}): the continuation goes on for {} more token(s) after EOS {eos}",
                    c.id,
                    c.tokens.len() - p - 1
                ));
            }
        }
        Ok(())
    }

    fn validate_case(&self, c: &OracleCase) -> Result<(), String> {
        if c.prompt_tokens.is_empty() {
            return Err("prompt_tokens': empty".into());
        }
        if c.tokens.is_empty() || c.tokens.len() > self.decoding.max_new_tokens {
            return Err(format!("tokens': length {} outside 1..={}", c.tokens.len(), self.decoding.max_new_tokens));
        }
        if c.top_logprobs.len() != c.tokens.len() {
            return Err(format!("top_logprobs': {} entries for {} tokens", c.top_logprobs.len(), c.tokens.len()));
        }
        for (i, entry) in c.top_logprobs.iter().enumerate() {
            let at = format!("(case '{}', position {i})", c.id);
            if entry.is_empty() || entry.len() > self.top_k {
                return Err(format!("top_logprobs[{i}]' {at}: {} entries, expected 1..={}", entry.len(), self.top_k));
            }
            if entry[0].0 != c.tokens[i] {
                return Err(format!("top_logprobs[{i}][0]' {at}: id {} is not the generated token {}", entry[0].0, c.tokens[i]));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (j, &(id, lp)) in entry.iter().enumerate() {
                // 1e-6 of slack: a runtime's float32 log-softmax can round the top entry just above 0.
                if !lp.is_finite() || lp > 1e-6 {
                    return Err(format!("top_logprobs[{i}][{j}]' {at}: log-probability {lp} is not finite and ≤ 0"));
                }
                if j > 0 && lp > entry[j - 1].1 + 1e-9 {
                    return Err(format!("top_logprobs[{i}][{j}]' {at}: not sorted most likely first ({lp} after {})", entry[j - 1].1));
                }
                if !seen.insert(id) {
                    return Err(format!("top_logprobs[{i}][{j}]' {at}: token {id} listed twice"));
                }
            }
        }
        Ok(())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}
