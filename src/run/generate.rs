//! Generation through the KV cache: greedy decoding and seeded sampling (temperature,
//! top-k, top-p, repetition penalty), returning the tokens, their text, why it stopped and,
//! for each token, the entropy and top-1 probability of the model's distribution it was
//! chosen from.
//!
//! Reproducible: greedy breaks ties towards the lower id (as [`crate::stats::top_k`]
//! does), and sampling draws every uniform from the harness's own [`SeededRng`] and sums
//! probabilities in id order.

use super::RunError;
use crate::model::{KvCache, Llama};
use crate::rng::SeededRng;
use crate::tokenizer::TextTokenizer;
use candle_core::Tensor;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// The most likely token; the lowest id wins a tie.
    Greedy,
    /// Drawn from the model's distribution, reshaped by the parameters.
    Seeded(Sampling),
}

/// Seeded sampling's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Seed of the uniform draws.
    pub seed: u64,
    /// Divides the logits (> 0).
    pub temperature: f64,
    /// Keep only the `k` most likely ids.
    pub top_k: Option<usize>,
    /// Keep the fewest most likely ids whose probability reaches `p` (0 < p ≤ 1).
    pub top_p: Option<f64>,
    /// Logits of ids already in the sequence are divided by this when positive and
    /// multiplied when negative (1: no penalty), as llama.cpp and transformers do.
    pub repetition_penalty: f64,
}

impl Sampling {
    /// Plain temperature sampling with `seed`.
    pub fn temperature(seed: u64, temperature: f64) -> Sampling {
        Sampling {
            seed,
            temperature,
            top_k: None,
            top_p: None,
            repetition_penalty: 1.0,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// At most this many new tokens.
    pub max_new: usize,
    /// Stop after this token (kept), when given.
    pub eos: Option<u32>,
    /// How tokens are chosen.
    pub sampler: Sampler,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The end-of-sequence token was generated (it is the last token).
    Eos,
    /// `max_new` tokens were generated.
    MaxTokens,
}

/// A generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The new tokens.
    pub tokens: Vec<u32>,
    /// Their text (`(undecodable: …)` when the tokenizer cannot decode them).
    pub text: String,
    /// Why it stopped.
    pub stop: StopReason,
    /// Entropy (nats) of the model's next-token distribution at each step, at temperature 1.
    pub entropies: Vec<f64>,
    /// Probability the model gave its most likely token at each step.
    pub top1_probs: Vec<f64>,
}

/// Continues `prompt` (already tokenized, BOS included when the model wants it).
pub fn generate(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    prompt: &[u32],
    opts: &Options,
) -> Result<Generation, RunError> {
    let seed = match opts.sampler {
        Sampler::Greedy => 0,
        Sampler::Seeded(s) => s.seed,
    };
    let mut rng = SeededRng::new(seed);
    generate_with(llama, tok, prompt, opts, &mut || rng.uniform_f64())
}

/// [`generate`], seeded sampling drawing its uniforms from `uniform` rather than from a
/// generator seeded with the sampler's seed (tests plant a faulty source with it).
pub fn generate_with(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    prompt: &[u32],
    opts: &Options,
    uniform: &mut dyn FnMut() -> f64,
) -> Result<Generation, RunError> {
    let mut cache = KvCache::new(llama.config());
    let mut s = Stream::new(prompt, *opts, prefill(llama, prompt, &mut cache)?);
    while let Some(next) = s.advance(uniform) {
        let input = Tensor::new(&[next], llama.device())?.unsqueeze(0)?;
        s.last = llama
            .forward(&input, Some(&mut cache))?
            .squeeze(0)?
            .squeeze(0)?
            .to_vec1::<f32>()?;
    }
    Ok(s.finish(tok))
}

/// Feeds `prompt` (non-empty) into an empty `cache`: the logits after its last token. Only
/// the last position's logits are needed: the output projection is skipped for the rest.
pub(super) fn prefill(
    llama: &Llama,
    prompt: &[u32],
    cache: &mut KvCache,
) -> Result<Vec<f32>, RunError> {
    if prompt.is_empty() {
        return Err(RunError::EmptyPrompt("(generation)".into()));
    }
    let input = Tensor::new(prompt, llama.device())?.unsqueeze(0)?;
    Ok(llama
        .forward_from(&input, Some(cache), prompt.len() - 1)?
        .squeeze(0)?
        .squeeze(0)?
        .to_vec1::<f32>()?)
}

/// One sequence under generation, a token at a time: [`generate_with`] drives one, the
/// batched generator many, through the same choice of each token.
pub(super) struct Stream<'a> {
    prompt: &'a [u32],
    opts: Options,
    /// The logits the next token is chosen from.
    pub(super) last: Vec<f32>,
    out: Generation,
}

