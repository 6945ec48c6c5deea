//! Teacher-forced logits: every position of a sequence, by full recomputation, through the
//! KV cache one token at a time, or in one right-padded batch; and the sequences the
//! judges feed (an oracle's prompt and continuation, or the prompt set).

use super::RunError;
use crate::model::{KvCache, Llama};
use crate::oracle::Oracle;
use crate::prompts::Prompt;
use crate::tokenizer::TextTokenizer;
use candle_core::Tensor;

/// A token sequence whose positions from `start` on are compared.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSeq {
    /// Prompt id.
    pub id: String,
    /// All tokens fed.
    pub tokens: Vec<u32>,
    /// First compared position: the row there predicts `tokens[start + 1]`.
    pub start: usize,
}

/// With an oracle: its `prompt_tokens + tokens`, compared from the last prompt position
/// (row i predicts the oracle's generated token i). Without: the prompts as the subject
/// tokenizes them, every position compared.
pub fn eval_seqs(
    oracle: Option<&Oracle>,
    prompts: &[Prompt],
    tok: &dyn TextTokenizer,
) -> Result<Vec<EvalSeq>, RunError> {
    if let Some(o) = oracle {
        return Ok(o
            .cases
            .iter()
            .map(|c| EvalSeq {
                id: c.id.clone(),
                tokens: [c.prompt_tokens.as_slice(), c.tokens.as_slice()].concat(),
                start: c.prompt_tokens.len() - 1,
            })
            .collect());
    }
    prompts
        .iter()
        .map(|p| {
            let t = prompt_tokens(tok, &p.text, &p.id)?;
            Ok(EvalSeq {
                id: p.id.clone(),
                tokens: t,
                start: 0,
            })
        })
        .collect()
}

/// A prompt as the model is fed it: tokenized (special tokens parsed), BOS in front when
/// the tokenizer says the model expects one.
pub fn prompt_tokens(tok: &dyn TextTokenizer, text: &str, id: &str) -> Result<Vec<u32>, RunError> {
    let mut t = tok.encode(text).map_err(|source| RunError::Tokenize {
        what: format!("prompt '{id}'"),
        source: Box::new(source),
    })?;
    if tok.add_bos() {
        t.insert(0, tok.bos().ok_or(RunError::NoBos)?);
    }
    if t.is_empty() {
        return Err(RunError::EmptyPrompt(id.to_string()));
    }
    Ok(t)
}

/// Logits of every position of one sequence, `(len, vocab)`, full recomputation.
pub fn logits(llama: &Llama, tokens: &[u32]) -> Result<Vec<Vec<f32>>, RunError> {
    let input = Tensor::new(tokens, llama.device())?.unsqueeze(0)?;
    Ok(llama.forward(&input, None)?.squeeze(0)?.to_vec2::<f32>()?)
}

/// Logits of several sequences: per sequence, per position, one row over the vocabulary.
pub type SeqLogits = Vec<Vec<Vec<f32>>>;

/// Logits of each sequence in one right-padded batch (padding after a sequence cannot
/// reach it through a causal mask), rows of the real positions only.
pub fn logits_batched(llama: &Llama, seqs: &[&[u32]], pad: u32) -> Result<SeqLogits, RunError> {
    let max = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    let flat: Vec<u32> = seqs
        .iter()
        .flat_map(|s| {
            s.iter()
                .copied()
                .chain(std::iter::repeat_n(pad, max - s.len()))
        })
        .collect();
    let input = Tensor::from_vec(flat, (seqs.len(), max), llama.device())?;
    let out = llama.forward(&input, None)?.to_vec3::<f32>()?;
    Ok(out
        .into_iter()
        .zip(seqs)
        .map(|(rows, s)| rows.into_iter().take(s.len()).collect())
        .collect())
}

/// Logits of every position computed one token at a time through the KV cache.
pub fn logits_incremental(llama: &Llama, tokens: &[u32]) -> Result<Vec<Vec<f32>>, RunError> {
    let mut cache = KvCache::new(llama.config());
    let mut rows = Vec::with_capacity(tokens.len());
    for &t in tokens {
        let input = Tensor::new(&[t], llama.device())?.unsqueeze(0)?;
        let out = llama.forward(&input, Some(&mut cache))?;
        rows.push(out.squeeze(0)?.squeeze(0)?.to_vec1::<f32>()?);
    }
    Ok(rows)
}
