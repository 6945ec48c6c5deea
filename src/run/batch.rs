//! Batched generation: many prompts continued together, each with its own KV cache and
//! positions. Each prompt is fed alone (its prefill is exactly [`super::generate`]'s); then
//! every step runs the next token of every unfinished sequence in one forward pass
//! ([`Llama::forward_step`]), whose rows are bit for bit the single-sequence logits. Each
//! sequence chooses its tokens as [`super::generate`] does, sampling from its own seed, so
//! the tokens of a sequence do not depend on the batch size or on its neighbours.

use super::generate::{prefill, Stream};
use super::{Generation, Options, RunError, Sampler};
use crate::model::{KvCache, Llama};
use crate::rng::SeededRng;
use crate::tokenizer::TextTokenizer;
use rayon::prelude::*;

/// The batch size `generate` and `study` use unless told otherwise, and the harness's.
pub const DEFAULT_BATCH: usize = 16;

/// Continues each `(prompt, options)` (prompts already tokenized, BOS included when the
/// model wants it); the result is in the same order, each equal to [`super::generate`]'s.
pub fn generate_batch(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    jobs: &[(&[u32], Options)],
) -> Result<Vec<Generation>, RunError> {
    let mut caches: Vec<KvCache> = jobs.iter().map(|_| KvCache::new(llama.config())).collect();
    let mut rngs: Vec<SeededRng> = jobs
        .iter()
        .map(|(_, o)| {
            SeededRng::new(match o.sampler {
                Sampler::Greedy => 0,
                Sampler::Seeded(s) => s.seed,
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(jobs.len());
    for ((prompt, opts), cache) in jobs.iter().zip(caches.iter_mut()) {
        streams.push(Stream::new(prompt, *opts, prefill(llama, prompt, cache)?));
    }
    loop {
        // The sequences that go on, with the token each feeds next. Choosing a token (a
        // softmax over the vocabulary in f64) costs a small model more than its step does;
        // each sequence chooses from its own logits and seed, so they choose in parallel.
        let feed: Vec<(usize, u32)> = streams
            .par_iter_mut()
            .zip(rngs.par_iter_mut())
            .enumerate()
            .filter_map(|(i, (s, rng))| s.advance(&mut || rng.uniform_f64()).map(|t| (i, t)))
            .collect();
        if feed.is_empty() {
            break;
        }
        let ids: Vec<u32> = feed.iter().map(|&(_, t)| t).collect();
        let mut active: Vec<&mut KvCache> = caches
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| feed.iter().any(|(j, _)| j == i))
            .map(|(_, c)| c)
            .collect();
        let rows = llama.forward_step(&ids, &mut active)?;
        for ((i, _), row) in feed.iter().zip(rows) {
            streams[*i].last = row;
        }
    }
    Ok(streams.into_iter().map(|s| s.finish(tok)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{generate, Sampling};
    use crate::tokenizer::{HfTokenizer, TextTokenizer};
    use crate::variant::Variant;

    /// The committed tiny_1m, as stored or as a variant (q8_0 runs the stored-block kernel).
    fn tiny(variant: &str) -> (Llama, HfTokenizer) {
        let folder = crate::project::Project::from_manifest().path("models/tiny_1m");
        let w = crate::model::load_hf_folder(&folder).unwrap();
        let v = Variant::parse(variant).unwrap();
        let w = crate::transform::apply(&w, &v, &[]).unwrap().weights;
        let llama = Llama::load(&w, &Default::default()).unwrap();
        (llama, HfTokenizer::from_folder(&folder).unwrap())
    }

    /// Prompts of 1 to ~60 tokens, and per-prompt budgets, so that sequences finish at
    /// different steps and the batch shrinks as it goes.
    fn jobs(tok: &HfTokenizer, sampler: &dyn Fn(usize) -> Sampler) -> Vec<(Vec<u32>, Options)> {
        let texts = [
            "A",
            "ROMEO:\nWhat light",
            "First Citizen:\nBefore we proceed any further, hear me speak.",
            "3 + 4 =",
            "KING HENRY VI:\nO God! methinks it were a happy life, To be no better than a homely swain;",
            "the",
            "MENENIUS:\nI tell you, friends, most charitable care",
        ];
        let eos = tok.encode("\n").unwrap().first().copied();
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let ids = tok.encode(t).unwrap();
                let opts = Options {
                    max_new: 6 + 5 * i,
                    eos: if i % 2 == 0 { eos } else { None },
                    sampler: sampler(i),
                };
                (ids, opts)
            })
            .collect()
    }

    fn bits(g: &Generation) -> (Vec<u32>, Vec<u64>, Vec<u64>, String) {
        let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect();
        (
            g.tokens.clone(),
            b(&g.entropies),
            b(&g.top1_probs),
            g.text.clone(),
        )
    }

    /// Each job alone through `generate`, then all of them in batches of 1, 3 and 7: the
    /// same tokens, entropies and top-1 probabilities, to the bit.
    fn assert_batch_equals_alone(variant: &str, sampler: &dyn Fn(usize) -> Sampler) {
        let (llama, tok) = tiny(variant);
        let jobs = jobs(&tok, sampler);
        let lens: Vec<usize> = jobs.iter().map(|(p, _)| p.len()).collect();
        assert!(
            lens.iter().min() < Some(&3) && lens.iter().max() > Some(&20),
            "{lens:?}"
        );
        let alone: Vec<_> = jobs
            .iter()
            .map(|(p, o)| bits(&generate(&llama, &tok, p, o).unwrap()))
            .collect();
        let stops: Vec<usize> = alone.iter().map(|a| a.0.len()).collect();
        assert!(stops.windows(2).any(|w| w[0] != w[1]), "{stops:?}");
        for size in [1, 3, 7] {
            let mut got = Vec::new();
            for chunk in jobs.chunks(size) {
                let inputs: Vec<(&[u32], Options)> =
                    chunk.iter().map(|(p, o)| (&p[..], *o)).collect();
                got.extend(
                    generate_batch(&llama, &tok, &inputs)
                        .unwrap()
                        .iter()
                        .map(bits),
                );
            }
            assert_eq!(got, alone, "{variant}, batch {size}");
        }
    }

    #[test]
    fn batched_greedy_gives_each_sequence_its_single_stream_bits() {
        assert_batch_equals_alone("base", &|_| Sampler::Greedy);
        assert_batch_equals_alone("q8_0", &|_| Sampler::Greedy);
    }

    #[test]
    fn batched_sampling_is_seeded_per_sequence_whatever_the_batch() {
        let seeds = |i: usize| {
            Sampler::Seeded(Sampling {
                seed: 1000 + i as u64,
                temperature: 0.3,
                top_k: Some(25),
                top_p: Some(0.8),
                repetition_penalty: 1.3,
            })
        };
        assert_batch_equals_alone("base", &seeds);
        assert_batch_equals_alone("q4_0", &seeds);
    }

    #[test]
    fn the_engine_step_is_what_runs_on_tiny_1m() {
        // The bit-identity above is only about batching if the rows share the engine's step.
        let (llama, _) = tiny("base");
        assert!(llama
            .numerical_path()
            .contains("groundtruth f32 CPU engine"));
        let mut caches = [KvCache::new(llama.config()), KvCache::new(llama.config())];
        let mut prefilled: Vec<Vec<f32>> = Vec::new();
        for (c, p) in caches.iter_mut().zip([&[5u32, 6, 7][..], &[9][..]]) {
            prefilled.push(prefill(&llama, p, c).unwrap());
        }
        let [a, b] = &mut caches;
        let rows = llama.forward_step(&[1, 2], &mut [a, b]).unwrap();
        assert_eq!((rows.len(), caches[0].len(), caches[1].len()), (2, 4, 2));
        // A cache of another batch, or ids and caches that do not pair up, are refused.
        let [a, _] = &mut caches;
        assert!(llama.forward_step(&[1, 2], &mut [a]).is_err());
    }
}
