//! The training data: the corpus (checked against its SHA-256), its train/validation split,
//! seeded batch sampling, the fixed validation windows and the unigram baseline.
//!
//! The split: validation is the last `val_fraction` of the corpus bytes, moved forward to
//! the start of a line so no line is cut, and the two parts are tokenized separately so no
//! token straddles them. Train and validation never share a byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::TrainError;
use crate::fsutil::sha256_hex;
use crate::rng::SeededRng;
use crate::tokenizer::TextTokenizer;

/// A corpus file, read and hashed.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Where it was read from.
    pub path: PathBuf,
    pub text: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

impl Corpus {
    /// Reads `path`; with `expected`, a file with another SHA-256 is an error.
    pub fn load(path: &Path, expected: Option<&str>) -> Result<Corpus, TrainError> {
        let bytes = crate::fsutil::read_bounded(path, crate::fsutil::MAX_CORPUS_BYTES).map_err(
            |e| match e.source.kind() {
                std::io::ErrorKind::NotFound => TrainError::CorpusMissing {
                    path: path.to_path_buf(),
                },
                _ => TrainError::Fs(e),
            },
        )?;
        let sha256 = sha256_hex(&bytes);
        if let Some(want) = expected {
            if want != sha256 {
                return Err(TrainError::Corpus {
                    path: path.to_path_buf(),
                    msg: format!("sha256 {sha256} is not the registered {want}"),
                });
            }
        }
        let text = String::from_utf8(bytes).map_err(|e| TrainError::Corpus {
            path: path.to_path_buf(),
            msg: format!("not UTF-8: {e}"),
        })?;
        Ok(Corpus {
            path: path.to_path_buf(),
            text,
            sha256,
        })
    }

    /// The file name, for metadata (a path would make the checkpoint depend on where the
    /// corpus happened to lie).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// First byte of the validation part: `len · (1 − val_fraction)` moved forward to the start
/// of the next line.
pub fn split_point(text: &str, val_fraction: f64) -> Option<usize> {
    let target = (text.len() as f64 * (1.0 - val_fraction)) as usize;
    let nl = text.as_bytes()[target.min(text.len())..]
        .iter()
        .position(|&b| b == b'\n')?;
    let at = target + nl + 1;
    (at < text.len()).then_some(at)
}

/// The tokenized split.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Training tokens.
    pub train: Vec<u32>,
    /// Validation tokens.
    pub val: Vec<u32>,
    /// Byte offset where validation starts.
    pub split_byte: usize,
}

impl Data {
    /// Splits and tokenizes `corpus`; both parts must hold more than `seq_len` tokens.
    pub fn new(
        corpus: &Corpus,
        tok: &dyn TextTokenizer,
        val_fraction: f64,
        seq_len: usize,
    ) -> Result<Data, TrainError> {
        let bad = |msg: String| TrainError::Corpus {
            path: corpus.path.clone(),
            msg,
        };
        let split = split_point(&corpus.text, val_fraction).ok_or_else(|| {
            bad(format!(
                "no line break after {:.0}% of the text to split at",
                (1.0 - val_fraction) * 100.0
            ))
        })?;
        let enc = |t: &str| tok.encode(t).map_err(|e| TrainError::Tokenize(Box::new(e)));
        let data = Data {
            train: enc(&corpus.text[..split])?,
            val: enc(&corpus.text[split..])?,
            split_byte: split,
        };
        for (part, n) in [("train", data.train.len()), ("validation", data.val.len())] {
            if n <= seq_len {
                return Err(bad(format!(
                    "the {part} part has {n} tokens, not more than seq_len {seq_len}"
                )));
            }
        }
        Ok(data)
    }

    /// The fixed validation windows: consecutive, non-overlapping runs of `seq_len + 1`
    /// tokens from the start of the validation part (the last partial window is dropped).
    pub fn val_windows(&self, seq_len: usize) -> Vec<&[u32]> {
        windows(&self.val, seq_len)
    }
}

