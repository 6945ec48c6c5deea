//! Manifests: the SHA-256 of every file of a model and of every tensor's stored bytes
//! ([`manifest`]), and a check of a model against one ([`verify`]) that names each
//! tensor whose bytes changed.
//!
//! Tensors are compared at the byte ranges the manifest recorded, so a damaged header
//! (which might no longer parse) cannot hide which tensor data changed.

use super::IntegrityError;
use crate::fsutil::{sha256_hex, FsError};
use crate::stored::{FileFormat, StoredFile};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format tag of a manifest.
pub const MANIFEST_FORMAT: &str = "groundtruth-manifest/1";

/// Hashes of a model: one entry per file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// Files, by path relative to the model (a file's own name for a single file).
    pub files: Vec<FileEntry>,
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the model folder (or the file name).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: String,
    /// `gguf` or `safetensors` for tensor files.
    pub format: Option<FileFormat>,
    /// SHA-256 of the header (everything before the tensor data) of a tensor file.
    pub header_sha256: Option<String>,
    /// Tensors of a tensor file, in data order.
    pub tensors: Vec<TensorEntry>,
}

/// One tensor's stored bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorEntry {
    /// Name as stored.
    pub name: String,
    /// Storage type as stored.
    pub dtype: String,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Absolute offset of its data in the file.
    pub offset: u64,
    /// Bytes of data.
    pub n_bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: String,
}

/// What changed between a manifest and the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A recorded file is gone.
    MissingFile {
        /// Its path.
        file: String,
    },
    /// A tensor's bytes differ.
    Tensor {
        /// Path relative to the model, as the manifest records it.
        file: String,
        /// Its name in the file.
        tensor: String,
    },
    /// A tensor file's header (metadata, tensor table) differs.
    Header {
        /// Path relative to the model.
        file: String,
    },
    /// The file's length differs.
    Size {
        /// Path relative to the model.
        file: String,
        /// Recorded length.
        recorded: u64,
        /// Length now.
        now: u64,
    },
    /// Bytes outside the header and every tensor (alignment padding) differ.
    Padding {
        /// Path relative to the model.
        file: String,
    },
    /// A file without tensors (config, tokenizer) differs.
    File {
        /// Path relative to the model.
        file: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::MissingFile { file } => write!(f, "{file}: missing"),
            Change::Tensor { file, tensor } => write!(f, "{file}: tensor {tensor} changed"),
            Change::Header { file } => {
                write!(f, "{file}: header changed (metadata or tensor table)")
            }
            Change::Size {
                file,
                recorded,
                now,
            } => write!(f, "{file}: {now} bytes, {recorded} recorded"),
            Change::Padding { file } => write!(f, "{file}: padding between tensors changed"),
            Change::File { file } => write!(f, "{file}: changed"),
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Every change found; empty when the model is intact.
    pub changes: Vec<Change>,
    /// Files in the model folder the manifest does not list (reported, not judged).
    pub unlisted: Vec<String>,
}

impl Verdict {
    /// Whether every recorded byte is as recorded.
    pub fn intact(&self) -> bool {
        self.changes.is_empty()
    }

