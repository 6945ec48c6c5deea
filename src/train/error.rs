//! [`TrainError`]: why training, a tokenizer build or a sanity check could not run.

use std::path::PathBuf;

/// A training failure; each message names the file, field or step involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// The model module refused (bad config, missing tensor, load failure).
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A tensor operation failed.
    #[error("{op}: {source}")]
    Candle {
        /// What was being computed.
        op: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// A recipe, ladder or checkpoint file breaks its schema (file and field named).
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// The pieces of a run do not fit (hyper-parameters, tokenizer vs model, lengths).
    #[error("{0}")]
    Spec(String),
    /// The corpus file is not on this machine (an error wherever it is met: the corpus
    /// belongs to the checkout, and a mistyped path must not read as "skipped").
    #[error("corpus {}: no such file", path.display())]
    CorpusMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The corpus is not the registered one, or too small for the split asked for.
    #[error("corpus {}: {msg}", path.display())]
    Corpus {
        /// The corpus file.
        path: PathBuf,
        msg: String,
    },
    /// Learning or loading the tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Our tokenizer failed on the training text (boxed: it is large and rare).
    #[error("tokenizer: {0}")]
    Tokenize(#[source] Box<crate::tokenizer::TokenizerError>),
    /// The tokenizers library refused a tokenizer (its JSON).
    #[error("tokenizer: {0}")]
    TokenizerLibrary(#[source] tokenizers::Error),
    /// A training step produced a non-finite loss or gradient.
    #[error("step {step}: {what}")]
    Diverged {
        /// The step (1-based).
        step: u64,
        /// What was not finite.
        what: String,
    },
    /// The device asked for is not available in this build or on this machine.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// An error met once and handed to every caller of the same per-process cache entry
    /// (a run, a corpus, a tokenized split), as it was, sources included.
    #[error(transparent)]
    Cached(std::sync::Arc<TrainError>),
}

/// Attaches the operation name to a candle error.
pub(crate) trait Ctx<T> {
    fn ctx(self, op: &str) -> Result<T, TrainError>;
}

impl<T> Ctx<T> for candle_core::Result<T> {
    fn ctx(self, op: &str) -> Result<T, TrainError> {
        self.map_err(|source| TrainError::Candle {
            op: op.to_string(),
            source,
        })
    }
}

impl TrainError {
    /// `file` breaks its schema; `msg` names the field.
    pub fn invalid(file: impl AsRef<std::path::Path>, msg: impl Into<String>) -> TrainError {
        TrainError::Input(crate::input::InputError::file(file.as_ref(), msg))
    }
}
