//! [`GenerationRecord`]s from a model: each problem's prompt continued through
//! [`crate::run::generate`] under a record's [`Decoding`], with the per-token entropies and
//! top-1 probabilities of the distributions the tokens were chosen from.
//!
//! Reproducible per record: a sampled record draws from its own seed (the run's seed mixed
//! with the problem id, written into the record's `decoding.seed`), so a record does not
//! depend on which other problems were generated or in what order.

use super::{generate_batch, Options, RunError, Sampler, Sampling, StopReason};
use crate::metrics::{Decoding, GenerationRecord};
use crate::model::Llama;
use crate::problems::Problem;
use crate::rng::SeededRng;
use crate::tokenizer::TextTokenizer;

/// Why records could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The decoding cannot be run as given.
    #[error("decoding: {0}")]
    Decoding(String),
    /// A prompt could not be tokenized, or a completion decoded.
    #[error("problem {id}: {op}: {source}")]
    Tokenize {
        /// The problem.
        id: String,
        /// What the tokenizer was doing ("tokenize the prompt", "decode the completion").
        op: &'static str,
        /// The tokenizer's error (boxed, as in [`RunError::Tokenize`]).
        #[source]
        source: Box<crate::tokenizer::TokenizerError>,
    },
    /// The model failed.
    #[error("problem {id}: {source}")]
    Run {
        /// The problem.
        id: String,
        /// What failed (boxed: it is large and this error is returned on every record).
        #[source]
        source: Box<RunError>,
    },
}

/// The model × variant labels records carry.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    pub model: &'a str,
    pub variant: &'a str,
}

/// What `decoding` asks of the generator (its seed as given), or why it cannot be run:
/// `greedy` takes no sampling parameter, `sample` needs a seed and a temperature > 0.
pub fn options_of(d: &Decoding, eos: Option<u32>) -> Result<Options, GenerateError> {
    let bad = |m: String| GenerateError::Decoding(m);
    let max_new =
        d.max_new_tokens
            .ok_or_else(|| bad("max_new_tokens is required to generate".into()))? as usize;
    if max_new == 0 {
        return Err(bad("max_new_tokens must be at least 1".into()));
    }
    let sampler = match d.strategy.as_str() {
        "greedy" => match (d.temperature, d.top_k, d.top_p, d.repetition_penalty, d.seed) {
            (None, None, None, None, None) => Sampler::Greedy,
            _ => return Err(bad("greedy takes no temperature, top_k, top_p, repetition_penalty or seed (use strategy \"sample\")".into())),
        },
        "sample" => {
            let seed = d.seed.ok_or_else(|| bad("sample needs a seed".into()))?;
            let temperature = d.temperature.ok_or_else(|| bad("sample needs a temperature".into()))?;
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(bad(format!("temperature {temperature} is not > 0")));
            }
            if d.top_k == Some(0) {
                return Err(bad("top_k must be at least 1".into()));
            }
            if let Some(p) = d.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                return Err(bad(format!("top_p {p} is not in (0, 1]")));
            }
            let repetition_penalty = d.repetition_penalty.unwrap_or(1.0);
            if !(repetition_penalty.is_finite() && repetition_penalty > 0.0) {
                return Err(bad(format!("repetition_penalty {repetition_penalty} is not > 0")));
            }
            Sampler::Seeded(Sampling { seed, temperature, top_k: d.top_k.map(|k| k as usize), top_p: d.top_p, repetition_penalty })
        }
        other => return Err(bad(format!("strategy '{}': the harness generates with \"greedy\" or \"sample\"", crate::excerpt::excerpt(other)))),
    };
    Ok(Options {
        max_new,
        eos,
        sampler,
    })
}

/// The seed record `id` samples with under the run's `seed`.
pub fn record_seed(seed: u64, id: &str) -> u64 {
    SeededRng::for_stream(seed, &format!("generate/{id}")).next_u64()
}

