//! llama.cpp-compatible perplexity ([`perplexity`]): the one scoring rule every claim
//! (`ppl_rel_diff` against an oracle, `ppl_ratio` against a parent) and every command
//! (`ppl`, `bench eval`) uses, usually over the evaluation slice ([`super::EvalSlice`]);
//! and llama.cpp-style KL statistics against an oracle's teacher-forced top-k
//! ([`oracle_kl`]).
//!
//! The scoring rule is llama.cpp's `tools/perplexity/perplexity.cpp`, as
//! `ci/oracle_llamacpp.py` reproduced it for the oracle's `perplexity` record: tokenize
//! the text without parsing special tokens; split it into `chunks` contexts of `ctx`
//! tokens (`tokens[c·ctx .. (c+1)·ctx]`); when the tokenizer adds BOS (its `add_bos`, as
//! llama.cpp asks the model's vocabulary), the chunk's first token is replaced by BOS; run each chunk from an empty cache and score the positions
//! `ctx/2 .. ctx−2` against the next token (`ctx − 1 − ctx/2` tokens a chunk: 255 for
//! 512); ppl = exp(mean NLL), NLL in f64.

use std::time::Instant;

use candle_core::{CpuStorage, Storage, Tensor};
use rayon::prelude::*;
use serde::Serialize;

use super::{eval_seqs, logits};
use crate::model::{Llama, ModelError};
use crate::oracle::Oracle;
use crate::stats::{compare_to_oracle, log_softmax, quantile, SetStats};
use crate::tokenizer::TextTokenizer;

/// Texts larger than this are refused by `groundtruth ppl --text`: the whole text is
/// tokenized at once, which costs tens of times its size in memory (wikitext-2's test
/// split, what llama.cpp's figures use, is 1.3 MB).
pub const MAX_PPL_TEXT_BYTES: u64 = 16 << 20;

/// Why perplexity could not be computed: one line naming the input.
#[derive(Debug, thiserror::Error)]
pub enum PplError {
    /// The context length cannot be scored llama.cpp's way.
    #[error("ctx {0}: must be even and at least 4")]
    Ctx(usize),
    /// The context length is longer than the model's.
    #[error("ctx {ctx}: longer than the model's context of {context} tokens")]
    CtxAboveContext {
        /// Asked for.
        ctx: usize,
        /// The model's `max_position_embeddings`.
        context: usize,
    },
    /// Zero chunks were asked for.
    #[error("chunks 0: at least one chunk must be scored")]
    NoChunks,
    /// The text is shorter than the contexts asked for.
    #[error("the text tokenizes to {tokens} tokens, fewer than {chunks} chunk(s) of {ctx}")]
    TooShort {
        /// Tokens in the text.
        tokens: usize,
        /// Chunks asked for (at least one).
        chunks: usize,
        /// Context length.
        ctx: usize,
    },
    /// BOS is required but the tokenizer has none.
    #[error("add_bos is set but the tokenizer has no BOS id")]
    NoBos,
    /// Tokenizing failed.
    #[error("tokenize: {0}")]
    Tokenize(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// candle failed while moving logits.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Running the model failed.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
}

/// The outcome of [`perplexity`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PplResult {
    /// exp(mean NLL).
    pub ppl: f64,
    /// Mean negative log-likelihood, nats.
    pub nll_mean: f64,
    /// Tokens scored (`chunks · (ctx − 1 − ctx/2)`).
    pub n_scored: usize,
    /// Context length.
    pub ctx: usize,
    /// Contexts evaluated.
    pub chunks: usize,
    /// Tokens the whole text tokenizes to.
    pub n_text_tokens: usize,
    /// SHA-256 of the text's UTF-8 bytes (what an oracle's `text_sha256` names).
    pub text_sha256: String,
    /// Wall time of the forward passes and scoring.
    pub seconds: f64,
    /// Tokens fed (`chunks · ctx`) per second, as llama.cpp reports it.
    pub tokens_per_s: f64,
    /// NLL of each scored position, chunk by chunk.
    #[serde(skip)]
    pub nll: Vec<f64>,
}

