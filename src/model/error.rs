//! The model module's error type, [`ModelError`].

use std::path::PathBuf;

/// Why a model could not be configured, loaded, saved, run or trained.
///
/// Messages are lowercase and read after "failed to"; every variant names the file,
/// field or tensor it is about.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration field holds a value the model cannot use.
    #[error("invalid config field `{field}`: {reason}")]
    Config {
        /// The Hugging Face field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The input asks for something this implementation deliberately does not do.
    #[error("unsupported {what}")]
    Unsupported {
        /// What was asked for, with the file or key it came from.
        what: String,
    },
    /// A tensor the config requires is absent.
    #[error("missing tensor `{name}`")]
    MissingTensor {
        /// HF tensor name.
        name: String,
    },
    /// A tensor the config does not expect is present.
    #[error("unexpected tensor `{}`", crate::excerpt::excerpt(name))]
    UnexpectedTensor {
        /// HF tensor name.
        name: String,
    },
    /// A tensor has the wrong shape for the config.
    #[error(
        "tensor `{}` has shape {got:?}, config requires {expected:?}",
        crate::excerpt::excerpt(name)
    )]
    ShapeMismatch {
        /// HF tensor name.
        name: String,
        /// Shape derived from the config.
        expected: Vec<usize>,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A filesystem operation failed.
    #[error("{op} `{path}`: {source}")]
    Io {
        /// What was being done ("read", "write", "rename"...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON or TOML file could not be parsed.
    #[error("parse `{path}`: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the field and line).
        reason: String,
    },
    /// A safetensors file is malformed or holds a tensor we cannot use.
    #[error("read safetensors `{path}`{}: {reason}", tensor.as_ref().map(|t| format!(" tensor `{}`", crate::excerpt::excerpt(t))).unwrap_or_default())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The tensor, when the problem is one tensor.
        tensor: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A GGUF file is malformed or lacks a key we need.
    #[error("read gguf `{path}` key `{}`: {reason}", crate::excerpt::excerpt(key))]
    Gguf {
        /// The file.
        path: PathBuf,
        /// The metadata key or tensor name.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor operation failed inside candle.
    #[error("{context}: {source}")]
    Candle {
        /// What the model was doing.
        context: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// Tokens would run past the RoPE table (`max_position_embeddings`).
    #[error("position {needed} exceeds max_position_embeddings {max}")]
    ContextOverflow {
        /// The number of positions the call needs.
        needed: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A token id is not a row of the embedding matrix.
    #[error("token id {id} is not below vocab_size {vocab}")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// The input tensor or cache does not fit the call.
    #[error("bad input: {reason}")]
    BadInput {
        /// What is wrong with it.
        reason: String,
    },
    /// The ladder solver found no shape within tolerance.
    #[error("solve a config for {target} parameters: {reason}")]
    Solver {
        /// The requested parameter count.
        target: u64,
        /// Why no candidate fits.
        reason: String,
    },
}

impl From<crate::fsutil::FsError> for ModelError {
    fn from(e: crate::fsutil::FsError) -> Self {
        ModelError::Io {
            op: "write",
            path: e.path,
            source: e.source,
        }
    }
}

/// Shorthand used across the model module.
pub type Result<T> = std::result::Result<T, ModelError>;

impl From<candle_core::Error> for ModelError {
    fn from(source: candle_core::Error) -> Self {
        ModelError::Candle {
            context: "tensor op".to_string(),
            source,
        }
    }
}

/// Adds context to candle errors: `t.matmul(&w).ctx("attention scores")?`.
pub(crate) trait CandleContext<T> {
    /// Wraps a candle error with `context`.
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> CandleContext<T> for candle_core::Result<T> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|source| ModelError::Candle {
            context: context.to_string(),
            source,
        })
    }
}

/// Builds an `Io` error for `path`.
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> ModelError + 'a {
    move |source| ModelError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
