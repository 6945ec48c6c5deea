//! Reading the project's TOML and JSON inputs strictly, with errors that name the file and
//! the line (TOML) or the field path (JSON). One error type for every such file.

use crate::fsutil::{line_of, read_text, FsError};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Why an input file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file breaks its schema or a rule between fields.
    #[error("{}:{line}: {msg}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// JSON that breaks its schema, with the path of the offending field.
    #[error("{}: field '{field}': {msg}", file.display())]
    Schema {
        /// The file.
        file: PathBuf,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        msg: String,
    },
}

impl InputError {
    /// A rule broken at `line` of `file`.
    pub fn invalid(file: &Path, line: usize, msg: impl Into<String>) -> InputError {
        InputError::Invalid { file: file.to_path_buf(), line, msg: msg.into() }
    }
}

/// Reads a TOML file into `T`; returns the text too, for later line lookups.
pub fn read_toml<T: DeserializeOwned>(file: &Path) -> Result<(T, String), InputError> {
    let text = read_text(file)?;
    Ok((parse_toml(&text, file)?, text))
}

/// Parses TOML text; `file` is only used in messages.
pub fn parse_toml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, InputError> {
    toml::from_str(text).map_err(|e| InputError::invalid(file, e.span().map(|s| line_of(text, s.start)).unwrap_or(1), e.message()))
}

/// Parses JSON bytes into `T`, naming the offending field's path on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], file: &Path) -> Result<T, InputError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| InputError::Schema { file: file.to_path_buf(), field: e.path().to_string(), msg: e.inner().to_string() })
}
