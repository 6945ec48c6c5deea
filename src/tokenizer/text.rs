//! The [`TextTokenizer`] trait every tokenizer implements, and its error type.

use std::path::PathBuf;

/// Why a tokenizer could not be built or could not encode/decode.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A tokenizer file could not be read or parsed.
    #[error("load tokenizer {}: {msg}", file.display())]
    Load {
        /// The file (`tokenizer.json`, a GGUF model…).
        file: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A GGUF file failed [`crate::gguf_guard::validate_gguf`].
    #[error(transparent)]
    Gguf(#[from] crate::gguf_guard::GgufError),
    /// GGUF tokenizer metadata is missing, mistyped or inconsistent.
    #[error("gguf tokenizer metadata: {0}")]
    Metadata(String),
    /// The `tokenizers` library failed while encoding or decoding.
    #[error("{op} with the tokenizers library: {msg}")]
    Library {
        /// `encode` or `decode`.
        op: &'static str,
        /// The library's message.
        msg: String,
    },
    /// A token id outside the vocabulary was given to `decode`.
    #[error("decode token id {id} at position {pos}: vocabulary has {vocab_size} tokens")]
    IdOutOfRange {
        /// The offending id.
        id: u32,
        /// Its index in the input.
        pos: usize,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The tokenizer can produce ids that are not rows of the model's embedding.
    #[error("the tokenizer's ids reach {tokenizer}, the model's embedding has {model} rows")]
    LargerThanModel {
        /// The tokenizer's largest id + 1.
        tokenizer: usize,
        /// The model's `vocab_size`.
        model: usize,
    },
}

/// A tokenizer as the harness sees it: text in, ids out, and back.
///
/// `encode` never adds BOS/EOS by itself; callers prepend [`TextTokenizer::bos`] when
/// [`TextTokenizer::add_bos`] says the model expects it, so that the prompt tokens compare
/// directly with an oracle's `prompt_tokens` (which llama.cpp also records without BOS
/// when `add_bos` is false).
pub trait TextTokenizer: Send + Sync {
    /// Encodes `text`; special tokens written out (`<|im_start|>`) become their single id.
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError>;
    /// Encodes `text` with special-token text left as plain text (llama.cpp's
    /// `parse_special = false`, which its perplexity tool uses). The default suits
    /// tokenizers without special tokens.
    fn encode_plain(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.encode(text)
    }
    /// Decodes ids to text, special tokens included as written.
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError>;
    /// End-of-sequence id, if the vocabulary has one.
    fn eos(&self) -> Option<u32>;
    /// Beginning-of-sequence id, if the vocabulary has one.
    fn bos(&self) -> Option<u32>;
    /// Whether the model expects [`TextTokenizer::bos`] in front of every prompt.
    fn add_bos(&self) -> bool;
    /// Number of token ids, special tokens included.
    fn vocab_size(&self) -> usize;
}

/// Checks every id is in the vocabulary, because the `tokenizers` library silently drops
/// ids it does not know, which would hide a model emitting garbage ids.
/// Checks that every id `tok` can produce is a row of a `model_vocab`-row embedding (a
/// model may have more rows than its tokenizer uses, never fewer).
pub fn check_fits(tok: &dyn TextTokenizer, model_vocab: usize) -> Result<(), TokenizerError> {
    match tok.vocab_size() {
        n if n > model_vocab => Err(TokenizerError::LargerThanModel {
            tokenizer: n,
            model: model_vocab,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_ids(ids: &[u32], vocab_size: usize) -> Result<(), TokenizerError> {
    match ids.iter().position(|&id| id as usize >= vocab_size) {
        Some(pos) => Err(TokenizerError::IdOutOfRange {
            id: ids[pos],
            pos,
            vocab_size,
        }),
        None => Ok(()),
    }
}
