//! Running a model: teacher-forced logits of every position ([`logits`]), generation
//! ([`generate`]: greedy and seeded sampling, with per-token entropies), llama.cpp's
//! perplexity over one evaluation slice with one tokenization rule ([`perplexity`]), and
//! the [`Runtime`] that computes them, and (crate-private) the GenerationRecords of
//! arithmetic problems that studies score. One place, used by judges, commands and studies.

mod batch;
mod generate;
mod logits;
mod ppl;
mod records;
mod runtime;
mod sft_records;
mod slice;

pub use crate::device::{DeviceError, DeviceSpec, ParseDeviceError};
pub use batch::{generate_batch, DEFAULT_BATCH};
pub(crate) use generate::argmax;
pub use generate::{
    generate, generate_with, greedy, Generation, Options, Sampler, Sampling, StopReason,
};
pub use logits::{
    eval_seqs, logits, logits_batched, logits_incremental, prompt_tokens, EvalSeq, SeqLogits,
};
pub use ppl::{
    oracle_kl, perplexity, perplexity_with, KlReport, PplError, PplResult, MAX_PPL_TEXT_BYTES,
};
pub(crate) use records::{generate_records, Labels};
pub use runtime::{Runtime, Unavailable};
pub(crate) use sft_records::sft_records;
pub use slice::EvalSlice;

/// Why running a model failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The model refused the input or failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// candle failed while moving tensors.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Text could not be tokenized.
    #[error("tokenize {what}")]
    Tokenize {
        /// What was being tokenized.
        what: String,
        /// The tokenizer's error (boxed: it is large and rare, and `RunError` is returned
        /// on every hot path).
        #[source]
        source: Box<crate::tokenizer::TokenizerError>,
    },
    /// The tokenizer says the model wants BOS but has no BOS id.
    #[error("the tokenizer says add_bos but has no BOS id")]
    NoBos,
    /// A prompt tokenizes to nothing.
    #[error("prompt '{0}' tokenizes to nothing")]
    EmptyPrompt(String),
    /// The runtime's device is not here.
    #[error(transparent)]
    Unavailable(Unavailable),
    /// The runtime's GPU is here but cannot be used (a broken driver or toolkit).
    #[error(transparent)]
    Device(crate::device::DeviceError),
}
