//! The held-out evaluation slice (`configs/eval.toml`, `[perplexity]`): the one text
//! every perplexity claim and command scores unless given another.
//!
//! Read exactly as `ci/oracle_common.py` reads it (corpus path relative to the project
//! root, SHA-256 pinned, a byte range that must be valid UTF-8), so the text's SHA-256
//! matches an oracle's `perplexity.text_sha256`. It is scored by [`super::perplexity`].

use crate::fsutil::read_text;
use crate::input::InputError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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

impl EvalSlice {
    /// Reads `[perplexity]` of `file` (whose project root is `root`) and the slice text.
    pub fn load(root: &Path, file: &Path) -> Result<EvalSlice, InputError> {
        let text = read_text(file)?;
        let invalid = |line, msg: String| InputError::invalid(file, line, msg);
        let spec: EvalFile = crate::input::parse_toml(&text, file)?;
        let p = spec.perplexity;
        if p.ctx < 4 || !p.ctx.is_multiple_of(2) || p.chunks == 0 {
            return Err(invalid(1, format!("field 'perplexity.ctx' must be even and ≥ 4 and 'chunks' ≥ 1 (ctx {}, chunks {})", p.ctx, p.chunks)));
        }
        let corpus = root.join(&p.corpus);
        let data = crate::fsutil::read_bounded(&corpus, crate::fsutil::MAX_CORPUS_BYTES)?;
        let got = crate::fsutil::sha256_hex(&data);
        if got != p.corpus_sha256 {
            return Err(invalid(
                1,
                format!(
                    "field 'perplexity.corpus_sha256': {} has SHA-256 {got}, not the pinned {}",
                    corpus.display(),
                    p.corpus_sha256
                ),
            ));
        }
        let end = p
            .start_byte
            .checked_add(p.len_bytes)
            .filter(|&e| e <= data.len() && p.len_bytes > 0);
        let Some(end) = end else {
            return Err(invalid(
                1,
                format!(
                    "field 'perplexity': bytes [{}, +{}) are outside {} ({} bytes)",
                    p.start_byte,
                    p.len_bytes,
                    corpus.display(),
                    data.len()
                ),
            ));
        };
        let raw = &data[p.start_byte..end];
        let slice = std::str::from_utf8(raw).map_err(|e| invalid(1, format!("field 'perplexity': the slice of {} is not valid UTF-8 (cuts a character?): {e}", corpus.display())))?;
        Ok(EvalSlice {
            corpus,
            text: slice.to_string(),
            text_sha256: crate::fsutil::sha256_hex(raw),
            ctx: p.ctx,
            chunks: p.chunks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_slice_matches_the_smollm2_oracle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let s = EvalSlice::load(root, &root.join(crate::project::EVAL_FILE)).unwrap();
        let oracle =
            crate::oracle::read(&root.join("oracles/smollm2-135m-instruct/q4_1.json")).unwrap();
        assert_eq!(
            Some(s.text_sha256.as_str()),
            oracle.perplexity.as_ref().map(|p| p.text_sha256.as_str())
        );
    }

    #[test]
    fn eval_slice_is_read_exactly_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.txt"), "héllo world").unwrap();
        let sha = crate::fsutil::sha256_hex("héllo world".as_bytes());
        let cfg = dir.path().join("eval.toml");
        let write = |sha: &str, body: &str| {
            std::fs::write(&cfg, format!("[perplexity]\ncorpus = \"c.txt\"\ncorpus_sha256 = \"{sha}\"\n{body}\nctx = 4\nchunks = 1\n")).unwrap()
        };
        write(&sha, "start_byte = 0\nlen_bytes = 6");
        let s = EvalSlice::load(dir.path(), &cfg).unwrap();
        assert_eq!(
            (s.text.as_str(), s.text_sha256.clone()),
            ("héllo", crate::fsutil::sha256_hex("héllo".as_bytes()))
        );
        write(&sha, "start_byte = 0\nlen_bytes = 2");
        assert!(EvalSlice::load(dir.path(), &cfg)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        write(&sha, "start_byte = 5\nlen_bytes = 99");
        assert!(EvalSlice::load(dir.path(), &cfg)
            .unwrap_err()
            .to_string()
            .contains("eval.toml"));
        // Another corpus under the same name is refused, naming both hashes.
        write(&"0".repeat(64), "start_byte = 0\nlen_bytes = 6");
        let e = EvalSlice::load(dir.path(), &cfg).unwrap_err().to_string();
        assert!(e.contains("corpus_sha256") && e.contains(&sha), "{e}");
    }
}
