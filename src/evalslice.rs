//! The held-out evaluation slice (`configs/eval.toml`, `[perplexity]`) and llama.cpp-style
//! perplexity over it.
//!
//! Read exactly as `ci/oracle_common.py` reads it (corpus path relative to the project
//! root, a byte range that must be valid UTF-8), so the text's SHA-256 matches an
//! oracle's `perplexity.text_sha256`. Scoring follows llama.cpp's `perplexity.cpp`:
//! `chunks` contexts of `ctx` tokens, BOS replacing a chunk's first token when the
//! tokenizer adds one, and only positions `ctx/2 .. ctx-1` scored.

use crate::fsutil::{line_of, read_text, FsError};
use crate::tokenizer::TextTokenizer;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file holding the slice.
pub const EVAL_FILE: &str = "configs/eval.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalFile {
    perplexity: SliceSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SliceSpec {
    corpus: String,
    corpus_sha256: String,
    start_byte: usize,
    len_bytes: usize,
    ctx: usize,
    chunks: usize,
}

/// The slice, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSlice {
    /// The corpus file, resolved.
    pub corpus: PathBuf,
    /// The exact text.
    pub text: String,
    /// SHA-256 of its bytes.
    pub text_sha256: String,
    /// Context length.
    pub ctx: usize,
    /// Number of contexts scored.
    pub chunks: usize,
}

