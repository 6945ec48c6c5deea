//! The `groundtruth-oracle/1` format, exactly as `shared/contracts/oracle-format.md` says.

use crate::excerpt::excerpt;
use serde::{Deserialize, Serialize};

/// The format tag every oracle carries.
pub const FORMAT: &str = "groundtruth-oracle/1";

/// The storage types `model.weights` may name: ggml's type names as llama.cpp writes
/// them (what [`crate::model::ggml_type_name`] gives), `f32` for float checkpoints.
pub const STORAGE_TYPES: [&str; 15] = [
    "f32", "f16", "bf16", "q8_0", "q8_1", "q5_1", "q5_0", "q4_1", "q4_0", "q8_k", "q6_k", "q5_k",
    "q4_k", "q3_k", "q2_k",
];

/// Longest `prompt` or `text` of a case, in bytes: tokenizing text costs tens of times its
/// size in memory, and a prompt this long is already longer than any context the harness
/// runs (about 250k tokens).
pub const MAX_CASE_TEXT_BYTES: usize = 1 << 20;

/// Longest case id: ids name cases, report rows and ticket files.
pub const MAX_CASE_ID_CHARS: usize = 64;

/// The facts about a model an oracle must be consistent with before any model work:
/// its ids must be rows of the embedding and its sequences must fit the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    /// Rows of the embedding (`vocab_size`).
    pub vocab_size: usize,
    /// The longest sequence the model runs (`max_position_embeddings`).
    pub context: usize,
}

