//! Measuring one sweep: the clean parent's distributions over the evaluation slice once
//! ([`Reference`]), then each (bit class, rate, seed) point's damage against it ([`run`]).

use crate::model::{Llama, LoadOptions, Weights};
use crate::run::{logits, EvalSlice};
use crate::stats::{compare_full, log_softmax, PositionCompare, SetStats};
use crate::tokenizer::TextTokenizer;
use crate::transform::flip::{
    corrupt_weights, BitClass, FlipError, FlipList, Region, Severity, Target,
};
use serde::Serialize;

/// Top-k of the comparison (as drift claims use).
const TOP_K: usize = 10;

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The evaluation slice could not be tokenized into chunks.
    #[error("{0}")]
    Slice(String),
    /// A forward pass or load failed.
    #[error("{what}: {reason}")]
    Model {
        /// Which model or point.
        what: String,
        reason: String,
    },
    /// A point's flips could not be planned.
    #[error("{point}: {source}")]
    Flip {
        /// The point (bit class, severity, seed).
        point: String,
        /// Why (boxed: the error stays small on the paths that never fail).
        #[source]
        source: Box<FlipError>,
    },
    /// A sweep with nothing to measure.
    #[error("nothing to sweep: {0}")]
    Empty(&'static str),
}

/// What to sweep: every bit class at every rate, `seeds` seeds each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSpec {
    /// Bit classes (one line each in the plots).
    pub bits: Vec<BitClass>,
    /// Region the flips land in.
    pub region: Region,
    /// Rates in flips per billion weights of the region, ascending.
    pub rates: Vec<u64>,
    /// Seeds per point (0, 1, …): the spread band.
    pub seeds: u64,
}

/// One measured point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Bit class.
    pub bits: BitClass,
    /// Flips per billion weights.
    pub rate: u64,
    pub seed: u64,
    /// Flips made.
    pub flips: usize,
    /// Perplexity of the damaged model over the slice (infinite when a logit is not finite).
    pub ppl: f64,
    /// Its ratio to the clean parent's.
    pub ppl_ratio: f64,
    /// Mean per-position KL (clean ‖ damaged), nats.
    pub kl_mean: f64,
    /// 99th percentile per-position KL.
    pub kl_p99: f64,
    /// Share of positions whose top-1 token is the clean model's.
    pub top1: f64,
}

/// One damaged model measured against the clean parent (a [`Point`] without its axis).
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// What was flipped.
    pub flips: FlipList,
    /// Perplexity of the damaged model over the windows (infinite when a logit is not finite).
    pub ppl: f64,
    /// Its ratio to the clean parent's.
    pub ppl_ratio: f64,
    /// Mean per-position KL (clean ‖ damaged), nats.
    pub kl_mean: f64,
    /// 99th percentile per-position KL.
    pub kl_p99: f64,
    /// Share of positions whose top-1 token is the clean model's.
    pub top1: f64,
}

/// The clean parent over the slice: its chunks, logits at the scored positions, perplexity.
pub struct Reference {
    chunks: Vec<Vec<u32>>,
    scored: std::ops::Range<usize>,
    rows: Vec<Vec<Vec<f32>>>,
    /// The parent's perplexity over the scored tokens.
    pub ppl: f64,
}

fn model_err(what: &str) -> impl Fn(String) -> SweepError + '_ {
    move |reason| SweepError::Model {
        what: what.to_string(),
        reason,
    }
}

/// Logits of `llama` at the scored positions of every chunk.
fn scored_rows(
    llama: &Llama,
    chunks: &[Vec<u32>],
    scored: &std::ops::Range<usize>,
    what: &str,
) -> Result<Vec<Vec<Vec<f32>>>, SweepError> {
    chunks
        .iter()
        .map(|c| {
            logits(llama, c)
                .map(|rows| rows[scored.clone()].to_vec())
                .map_err(|e| model_err(what)(format!("forward: {e}")))
        })
        .collect()
}

/// Negative log-likelihood of each scored token given its rows.
fn nll(rows: &[Vec<Vec<f32>>], chunks: &[Vec<u32>], scored: &std::ops::Range<usize>) -> Vec<f64> {
    let mut out = Vec::new();
    for (r, c) in rows.iter().zip(chunks) {
        for (k, i) in scored.clone().enumerate() {
            out.push(-log_softmax(&r[k])[c[i + 1] as usize]);
        }
    }
    out
}

/// Perplexity where any non-finite log-likelihood (a NaN or infinite logit) makes it infinite:
/// a model that cannot score a token has no finite perplexity.
fn ppl_or_inf(nll: &[f64]) -> f64 {
    match nll.iter().all(|x| x.is_finite()) && !nll.is_empty() {
        true => (nll.iter().sum::<f64>() / nll.len() as f64).exp(),
        false => f64::INFINITY,
    }
}