/// Consecutive windows of `seq_len + 1` tokens with stride `seq_len`, so every token after
/// the first is predicted exactly once.
pub fn windows(tokens: &[u32], seq_len: usize) -> Vec<&[u32]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start + seq_len < tokens.len() {
        out.push(&tokens[start..start + seq_len + 1]);
        start += seq_len;
    }
    out
}

/// Step `step`'s batch: `batch` windows of `seq_len + 1` tokens at uniformly drawn offsets,
/// flattened row by row. Each step draws from its own stream of `seed`, so a resumed run
/// sees exactly the batches of an uninterrupted one.
pub fn sample_batch(
    tokens: &[u32],
    seed: u64,
    step: u64,
    batch: usize,
    seq_len: usize,
) -> Vec<u32> {
    let mut rng = SeededRng::for_stream(seed, &format!("batch/{step}"));
    let span = (tokens.len() - seq_len) as u64;
    let mut out = Vec::with_capacity(batch * (seq_len + 1));
    for _ in 0..batch {
        let at = rng.below(span) as usize;
        out.extend_from_slice(&tokens[at..at + seq_len + 1]);
    }
    out
}

/// Entropy in nats of the tokens' own unigram distribution: the lowest cross-entropy any
/// unigram model can reach on these very tokens.
pub fn unigram_entropy(tokens: &[u32]) -> f64 {
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for &t in tokens {
        *counts.entry(t).or_default() += 1;
    }
    let n = tokens.len() as f64;
    // Summed in id order so the value does not depend on hash-map iteration.
    let mut c: Vec<(u32, u64)> = counts.into_iter().collect();
    c.sort_unstable();
    -c.iter()
        .map(|&(_, k)| k as f64 / n * (k as f64 / n).ln())
        .sum::<f64>()
}

/// Cross-entropy in nats on `eval` of the unigram distribution of `fit` with add-one
/// smoothing over `vocab` ids: what a unigram model learned on one part scores on another.
pub fn unigram_cross_entropy(fit: &[u32], eval: &[u32], vocab: usize) -> f64 {
    let mut counts = vec![0u64; vocab];
    for &t in fit {
        if let Some(c) = counts.get_mut(t as usize) {
            *c += 1;
        }
    }
    let total = (fit.len() + vocab) as f64;
    let nll: f64 = eval
        .iter()
        .map(|&t| -((counts.get(t as usize).copied().unwrap_or(0) + 1) as f64 / total).ln())
        .sum();
    nll / eval.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_starts_a_line_and_parts_are_disjoint() {
        let text = "aaaa\nbbbb\ncccc\ndddd\n";
        let at = split_point(text, 0.3).unwrap();
        assert_eq!(&text[at..], "dddd\n");
        assert!(split_point("no newline at all", 0.1).is_none());
    }

    #[test]
    fn windows_predict_every_token_once() {
        let t: Vec<u32> = (0..10).collect();
        let w = windows(&t, 3);
        assert_eq!(w, [&[0, 1, 2, 3][..], &[3, 4, 5, 6], &[6, 7, 8, 9]]);
    }

    #[test]
    fn batches_depend_on_seed_and_step_only() {
        let t: Vec<u32> = (0..1000).collect();
        let a = sample_batch(&t, 7, 3, 4, 16);
        assert_eq!(a, sample_batch(&t, 7, 3, 4, 16));
        assert_ne!(a, sample_batch(&t, 7, 4, 4, 16));
        assert_ne!(a, sample_batch(&t, 8, 3, 4, 16));
        assert_eq!(a.len(), 4 * 17);
        // Each row is a contiguous run: its targets are its inputs shifted by one.
        for row in a.chunks(17) {
            assert!(row.windows(2).all(|p| p[1] == p[0] + 1));
        }
    }

    #[test]
    fn unigram_numbers() {
        assert!((unigram_entropy(&[1, 2, 1, 2]) - 2f64.ln()).abs() < 1e-12);
        assert_eq!(unigram_entropy(&[5, 5, 5]), 0.0);
        // Fit [0, 0] over 2 ids: p(0) = 3/4, p(1) = 1/4.
        assert!((unigram_cross_entropy(&[0, 0], &[1], 2) - 4f64.ln()).abs() < 1e-12);
    }
}