/// One record per problem, in order, id `{model}/{variant}/{problem id}` (unique when
/// several variants' records share a file); `done` is called with the number of records
/// made so far. Problems are generated `batch` at a time ([`generate_batch`]: the same
/// tokens as one at a time). The prompt is tokenized as SFT tokenized it (the tokenizer's
/// BOS only when it asks for one); generation stops at the tokenizer's end token, which
/// the completion's text leaves out (its entropy stays: it was generated).
pub fn generate_records(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    problems: &[Problem],
    decoding: &Decoding,
    labels: Labels,
    batch: usize,
    done: &mut dyn FnMut(usize),
) -> Result<Vec<GenerationRecord>, GenerateError> {
    if batch == 0 {
        return Err(GenerateError::Decoding("batch must be at least 1".into()));
    }
    let base = options_of(decoding, tok.eos())?;
    let mut out = Vec::with_capacity(problems.len());
    for chunk in problems.chunks(batch) {
        let mut jobs = Vec::with_capacity(chunk.len());
        for p in chunk {
            jobs.push(job(tok, p, &base, decoding)?);
        }
        let inputs: Vec<(&[u32], Options)> = jobs.iter().map(|j| (&j.ids[..], j.opts)).collect();
        let gens = generate_batch(llama, tok, &inputs).map_err(|source| GenerateError::Run {
            id: chunk_ids(chunk),
            source: Box::new(source),
        })?;
        for ((p, j), g) in chunk.iter().zip(jobs).zip(gens) {
            let kept = match g.stop {
                StopReason::Eos => &g.tokens[..g.tokens.len() - 1],
                StopReason::MaxTokens => &g.tokens[..],
            };
            let completion = tok.decode(kept).map_err(|e| GenerateError::Tokenize {
                id: p.id.clone(),
                op: "decode the completion",
                source: Box::new(e),
            })?;
            out.push(GenerationRecord {
                id: format!("{}/{}/{}", labels.model, labels.variant, p.id),
                model: labels.model.to_string(),
                variant: labels.variant.to_string(),
                prompt: j.prompt,
                completion,
                reference_answer: p.answer().to_string(),
                token_entropies: Some(g.entropies),
                top1_probs: Some(g.top1_probs),
                decoding: j.decoding,
            });
        }
        done(out.len());
    }
    Ok(out)
}

/// One problem ready to generate: its prompt, ids, options and the decoding its record
/// states (a sampled record's own seed).
struct Job {
    prompt: String,
    ids: Vec<u32>,
    opts: Options,
    decoding: Decoding,
}

fn job(
    tok: &dyn TextTokenizer,
    p: &Problem,
    base: &Options,
    decoding: &Decoding,
) -> Result<Job, GenerateError> {
    let prompt = p.prompt();
    let mut ids: Vec<u32> = tok.bos().filter(|_| tok.add_bos()).into_iter().collect();
    ids.extend(tok.encode(&prompt).map_err(|e| GenerateError::Tokenize {
        id: p.id.clone(),
        op: "tokenize the prompt",
        source: Box::new(e),
    })?);
    let (opts, decoding) = match base.sampler {
        Sampler::Greedy => (*base, decoding.clone()),
        Sampler::Seeded(s) => {
            let seed = record_seed(s.seed, &p.id);
            (
                Options {
                    sampler: Sampler::Seeded(Sampling { seed, ..s }),
                    ..*base
                },
                Decoding {
                    seed: Some(seed),
                    ..decoding.clone()
                },
            )
        }
    };
    Ok(Job {
        prompt,
        ids,
        opts,
        decoding,
    })
}