/// The first `chunks` windows of `ctx` tokens of the slice, llama.cpp's way (as
/// `run::perplexity` scores them): the first token of each replaced by BOS when the
/// tokenizer adds one; rows `ctx/2 .. ctx-1` are scored.
fn windows(
    tok: &dyn TextTokenizer,
    slice: &EvalSlice,
    chunks: usize,
) -> Result<Vec<Vec<u32>>, SweepError> {
    let ids = tok
        .encode_plain(&slice.text)
        .map_err(|e| SweepError::Slice(format!("tokenize the evaluation slice: {e}")))?;
    let n = chunks.clamp(1, slice.chunks);
    if ids.len() < n * slice.ctx {
        return Err(SweepError::Slice(format!(
            "the evaluation slice tokenizes to {} tokens, fewer than {n} × {}",
            ids.len(),
            slice.ctx
        )));
    }
    let bos =
        match tok.add_bos() {
            true => Some(tok.bos().ok_or_else(|| {
                SweepError::Slice("the tokenizer adds BOS but has no BOS id".into())
            })?),
            false => None,
        };
    Ok((0..n)
        .map(|c| {
            let mut w = ids[c * slice.ctx..(c + 1) * slice.ctx].to_vec();
            if let Some(b) = bos {
                w[0] = b;
            }
            w
        })
        .collect())
}

impl Reference {
    /// Runs the clean `parent` over `chunks` of `slice` (`chunks` of its windows, fewer
    /// than the slice holds to keep a sweep cheap).
    pub fn new(
        parent: &Weights,
        tok: &dyn TextTokenizer,
        slice: &EvalSlice,
        chunks: usize,
    ) -> Result<Reference, SweepError> {
        let all = windows(tok, slice, chunks)?;
        let scored = slice.ctx / 2..slice.ctx - 1;
        let llama = Llama::load(parent, &LoadOptions::default())
            .map_err(|e| model_err("the clean parent")(format!("load: {e}")))?;
        let rows = scored_rows(&llama, &all, &scored, "the clean parent")?;
        let ppl = ppl_or_inf(&nll(&rows, &all, &scored));
        if !ppl.is_finite() {
            return Err(model_err("the clean parent")(format!(
                "its perplexity over the slice is {ppl}"
            )));
        }
        Ok(Reference {
            chunks: all,
            scored,
            rows,
            ppl,
        })
    }

    /// Scored positions compared per point.
    pub fn positions(&self) -> usize {
        self.chunks.len() * self.scored.len()
    }

    /// Damages `parent` at one point of a rate sweep and measures it against the clean rows.
    pub fn measure(
        &self,
        parent: &Weights,
        region: Region,
        bits: BitClass,
        rate: u64,
        seed: u64,
    ) -> Result<Point, SweepError> {
        let d = self.damage(
            parent,
            &Target::class(bits, region),
            Severity::Rate(rate),
            seed,
        )?;
        Ok(Point {
            bits,
            rate,
            seed,
            flips: d.flips.flips.len(),
            ppl: d.ppl,
            ppl_ratio: d.ppl_ratio,
            kl_mean: d.kl_mean,
            kl_p99: d.kl_p99,
            top1: d.top1,
        })
    }

    /// Flips the bits `target`, `severity` and `seed` select in `parent` (the seeded flips
    /// a variant of that name makes) and measures the damaged model against the clean rows.
    pub fn damage(
        &self,
        parent: &Weights,
        target: &Target,
        severity: Severity,
        seed: u64,
    ) -> Result<Damage, SweepError> {
        let what = format!("{} at {}, seed {seed}", target.bits_name, severity.name());
        let (w, flips) =
            corrupt_weights(parent, target, severity, seed).map_err(|source| SweepError::Flip {
                point: what.clone(),
                source: Box::new(source),
            })?;
        let llama = Llama::load(&w, &LoadOptions::default())
            .map_err(|e| model_err(&what)(format!("load: {e}")))?;
        let rows = scored_rows(&llama, &self.chunks, &self.scored, &what)?;
        let positions: Vec<PositionCompare> = self
            .rows
            .iter()
            .zip(&rows)
            .flat_map(|(a, b)| a.iter().zip(b))
            .map(|(x, y)| compare_full(&log_softmax(x), &log_softmax(y), TOP_K))
            .collect();
        let s = SetStats::of(&positions);
        let ppl = ppl_or_inf(&nll(&rows, &self.chunks, &self.scored));
        Ok(Damage {
            flips,
            ppl,
            ppl_ratio: ppl / self.ppl,
            kl_mean: s.kl.mean,
            kl_p99: s.kl.p99,
            top1: s.top1_agreement,
        })
    }
}

/// Every point of `spec` on `parent`, in (bits, rate, seed) order; `tick` after each.
pub fn run(
    parent: &Weights,
    reference: &Reference,
    spec: &SweepSpec,
    mut tick: impl FnMut(&Point),
) -> Result<Vec<Point>, SweepError> {
    if spec.bits.is_empty() || spec.rates.is_empty() || spec.seeds == 0 {
        return Err(SweepError::Empty(
            "give at least one bit class, one rate and one seed",
        ));
    }
    let mut out = Vec::new();
    for &bits in &spec.bits {
        for &rate in &spec.rates {
            for seed in 0..spec.seeds {
                let p = reference.measure(parent, spec.region, bits, rate, seed)?;
                tick(&p);
                out.push(p);
            }
        }
    }
    Ok(out)
}