/// Why the slice could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file breaks the schema or the slice is unusable.
    #[error("{}:{line}: {msg}", file.display())]
    Invalid {
        /// `configs/eval.toml` (or the corpus).
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

/// Reads `[perplexity]` of `file` (whose project root is `root`) and the slice text.
pub fn load(root: &Path, file: &Path) -> Result<EvalSlice, EvalError> {
    let text = read_text(file)?;
    let invalid = |line, msg: String| EvalError::Invalid { file: file.to_path_buf(), line, msg };
    let spec: EvalFile = toml::from_str(&text).map_err(|e| invalid(e.span().map(|s| line_of(&text, s.start)).unwrap_or(1), e.message().to_string()))?;
    let p = spec.perplexity;
    if p.ctx < 4 || !p.ctx.is_multiple_of(2) || p.chunks == 0 {
        return Err(invalid(1, format!("field 'perplexity.ctx' must be even and ≥ 4 and 'chunks' ≥ 1 (ctx {}, chunks {})", p.ctx, p.chunks)));
    }
    let corpus = root.join(&p.corpus);
    let data = crate::fsutil::read_bounded(&corpus, crate::fsutil::MAX_CORPUS_BYTES)?;
    let got = crate::fsutil::sha256_hex(&data);
    if got != p.corpus_sha256 {
        return Err(invalid(1, format!("field 'perplexity.corpus_sha256': {} has SHA-256 {got}, not the pinned {}", corpus.display(), p.corpus_sha256)));
    }
    let end = p.start_byte.checked_add(p.len_bytes).filter(|&e| e <= data.len() && p.len_bytes > 0);
    let Some(end) = end else {
        return Err(invalid(1, format!("field 'perplexity': bytes [{}, +{}) are outside {} ({} bytes)", p.start_byte, p.len_bytes, corpus.display(), data.len())));
    };
    let raw = &data[p.start_byte..end];
    let slice = std::str::from_utf8(raw).map_err(|e| invalid(1, format!("field 'perplexity': the slice of {} is not valid UTF-8 (cuts a character?): {e}", corpus.display())))?;
    Ok(EvalSlice { corpus, text: slice.to_string(), text_sha256: crate::fsutil::sha256_hex(raw), ctx: p.ctx, chunks: p.chunks })
}

impl EvalSlice {
    /// [`load`] with the arguments the other way round: `file`, then its project `root`.
    pub fn load(file: &Path, root: &Path) -> Result<EvalSlice, EvalError> {
        load(root, file)
    }

    /// The token chunks llama.cpp scores: `chunks` windows of `ctx` tokens, the first
    /// token of each replaced by BOS when the tokenizer adds one.
    pub fn chunks(&self, tok: &dyn TextTokenizer) -> Result<Vec<Vec<u32>>, String> {
        let ids = tok.encode(&self.text).map_err(|e| format!("tokenize the evaluation slice: {e}"))?;
        if ids.len() < self.chunks * self.ctx {
            return Err(format!("the evaluation slice tokenizes to {} tokens, fewer than chunks × ctx = {}", ids.len(), self.chunks * self.ctx));
        }
        let bos = match tok.add_bos() {
            true => Some(tok.bos().ok_or("the tokenizer adds BOS but has no BOS id")?),
            false => None,
        };
        Ok((0..self.chunks)
            .map(|c| {
                let mut chunk = ids[c * self.ctx..(c + 1) * self.ctx].to_vec();
                if let Some(b) = bos {
                    chunk[0] = b;
                }
                chunk
            })
            .collect())
    }

    /// The scored positions of a chunk: row `i` predicts token `i + 1`.
    pub fn scored(&self) -> std::ops::Range<usize> {
        self.ctx / 2..self.ctx - 1
    }
}

/// Perplexity from per-token negative log-likelihoods (natural log).
pub fn perplexity(nll: &[f64]) -> f64 {
    if nll.is_empty() {
        return f64::NAN;
    }
    (nll.iter().sum::<f64>() / nll.len() as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_slice_matches_the_smollm2_oracle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let s = load(root, &root.join(EVAL_FILE)).unwrap();
        let oracle = crate::oracle::read(&root.join("oracles/smollm2-135m-instruct/q4_1.json")).unwrap();
        assert_eq!(Some(s.text_sha256.as_str()), oracle.perplexity.as_ref().map(|p| p.text_sha256.as_str()));
        let chunks = s.chunks(&crate::tokenizer::ByteTokenizer).unwrap();
        assert_eq!(chunks.len(), s.chunks);
        assert!(chunks.iter().all(|c| c.len() == s.ctx));
        assert_eq!(s.scored().len(), s.ctx / 2 - 1);
    }

    #[test]
    fn eval_slice_is_read_exactly_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.txt"), "héllo world").unwrap();
        let sha = crate::fsutil::sha256_hex("héllo world".as_bytes());
        let cfg = dir.path().join("eval.toml");
        let write = |sha: &str, body: &str| std::fs::write(&cfg, format!("[perplexity]\ncorpus = \"c.txt\"\ncorpus_sha256 = \"{sha}\"\n{body}\nctx = 4\nchunks = 1\n")).unwrap();
        write(&sha, "start_byte = 0\nlen_bytes = 6");
        let s = load(dir.path(), &cfg).unwrap();
        assert_eq!((s.text.as_str(), s.text_sha256.clone()), ("héllo", crate::fsutil::sha256_hex("héllo".as_bytes())));
        write(&sha, "start_byte = 0\nlen_bytes = 2");
        assert!(load(dir.path(), &cfg).unwrap_err().to_string().contains("UTF-8"));
        write(&sha, "start_byte = 5\nlen_bytes = 99");
        assert!(load(dir.path(), &cfg).unwrap_err().to_string().contains("eval.toml"));
        // Another corpus under the same name is refused, naming both hashes.
        write(&"0".repeat(64), "start_byte = 0\nlen_bytes = 6");
        let e = load(dir.path(), &cfg).unwrap_err().to_string();
        assert!(e.contains("corpus_sha256") && e.contains(&sha), "{e}");
    }

    #[test]
    fn perplexity_of_uniform_guessing_is_the_vocabulary() {
        let nll = vec![(256f64).ln(); 10];
        assert!((perplexity(&nll) - 256.0).abs() < 1e-9);
        assert!(perplexity(&[]).is_nan());
    }
}