    /// The tensors named as changed.
    pub fn changed_tensors(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Tensor { tensor, .. } => Some(tensor.as_str()),
                Change::MissingFile { .. }
                | Change::Header { .. }
                | Change::Size { .. }
                | Change::Padding { .. }
                | Change::File { .. } => None,
            })
            .collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, FsError> {
    // A device or FIFO has no size to trust: only regular files are read whole.
    crate::fsutil::require_regular_file(path)?;
    std::fs::read(path).map_err(|source| FsError {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a folder's file is one the manifest covers: not a manifest or a flip list.
fn is_model_file(name: &str) -> bool {
    !(name.ends_with(".manifest.json") || name.ends_with(".flips.json"))
}

/// The files of a model: a file itself, or a folder's files (sorted, not recursing).
fn model_files(model: &Path) -> Result<Vec<(String, PathBuf)>, FsError> {
    if !model.is_dir() {
        let name = model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(name, model.to_path_buf())]);
    }
    let io = |source| FsError {
        path: model.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(model).map_err(io)? {
        let e = e.map_err(io)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && is_model_file(&name) {
            out.push((name, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Hashes one file; tensor files (GGUF, `.safetensors`) per tensor too.
pub fn file_entry(name: &str, path: &Path, bytes: Vec<u8>) -> Result<FileEntry, IntegrityError> {
    let (size, sha256) = (bytes.len() as u64, sha256_hex(&bytes));
    let is_tensor_file = bytes.starts_with(b"GGUF") || name.ends_with(".safetensors");
    if !is_tensor_file {
        return Ok(FileEntry {
            path: name.into(),
            size,
            sha256,
            format: None,
            header_sha256: None,
            tensors: vec![],
        });
    }
    let f = StoredFile::from_bytes(path, bytes)?;
    let tensors = f
        .tensors
        .iter()
        .map(|t| TensorEntry {
            name: t.name.clone(),
            dtype: t.dtype_name.clone(),
            shape: t.shape.clone(),
            offset: t.range.start as u64,
            n_bytes: t.range.len() as u64,
            sha256: sha256_hex(&f.bytes[t.range.clone()]),
        })
        .collect();
    Ok(FileEntry {
        path: name.into(),
        size,
        sha256,
        format: Some(f.format),
        header_sha256: Some(sha256_hex(&f.bytes[..f.data_start])),
        tensors,
    })
}

/// The manifest of a model file or folder.
pub fn manifest(model: &Path) -> Result<Manifest, IntegrityError> {
    let mut files = Vec::new();
    for (name, path) in model_files(model)? {
        files.push(file_entry(&name, &path, read(&path)?)?);
    }
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        files,
    })
}

/// Reads a manifest, refusing another format.
pub fn read_manifest(path: &Path) -> Result<Manifest, IntegrityError> {
    let m: Manifest = crate::input::read_json(path, crate::fsutil::MAX_TEXT_BYTES)?;
    if m.format != MANIFEST_FORMAT {
        return Err(crate::input::InputError::field(
            path,
            "format",
            format!("'{}', expected '{MANIFEST_FORMAT}'", m.format),
        )
        .into());
    }
    Ok(m)
}

/// What changed in one file's `bytes` against its entry.
pub fn file_changes(entry: &FileEntry, bytes: &[u8]) -> Vec<Change> {
    let file = || entry.path.clone();
    if bytes.len() as u64 == entry.size && sha256_hex(bytes) == entry.sha256 {
        return vec![];
    }
    if entry.format.is_none() {
        return vec![Change::File { file: file() }];
    }
    let mut out = Vec::new();
    if bytes.len() as u64 != entry.size {
        out.push(Change::Size {
            file: file(),
            recorded: entry.size,
            now: bytes.len() as u64,
        });
    }
    let header_end = entry
        .tensors
        .iter()
        .map(|t| t.offset)
        .min()
        .unwrap_or(entry.size) as usize;
    let header_now = bytes.get(..header_end).map(sha256_hex);
    if entry.header_sha256.is_some() && header_now != entry.header_sha256 {
        out.push(Change::Header { file: file() });
    }
    for t in &entry.tensors {
        let range = t.offset as usize..(t.offset + t.n_bytes) as usize;
        if bytes.get(range).map(sha256_hex).as_ref() != Some(&t.sha256) {
            out.push(Change::Tensor {
                file: file(),
                tensor: t.name.clone(),
            });
        }
    }
    if out.is_empty() {
        out.push(Change::Padding { file: file() });
    }
    out
}

/// Checks the model at `model` against `m`.
pub fn verify(model: &Path, m: &Manifest) -> Result<Verdict, IntegrityError> {
    let mut changes = Vec::new();
    let single = !model.is_dir();
    if single && m.files.len() != 1 {
        let msg = format!(
            "lists {} files (a model folder's); --model names a single file",
            m.files.len()
        );
        return Err(crate::input::InputError::field(model, "files", msg).into());
    }
    for entry in &m.files {
        let path = if single {
            model.to_path_buf()
        } else {
            model.join(&entry.path)
        };
        if path.exists() {
            crate::fsutil::require_regular_file(&path)?;
        }
        match std::fs::read(&path) {
            Ok(bytes) => changes.extend(file_changes(entry, &bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                changes.push(Change::MissingFile {
                    file: entry.path.clone(),
                })
            }
            Err(source) => return Err(FsError { path, source }.into()),
        }
    }
    let listed: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    let unlisted = if single {
        vec![]
    } else {
        model_files(model)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !listed.contains(&n.as_str()))
            .collect()
    };
    Ok(Verdict { changes, unlisted })
}