impl<'a> Stream<'a> {
    pub(super) fn new(prompt: &'a [u32], opts: Options, last: Vec<f32>) -> Stream<'a> {
        Stream {
            prompt,
            opts,
            last,
            out: Generation {
                tokens: Vec::with_capacity(opts.max_new),
                text: String::new(),
                stop: StopReason::MaxTokens,
                entropies: vec![],
                top1_probs: vec![],
            },
        }
    }

    /// Chooses the next token from `last` (drawing from `uniform` when sampling) and
    /// returns it when the model must be run on it, `None` once the sequence is finished
    /// (EOS, which is kept, or `max_new` tokens).
    pub(super) fn advance(&mut self, uniform: &mut dyn FnMut() -> f64) -> Option<u32> {
        if self.out.tokens.len() >= self.opts.max_new || self.out.stop == StopReason::Eos {
            return None;
        }
        let (entropy, top1) = entropy_and_top1(&self.last);
        self.out.entropies.push(entropy);
        self.out.top1_probs.push(top1);
        let next = match self.opts.sampler {
            Sampler::Seeded(s) => choose(&self.last, &s, self.prompt, &self.out.tokens, uniform()),
            Sampler::Greedy => argmax(&self.last),
        };
        self.out.tokens.push(next);
        if Some(next) == self.opts.eos {
            self.out.stop = StopReason::Eos;
            return None;
        }
        (self.out.tokens.len() < self.opts.max_new).then_some(next)
    }

    /// The generation, its text decoded.
    pub(super) fn finish(mut self, tok: &dyn TextTokenizer) -> Generation {
        self.out.text = tok
            .decode(&self.out.tokens)
            .unwrap_or_else(|e| format!("(undecodable: {e})"));
        self.out
    }
}

/// Greedy continuation of `prompt`: stops after EOS (kept) or `max_new` tokens.
pub fn greedy(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    prompt: &[u32],
    max_new: usize,
    eos: Option<u32>,
) -> Result<Generation, RunError> {
    generate(
        llama,
        tok,
        prompt,
        &Options {
            max_new,
            eos,
            sampler: Sampler::Greedy,
        },
    )
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

/// Index drawn from `softmax(logits / temperature)` with the uniform `u` in `[0, 1)`: the
/// first id whose cumulative probability (f64, in id order) exceeds `u`.
pub fn draw(logits: &[f32], temperature: f64, u: f64) -> u32 {
    draw_kept(logits, temperature, u, None)
}

/// [`draw`] over the ids `keep` allows (all when `None`).
fn draw_kept(logits: &[f32], temperature: f64, u: f64, keep: Option<&[bool]>) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let w: Vec<f64> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| match keep.is_none_or(|k| k[i]) {
            true => ((l as f64 - max) / temperature).exp(),
            false => 0.0,
        })
        .collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    for (i, x) in w.iter().enumerate() {
        acc += x / total;
        if u < acc {
            return i as u32;
        }
    }
    // Rounding can leave the running sum a hair below 1: the last id with weight takes it.
    w.iter().rposition(|&x| x > 0.0).unwrap_or(0) as u32
}