/// Perplexity of `text` under `llama`, llama.cpp's way (module docs). `chunks: None`
/// uses every whole context the text holds, as llama.cpp does by default.
/// Whether BOS is added is the tokenizer's to say, never the caller's: one tokenization
/// rule for every claim and command.
pub fn perplexity(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    text: &str,
    ctx: usize,
    chunks: Option<usize>,
) -> Result<PplResult, PplError> {
    perplexity_with(llama, tok, text, ctx, chunks, &mut |_, _, _| {})
}

/// [`perplexity`], calling `progress(chunk, chunks, running_ppl)` after each chunk.
pub fn perplexity_with(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    text: &str,
    ctx: usize,
    chunks: Option<usize>,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<PplResult, PplError> {
    if ctx < 4 || !ctx.is_multiple_of(2) {
        return Err(PplError::Ctx(ctx));
    }
    let context = llama.config().max_position_embeddings;
    if ctx > context {
        return Err(PplError::CtxAboveContext { ctx, context });
    }
    if chunks == Some(0) {
        return Err(PplError::NoChunks);
    }
    let tokens = tok
        .encode_plain(text)
        .map_err(|e| PplError::Tokenize(e.to_string()))?;
    let available = tokens.len() / ctx;
    let n_chunks = chunks.unwrap_or(available);
    if n_chunks == 0 || n_chunks > available {
        return Err(PplError::TooShort {
            tokens: tokens.len(),
            chunks: n_chunks.max(1),
            ctx,
        });
    }
    let bos = if tok.add_bos() {
        Some(tok.bos().ok_or(PplError::NoBos)?)
    } else {
        None
    };
    let first = ctx / 2;
    let t0 = Instant::now();
    let mut nll = Vec::with_capacity(n_chunks * (ctx - 1 - first));
    for c in 0..n_chunks {
        let mut chunk = tokens[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        let input = Tensor::new(chunk.as_slice(), llama.device())?.unsqueeze(0)?;
        // Rows for positions first..ctx; the last one predicts past the chunk and is unused.
        let logits = llama.forward_from(&input, None, first)?;
        let vocab = logits.dim(2)?;
        let targets = &chunk[first + 1..];
        let scored: Vec<f64> = with_data(&logits, |data| {
            data.par_chunks(vocab)
                .zip(targets.par_iter())
                .map(|(row, &t)| row_nll(row, t))
                .collect()
        })?;
        nll.extend(scored);
        progress(
            c + 1,
            n_chunks,
            (nll.iter().sum::<f64>() / nll.len() as f64).exp(),
        );
    }
    let seconds = t0.elapsed().as_secs_f64();
    let nll_mean = nll.iter().sum::<f64>() / nll.len() as f64;
    Ok(PplResult {
        ppl: nll_mean.exp(),
        nll_mean,
        n_scored: nll.len(),
        ctx,
        chunks: n_chunks,
        n_text_tokens: tokens.len(),
        text_sha256: crate::fsutil::sha256_hex(text.as_bytes()),
        seconds,
        tokens_per_s: (n_chunks * ctx) as f64 / seconds,
        nll,
    })
}

/// `f` over a tensor's values, read in place when they are contiguous f32 on the CPU
/// (a 512-token chunk's logits are 50 MB; copying them is avoidable work).
fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R, PplError> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(f(&v[a..b]));
        }
    }
    Ok(f(&t.flatten_all()?.to_vec1::<f32>()?))
}

/// −ln softmax(row)[target] in f64, the max subtracted first (as the oracle script does).
fn row_nll(row: &[f32], target: u32) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&l| (l as f64 - max).exp()).sum();
    max + sum.ln()
        - row
            .get(target as usize)
            .map_or(f64::NEG_INFINITY, |&l| l as f64)
}

/// llama.cpp's `--kl-divergence` summary, computed against an oracle's top-k
/// (KL over the top-k plus one bucket for the rest, per the oracle contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KlReport {
    /// Positions compared.
    pub n: usize,
    /// Mean KLD, nats.
    pub kld_mean: f64,
    /// KLD percentiles, as llama.cpp prints them: max, 99.9, 99, 95, 90, median, 10, 5, 1, min.
    pub kld_percentiles: Vec<(String, f64)>,
    /// "Same top p": share of positions whose top-1 token agrees, percent.
    pub same_top_p: f64,
    /// RMS of Δp of the oracle's top-1 token, percent.
    pub rms_dp: f64,
    /// The aggregates the claims use.
    #[serde(skip)]
    pub stats: SetStats,
}

