//! Atomic file writes: a reader sees the old file or the complete new one, never a part.

use std::io::Write;
use std::path::Path;

use super::error::{io_err, ModelError, Result};

/// Writes `bytes` to `path` via a temporary file in the same directory, fsynced and then
/// renamed over `path` (rename within one filesystem is atomic). The directory is fsynced
/// afterwards so the rename itself survives a crash; on error the temp file is removed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| ModelError::BadInput {
            reason: format!("`{}` has no file name", path.display()),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io_err("rename into", path))
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        // Some filesystems refuse fsync on directories; the data itself is already safe.
        let _ = d.sync_all();
    }
    Ok(())
}