/// The next token under `s`: repetition penalty on the ids seen so far, then top-k and
/// top-p (over the tempered distribution), then a draw with `u`.
fn choose(logits: &[f32], s: &Sampling, prompt: &[u32], generated: &[u32], u: f64) -> u32 {
    let filtered = s.top_k.is_some() || s.top_p.is_some();
    if s.repetition_penalty == 1.0 && !filtered {
        return draw(logits, s.temperature, u);
    }
    let mut l = logits.to_vec();
    if s.repetition_penalty != 1.0 {
        for &id in prompt.iter().chain(generated) {
            if let Some(x) = l.get_mut(id as usize) {
                *x = if *x > 0.0 {
                    *x / s.repetition_penalty as f32
                } else {
                    *x * s.repetition_penalty as f32
                };
            }
        }
    }
    if !filtered {
        return draw(&l, s.temperature, u);
    }
    let keep = kept(&l, s);
    draw_kept(&l, s.temperature, u, Some(&keep))
}

/// Which ids top-k and top-p keep (ranked by logit, ties to the lower id).
fn kept(logits: &[f32], s: &Sampling) -> Vec<bool> {
    let lp: Vec<f64> = logits.iter().map(|&x| x as f64 / s.temperature).collect();
    let k = s.top_k.unwrap_or(lp.len()).clamp(1, lp.len().max(1));
    let ranked = crate::stats::top_k(&lp, k);
    let mut keep = vec![false; logits.len()];
    let max = ranked.first().map_or(0.0, |&i| lp[i as usize]);
    let total: f64 = ranked.iter().map(|&i| (lp[i as usize] - max).exp()).sum();
    let mut mass = 0.0;
    for &i in &ranked {
        keep[i as usize] = true;
        mass += (lp[i as usize] - max).exp() / total;
        if s.top_p.is_some_and(|p| mass >= p) {
            break;
        }
    }
    keep
}

/// Entropy (nats) and largest probability of `softmax(row)`.
fn entropy_and_top1(row: &[f32]) -> (f64, f64) {
    let lp = crate::stats::log_softmax(row);
    let entropy = -lp
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| x.exp() * x)
        .sum::<f64>();
    let top1 = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max).exp();
    (entropy, top1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_follows_the_distribution_edges() {
        let l = [0.0f32, 0.0, f32::NEG_INFINITY, 0.0];
        assert_eq!(draw(&l, 1.0, 0.0), 0);
        assert_eq!(draw(&l, 1.0, 0.34), 1);
        assert_eq!(draw(&l, 1.0, 0.67), 3);
        assert_eq!(draw(&l, 1.0, 0.999_999_999_999), 3);
        // A low temperature concentrates on the maximum.
        assert_eq!(draw(&[1.0, 2.0, 1.5], 0.01, 0.9), 1);
    }

    #[test]
    fn filters_keep_what_they_say() {
        let l = [1.0f32, 3.0, 2.0, 0.0];
        let s = |k, p| Sampling {
            seed: 0,
            temperature: 1.0,
            top_k: k,
            top_p: p,
            repetition_penalty: 1.0,
        };
        assert_eq!(kept(&l, &s(Some(2), None)), [false, true, true, false]);
        // p(3.0) ≈ 0.64 < 0.7 ≤ p(3.0) + p(2.0): two ids.
        assert_eq!(kept(&l, &s(None, Some(0.7))), [false, true, true, false]);
        assert_eq!(kept(&l, &s(None, Some(0.5))), [false, true, false, false]);
        // Only kept ids are ever drawn, whatever the uniform.
        for u in [0.0, 0.3, 0.6, 0.999] {
            assert!(matches!(choose(&l, &s(Some(2), None), &[], &[], u), 1 | 2));
        }
        // A repetition penalty moves mass away from ids already seen.
        let penalized = Sampling {
            repetition_penalty: 100.0,
            ..s(Some(1), None)
        };
        assert_eq!(choose(&l, &penalized, &[1], &[], 0.5), 2);
    }

    #[test]
    fn entropy_of_uniform_is_log_n() {
        let (h, p) = entropy_and_top1(&[0.0; 8]);
        assert!((h - 8f64.ln()).abs() < 1e-12 && (p - 0.125).abs() < 1e-12);
    }
}
