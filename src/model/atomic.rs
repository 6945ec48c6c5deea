//! Atomic writes for the model's files, through the crate's one implementation
//! ([`crate::fsutil::atomic_write`]), with the model module's error type.

use std::path::Path;

use super::error::{io_err, Result};

/// Writes `bytes` to `path` so a reader sees the old file or the complete new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsutil::atomic_write(path, bytes).map_err(|e| io_err("write", &e.path)(e.source))
}
