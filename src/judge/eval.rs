//! Running a subject: teacher-forced logits, greedy decoding, evaluation sequences.

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
pub fn eval_seqs(oracle: Option<&Oracle>, prompts: &[Prompt], tok: &dyn TextTokenizer) -> Result<Vec<EvalSeq>, String> {
    if let Some(o) = oracle {
        return Ok(o
            .cases
            .iter()
            .map(|c| EvalSeq { id: c.id.clone(), tokens: [c.prompt_tokens.as_slice(), c.tokens.as_slice()].concat(), start: c.prompt_tokens.len() - 1 })
            .collect());
    }
    prompts
        .iter()
        .map(|p| {
            let mut t = tok.encode(&p.text).map_err(|e| format!("tokenize prompt '{}': {e}", p.id))?;
            if tok.add_bos() {
                t.insert(0, tok.bos().ok_or("tokenizer says add_bos but has no BOS id")?);
            }
            if t.is_empty() {
                return Err(format!("prompt '{}' tokenizes to nothing", p.id));
            }
            Ok(EvalSeq { id: p.id.clone(), tokens: t, start: 0 })
        })
        .collect()
}

/// Logits of every position of one sequence, `(len, vocab)`, full recomputation.
pub fn logits(llama: &Llama, tokens: &[u32]) -> candle_core::Result<Vec<Vec<f32>>> {
    let input = Tensor::new(tokens, llama.device())?.unsqueeze(0)?;
    llama.forward(&input, None).map_err(to_candle)?.squeeze(0)?.to_vec2::<f32>()
}

/// Logits of each sequence in one right-padded batch (padding after a sequence cannot
/// reach it through a causal mask), rows of the real positions only.
pub fn logits_batched(llama: &Llama, seqs: &[&[u32]], pad: u32) -> candle_core::Result<Vec<Vec<Vec<f32>>>> {
    let max = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    let flat: Vec<u32> = seqs.iter().flat_map(|s| s.iter().copied().chain(std::iter::repeat(pad).take(max - s.len()))).collect();
    let input = Tensor::from_vec(flat, (seqs.len(), max), llama.device())?;
    let out = llama.forward(&input, None).map_err(to_candle)?.to_vec3::<f32>()?;
    Ok(out.into_iter().zip(seqs).map(|(rows, s)| rows.into_iter().take(s.len()).collect()).collect())
}

/// Logits of every position computed one token at a time through the KV cache.
pub fn logits_incremental(llama: &Llama, tokens: &[u32]) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut cache = KvCache::new(llama.config());
    let mut rows = Vec::with_capacity(tokens.len());
    for &t in tokens {
        let input = Tensor::new(&[t], llama.device())?.unsqueeze(0)?;
        let out = llama.forward(&input, Some(&mut cache)).map_err(to_candle)?;
        rows.push(out.squeeze(0)?.squeeze(0)?.to_vec1::<f32>()?);
    }
    Ok(rows)
}

/// Greedy continuation of `prompt` through the KV cache; stops after EOS (kept) or `max_new`.
pub fn greedy(llama: &Llama, prompt: &[u32], max_new: usize, eos: Option<u32>) -> candle_core::Result<Vec<u32>> {
    let mut cache = KvCache::new(llama.config());
    let input = Tensor::new(prompt, llama.device())?.unsqueeze(0)?;
    // Only the last prompt position's logits are needed: the output projection is skipped for the rest.
    let out = llama.forward_from(&input, Some(&mut cache), prompt.len().saturating_sub(1)).map_err(to_candle)?;
    let mut last = out.squeeze(0)?.squeeze(0)?.to_vec1::<f32>()?;
    let mut generated = Vec::with_capacity(max_new);
    while generated.len() < max_new {
        let next = argmax(&last);
        generated.push(next);
        if Some(next) == eos || generated.len() == max_new {
            break;
        }
        let input = Tensor::new(&[next], llama.device())?.unsqueeze(0)?;
        last = llama.forward(&input, Some(&mut cache)).map_err(to_candle)?.squeeze(0)?.squeeze(0)?.to_vec1::<f32>()?;
    }
    Ok(generated)
}

/// Index of the largest logit; the lowest id wins a tie, as in [`crate::stats::top_k`].
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

fn to_candle(e: crate::model::ModelError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// Largest |a − b| over two sets of rows (NaN-propagating: a NaN is never "close").
pub fn max_abs_delta(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, usize) {
    let mut worst = 0.0f64;
    let mut n = 0;
    for (ra, rb) in a.iter().zip(b) {
        for (&x, &y) in ra.iter().zip(rb) {
            let d = (x as f64 - y as f64).abs();
            if d.is_nan() {
                return (f64::NAN, n);
            }
            worst = worst.max(d);
            n += 1;
        }
    }
    if a.len() != b.len() {
        return (f64::INFINITY, n);
    }
    (worst, n)
}