impl ModelLimits {
    /// The limits of a model with this config.
    pub fn of(config: &crate::model::LlamaConfig) -> ModelLimits {
        ModelLimits {
            vocab_size: config.vocab_size,
            context: config.max_position_embeddings,
        }
    }
}

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
            return Err(format!(
                "field 'format': expected '{FORMAT}', found '{}'",
                excerpt(&self.format)
            ));
        }
        if !is_sha256(&self.model.sha256) {
            return Err("field 'model.sha256': not 64 lowercase hex digits".into());
        }
        if !STORAGE_TYPES.contains(&self.model.weights.as_str()) {
            return Err(format!(
                "field 'model.weights': '{}' is not a storage type ({})",
                excerpt(&self.model.weights),
                STORAGE_TYPES.join(", ")
            ));
        }
        if self
            .runtime
            .name
            .trim()
            .to_ascii_lowercase()
            .starts_with("groundtruth")
        {
            return Err(format!(
                "field 'runtime.name': '{}' is groundtruth's own runtime; an oracle must come from an independent runtime",
                excerpt(&self.runtime.name)
            ));
        }
        if self.decoding.strategy != "greedy" {
            return Err(format!(
                "field 'decoding.strategy': only 'greedy' in version 1, found '{}'",
                excerpt(&self.decoding.strategy)
            ));
        }
        if self.top_k == 0 {
            return Err("field 'top_k': must be at least 1".into());
        }
        if self.cases.is_empty() {
            return Err("field 'cases': empty".into());
        }
        if let Some(cfg) = &self.model.config {
            cfg.validate()
                .map_err(|m| format!("field 'model.config.{m}"))?;
        }
        self.validate_cases()?;
        if let Some(eos) = self.model.config.as_ref().and_then(|c| c.eos_token_id) {
            self.check_eos(eos)?;
        }
        if let Some(p) = &self.perplexity {
            validate_perplexity(p)?;
        }
        Ok(())
    }

    /// Each case: a unique, short, plain id, and its own fields (`validate_case`).
    fn validate_cases(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for (i, c) in self.cases.iter().enumerate() {
            let id_ok = !c.id.is_empty()
                && c.id.len() <= MAX_CASE_ID_CHARS
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
            if !id_ok {
                return Err(format!("field 'cases[{i}].id': '{}' is not 1 to {MAX_CASE_ID_CHARS} ASCII letters, digits, '_' or '-'", excerpt(&c.id)));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(format!("field 'cases[{i}].id': duplicate id '{}'", c.id));
            }
            self.validate_case(c)
                .map_err(|m| format!("field 'cases[{i}].{m}"))?;
        }
        Ok(())
    }

    /// A greedy continuation ends at the model's EOS: one that goes on after it breaks the
    /// contract (the runtime ignored its own stop token, or the file was edited). The error
    /// names the case and the position.
    pub fn check_eos(&self, eos: u32) -> Result<(), String> {
        for (i, c) in self.cases.iter().enumerate() {
            if let Some(p) = c
                .tokens
                .iter()
                .position(|&t| t == eos)
                .filter(|&p| p + 1 < c.tokens.len())
            {
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
        for (field, text) in [("prompt", &c.prompt), ("text", &c.text)] {
            if text.len() > MAX_CASE_TEXT_BYTES {
                return Err(format!(
                    "{field}': {} bytes, more than the {MAX_CASE_TEXT_BYTES}-byte limit",
                    text.len()
                ));
            }
        }
        if c.tokens.is_empty() || c.tokens.len() > self.decoding.max_new_tokens {
            return Err(format!(
                "tokens': length {} outside 1..={}",
                c.tokens.len(),
                self.decoding.max_new_tokens
            ));
        }
        if c.top_logprobs.len() != c.tokens.len() {
            return Err(format!(
                "top_logprobs': {} entries for {} tokens",
                c.top_logprobs.len(),
                c.tokens.len()
            ));
        }
        for (i, entry) in c.top_logprobs.iter().enumerate() {
            let at = format!("(case '{}', position {i})", c.id);
            if entry.is_empty() || entry.len() > self.top_k {
                return Err(format!(
                    "top_logprobs[{i}]' {at}: {} entries, expected 1..={}",
                    entry.len(),
                    self.top_k
                ));
            }
            if entry[0].0 != c.tokens[i] {
                return Err(format!(
                    "top_logprobs[{i}][0]' {at}: id {} is not the generated token {}",
                    entry[0].0, c.tokens[i]
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (j, &(id, lp)) in entry.iter().enumerate() {
                // 1e-6 of slack: a runtime's float32 log-softmax can round the top entry just above 0.
                if !lp.is_finite() || lp > 1e-6 {
                    return Err(format!(
                        "top_logprobs[{i}][{j}]' {at}: log-probability {lp} is not finite and ≤ 0"
                    ));
                }
                if j > 0 && lp > entry[j - 1].1 + 1e-9 {
                    return Err(format!("top_logprobs[{i}][{j}]' {at}: not sorted most likely first ({lp} after {})", entry[j - 1].1));
                }
                if !seen.insert(id) {
                    return Err(format!(
                        "top_logprobs[{i}][{j}]' {at}: token {id} listed twice"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the oracle against the model it is judged with, before any model work: every
    /// token id (prompt, continuation, top log-probabilities) is a row of the embedding,
    /// `top_k` does not exceed the vocabulary, and every case (prompt plus
    /// `max_new_tokens`) and the perplexity context fit the model's context. The error
    /// names the field.
    pub fn validate_for(&self, model: &ModelLimits) -> Result<(), String> {
        let vocab = model.vocab_size;
        if self.top_k > vocab {
            return Err(format!(
                "field 'top_k': {} is more than the model's {vocab}-token vocabulary",
                self.top_k
            ));
        }
        let out_of_vocab = |field: String, id: u32| {
            format!(
                "field '{field}': token id {id} is outside the model's {vocab}-token vocabulary"
            )
        };
        for (i, c) in self.cases.iter().enumerate() {
            for (field, ids) in [("prompt_tokens", &c.prompt_tokens), ("tokens", &c.tokens)] {
                if let Some((j, &id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= vocab)
                {
                    return Err(out_of_vocab(format!("cases[{i}].{field}[{j}]"), id));
                }
            }
            for (j, entry) in c.top_logprobs.iter().enumerate() {
                if let Some((k, &(id, _))) = entry
                    .iter()
                    .enumerate()
                    .find(|(_, (id, _))| *id as usize >= vocab)
                {
                    return Err(out_of_vocab(
                        format!("cases[{i}].top_logprobs[{j}][{k}]"),
                        id,
                    ));
                }
            }
            let needed = c
                .prompt_tokens
                .len()
                .saturating_add(self.decoding.max_new_tokens);
            if needed > model.context {
                return Err(format!(
                    "field 'cases[{i}]': {} prompt tokens plus max_new_tokens {} exceed the model's context of {} tokens",
                    c.prompt_tokens.len(),
                    self.decoding.max_new_tokens,
                    model.context
                ));
            }
        }
        if let Some(p) = self.perplexity.as_ref().filter(|p| p.ctx > model.context) {
            return Err(format!(
                "field 'perplexity.ctx': {} exceeds the model's context of {} tokens",
                p.ctx, model.context
            ));
        }
        Ok(())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The perplexity block: what was scored, how, and a usable result.
fn validate_perplexity(p: &Perplexity) -> Result<(), String> {
    if !is_sha256(&p.text_sha256) {
        return Err("field 'perplexity.text_sha256': not 64 lowercase hex digits".into());
    }
    if p.scored != "second-half" {
        return Err(format!(
            "field 'perplexity.scored': only 'second-half' is defined, found '{}'",
            excerpt(&p.scored)
        ));
    }
    if p.ctx < 2 || p.chunks == 0 || p.n_scored == 0 || !(p.ppl.is_finite() && p.ppl >= 1.0) {
        return Err("field 'perplexity': ctx ≥ 2, chunks ≥ 1, n_scored ≥ 1 and a finite ppl ≥ 1 are required".into());
    }
    Ok(())
}