/// The ids of a batch's problems, for a message about the batch.
fn chunk_ids(chunk: &[Problem]) -> String {
    match chunk {
        [one] => one.id.clone(),
        _ => chunk
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(f: impl FnOnce(&mut Decoding)) -> Result<Options, GenerateError> {
        let mut d = Decoding {
            strategy: "sample".into(),
            temperature: Some(0.3),
            top_k: Some(25),
            top_p: Some(0.8),
            repetition_penalty: Some(1.3),
            seed: Some(7),
            max_new_tokens: Some(64),
        };
        f(&mut d);
        options_of(&d, Some(3))
    }

    #[test]
    fn decodings_map_to_options_or_are_refused() {
        let o = sample(|_| {}).unwrap();
        assert_eq!(o.max_new, 64);
        assert_eq!(
            o.sampler,
            Sampler::Seeded(Sampling {
                seed: 7,
                temperature: 0.3,
                top_k: Some(25),
                top_p: Some(0.8),
                repetition_penalty: 1.3
            })
        );
        assert_eq!(
            options_of(&Decoding::greedy(Some(8)), None)
                .unwrap()
                .sampler,
            Sampler::Greedy
        );
        for (f, want) in [
            (
                Box::new(|d: &mut Decoding| d.seed = None) as Box<dyn FnOnce(&mut Decoding)>,
                "needs a seed",
            ),
            (
                Box::new(|d: &mut Decoding| d.temperature = Some(0.0)),
                "temperature 0",
            ),
            (
                Box::new(|d: &mut Decoding| d.top_p = Some(1.5)),
                "top_p 1.5",
            ),
            (Box::new(|d: &mut Decoding| d.top_k = Some(0)), "top_k"),
            (
                Box::new(|d: &mut Decoding| d.max_new_tokens = None),
                "max_new_tokens",
            ),
            (
                Box::new(|d: &mut Decoding| d.strategy = "beam".into()),
                "strategy 'beam'",
            ),
            (
                Box::new(|d: &mut Decoding| d.strategy = "greedy".into()),
                "greedy takes no",
            ),
        ] {
            let e = sample(f).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert_ne!(record_seed(7, "a"), record_seed(7, "b"));
        assert_eq!(record_seed(7, "a"), record_seed(7, "a"));
    }

    #[test]
    fn records_of_tiny_1m_are_deterministic_and_read_back_strictly() {
        let folder = crate::project::Project::from_manifest().path("models/tiny_1m");
        let llama = Llama::load(
            &crate::model::load_hf_folder(&folder).unwrap(),
            &Default::default(),
        )
        .unwrap();
        let tok = crate::tokenizer::HfTokenizer::from_folder(&folder).unwrap();
        let space = crate::problems::ProblemSpace {
            max_operand: 9,
            heldout_percent: 20,
            split_seed: 5,
            max_level: 2,
        };
        let problems = space
            .problems(crate::problems::Split::HeldOut, &[1, 2], 3, 1)
            .unwrap();
        let labels = Labels {
            model: "tiny_1m",
            variant: "base",
        };
        let run = |d: &Decoding| {
            generate_records(&llama, &tok, &problems, d, labels, 4, &mut |_| {}).unwrap()
        };
        let greedy = run(&Decoding::greedy(Some(12)));
        assert_eq!(greedy, run(&Decoding::greedy(Some(12))));
        let mut d = Decoding::greedy(Some(12));
        d.strategy = "sample".into();
        (
            d.temperature,
            d.top_k,
            d.top_p,
            d.repetition_penalty,
            d.seed,
        ) = (Some(0.3), Some(25), Some(0.8), Some(1.3), Some(11));
        let sampled = run(&d);
        assert_eq!(sampled, run(&d));
        for (r, p) in sampled.iter().zip(&problems) {
            assert_eq!(
                (r.id.clone(), r.reference_answer.clone()),
                (format!("tiny_1m/base/{}", p.id), p.answer().to_string())
            );
            assert_eq!(r.decoding.seed, Some(record_seed(11, &p.id)));
            let (h, t) = (
                r.token_entropies.as_ref().unwrap(),
                r.top1_probs.as_ref().unwrap(),
            );
            assert!(!h.is_empty() && h.len() <= 12 && h.len() == t.len());
        }
        let text = crate::metrics::records_jsonl(&sampled);
        assert_eq!(
            crate::metrics::parse_records(text.as_bytes(), std::path::Path::new("r.jsonl"))
                .unwrap(),
            sampled
        );
    }
}
