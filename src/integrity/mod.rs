//! Detecting damage without an oracle: a manifest of SHA-256 hashes per file and per
//! tensor ([`manifest`], [`verify`]) and a health check of each tensor's values against
//! its own statistics ([`health`]).

mod health;
mod manifest;

pub use health::check_file as health_check_file;
pub use manifest::{manifest, read_manifest, verify};

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
        reason: String,
    },
}

// Catch rates are measured by a test (against bands written before it ran); no command
// reports them.
#[cfg(test)]
mod catch;
#[cfg(test)]
mod tests;
