//! Running a model: generation ([`generate`]: greedy and seeded sampling with temperature,
//! top-k, top-p and repetition penalty, returning tokens, text, stop reason, per-token
//! entropies and top-1 probabilities) and the GenerationRecords of arithmetic problems it
//! writes ([`generate_records`]). One place, used by commands and studies.
//!
//! `generate.rs` is the issue-12 branch's file as it stands, so that the stage it builds
//! (logits, perplexity and the runtime here too) merges with this one without a fork.

mod generate;
mod records;

pub use generate::{argmax, draw, generate, generate_with, greedy, uniform_f64, Generation, Options, Sampler, Sampling, StopReason};
pub use records::{generate_records, options_of, record_seed, GenerateError, Labels};

/// Why running a model failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The model refused the input or failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// candle failed while moving tensors.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A prompt tokenizes to nothing.
    #[error("prompt '{0}' tokenizes to nothing")]
    EmptyPrompt(String),
}
