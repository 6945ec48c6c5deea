//! Detecting damage without an oracle: a manifest of SHA-256 hashes per file and per
//! tensor ([`manifest`], [`verify`]) and a health check of each tensor's values against
//! its own statistics ([`health`]).

pub mod catch;
pub mod health;
pub mod manifest;

pub use catch::{catch_rates, CatchRate};
pub use health::{
    check_file as health_check_file, check_values, check_weights, Finding, TensorHealth,
    ABSURD_RATIO,
};
pub use manifest::{manifest, verify, Change, Manifest, Verdict, MANIFEST_FORMAT};

/// Why a manifest could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// A file could not be read or written.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// A model file whose tensor table cannot be read.
    #[error(transparent)]
    Stored(#[from] crate::stored::StoredError),
    /// A manifest that breaks its format.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A tensor whose values cannot be decoded.
    #[error("{}: tensor {tensor}: {reason}", file.display())]
    Decode {
        /// The model file holding the tensor.
        file: std::path::PathBuf,
        /// Its stored (GGUF or safetensors) name.
        tensor: String,
        /// Why.
        reason: String,
    },
}