/// Teacher-forces `llama` over the oracle's cases and summarises the comparison.
pub fn oracle_kl(
    llama: &Llama,
    tok: &dyn TextTokenizer,
    oracle: &Oracle,
) -> Result<KlReport, PplError> {
    let seqs = eval_seqs(Some(oracle), &[], tok)?;
    let mut positions = Vec::new();
    for (case, seq) in oracle.cases.iter().zip(&seqs) {
        let rows = logits(llama, &seq.tokens)?;
        for (entry, row) in case.top_logprobs.iter().zip(&rows[seq.start..]) {
            positions.push(compare_to_oracle(entry, &log_softmax(row)));
        }
    }
    let stats = SetStats::of(&positions);
    let mut sorted = stats.kl_values.clone();
    sorted.sort_by(f64::total_cmp);
    let pct = [
        ("max", 1.0),
        ("99.9%", 0.999),
        ("99.0%", 0.99),
        ("95.0%", 0.95),
        ("90.0%", 0.90),
        ("median", 0.5),
        ("10.0%", 0.10),
        ("5.0%", 0.05),
        ("1.0%", 0.01),
        ("min", 0.0),
    ];
    Ok(KlReport {
        n: stats.n,
        kld_mean: stats.kl.mean,
        kld_percentiles: pct
            .iter()
            .map(|(n, q)| (n.to_string(), quantile(&sorted, *q)))
            .collect(),
        same_top_p: 100.0 * stats.top1_agreement,
        rms_dp: 100.0 * stats.rms_dp,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{seeded, LoadOptions};
    use crate::tokenizer::ByteTokenizer;

    fn tiny() -> Llama {
        // The model tests' tiny config, with a byte vocabulary and no special tokens.
        let cfg = crate::model::LlamaConfig {
            vocab_size: 256,
            bos_token_id: None,
            eos_token_id: None,
            ..crate::model::config::tests::tiny(true)
        };
        Llama::load(&seeded(&cfg, 3).unwrap(), &LoadOptions::default()).unwrap()
    }

    #[test]
    fn scores_the_second_half_of_each_chunk_like_llama_cpp() {
        let m = tiny();
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(3);
        let r = perplexity(&m, &ByteTokenizer, &text, 16, Some(4)).unwrap();
        assert_eq!(
            (r.n_scored, r.chunks, r.n_text_tokens),
            (4 * 7, 4, text.len())
        );
        // The same numbers from full logits and the rule written out.
        let mut nll = Vec::new();
        for c in 0..4 {
            let ids: Vec<u32> = text.as_bytes()[c * 16..(c + 1) * 16]
                .iter()
                .map(|&b| b as u32)
                .collect();
            let rows = logits(&m, &ids).unwrap();
            for p in 8..15 {
                nll.push(-log_softmax(&rows[p])[ids[p + 1] as usize]);
            }
        }
        for (a, b) in r.nll.iter().zip(&nll) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert!((r.ppl - (nll.iter().sum::<f64>() / nll.len() as f64).exp()).abs() < 1e-3 * r.ppl);
        assert_eq!(r.text_sha256, crate::fsutil::sha256_hex(text.as_bytes()));
        // Every whole context by default; too few tokens and odd contexts are errors.
        assert_eq!(
            perplexity(&m, &ByteTokenizer, &text, 16, None)
                .unwrap()
                .chunks,
            text.len() / 16
        );
        assert!(matches!(
            perplexity(&m, &ByteTokenizer, "short", 16, None),
            Err(PplError::TooShort { .. })
        ));
        assert!(matches!(
            perplexity(&m, &ByteTokenizer, &text, 15, None),
            Err(PplError::Ctx(15))
        ));
        assert!(matches!(
            perplexity(&m, &ByteTokenizer, &text, 16, Some(99)),
            Err(PplError::TooShort { .. })
        ));
    }
}
