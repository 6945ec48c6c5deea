//! Corrupting a model file ([`corrupt_file`], [`write_corrupted`]): bits flip inside the
//! tensor data of a GGUF or safetensors file and nowhere else, so the damaged file keeps
//! its header, parses as before, and differs from the original in exactly the listed bits.

use super::engine::{apply, plan, FlipError, Target, TensorMeta};
use super::list::{FileId, FlipList};
use crate::flipspec::Severity;
use crate::fsutil::{atomic_write, sha256_hex};
use crate::stored::{StoredError, StoredFile};
use std::path::{Path, PathBuf};

/// Why `groundtruth corrupt` could not write its output.
#[derive(Debug, thiserror::Error)]
pub enum CorruptFileError {
    /// The input is not a readable model file.
    #[error(transparent)]
    Stored(#[from] StoredError),
    /// The corruption could not be planned or applied.
    #[error("{}: {source}", path.display())]
    Flip {
        /// The input file.
        path: PathBuf,
        /// Why (boxed: a model error inside it would make every `Result` of this
        /// module large).
        #[source]
        source: Box<FlipError>,
    },
    /// Writing failed.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// The output would overwrite the input.
    #[error("{}: the output is the input; give another --out", path.display())]
    SameFile {
        /// The path given as both input and output.
        path: PathBuf,
    },
}

/// Flips the selected bits of `file`'s tensor data in place; the list records file offsets.
pub fn corrupt_file(
    file: &mut StoredFile,
    target: &Target,
    severity: Severity,
    seed: u64,
) -> Result<FlipList, FlipError> {
    let mut metas = Vec::new();
    let mut ranges = Vec::new();
    for t in &file.tensors {
        let meta = TensorMeta {
            name: t.name.clone(),
            hf_name: t.hf_name.clone(),
            dtype: t.dtype.unwrap_or(candle_core::quantized::GgmlDType::F32),
            elems: t.elems(),
        };
        match t.dtype {
            Some(_) => {
                metas.push(meta);
                ranges.push(t.range.clone());
            }
            // A tensor of a type without a block layout is an error only when selected.
            None if target.selects(&meta) => {
                return Err(FlipError::Malformed {
                    tensor: t.name.clone(),
                    what: format!(
                        "stored as {}, which has no float or block layout to corrupt",
                        t.dtype_name
                    ),
                })
            }
            None => {}
        }
    }
    let p = plan(&metas, target, severity, seed)?;
    let mut flips = Vec::with_capacity(p.sites.len());
    for chunk in p.sites.chunk_by(|a, b| a.tensor == b.tensor) {
        let range = ranges[chunk[0].tensor].clone();
        let start = range.start as u64;
        flips.extend(
            apply(&metas[chunk[0].tensor], chunk, &mut file.bytes[range])?
                .into_iter()
                .map(|mut f| {
                    f.file_offset = Some(start + f.byte);
                    f
                }),
        );
    }
    Ok(FlipList::new(target, severity, seed, &p, flips))
}

/// Where the flip list of a damaged file goes: beside it, `<file>.flips.json`.
pub fn flips_path(damaged: &Path) -> PathBuf {
    let mut s = damaged.as_os_str().to_owned();
    s.push(".flips.json");
    PathBuf::from(s)
}

/// Reads the model at `input` (a GGUF, a .safetensors file, or a Hugging Face folder),
/// corrupts it and writes the damaged copy to `out` (a folder's other files are copied
/// beside its damaged `model.safetensors`) and the flip list beside the damaged file.
/// Returns the list and the damaged file's path.
pub fn write_corrupted(
    input: &Path,
    out: &Path,
    target: &Target,
    severity: Severity,
    seed: u64,
) -> Result<(FlipList, PathBuf), CorruptFileError> {
    let model = StoredFile::model_file(input)?;
    let damaged = if input.is_dir() {
        out.join("model.safetensors")
    } else {
        out.to_path_buf()
    };
    if std::fs::canonicalize(&damaged)
        .ok()
        .is_some_and(|d| std::fs::canonicalize(&model).ok() == Some(d))
    {
        return Err(CorruptFileError::SameFile { path: damaged });
    }
    let mut file = StoredFile::read(&model)?;
    let source = FileId {
        path: model.display().to_string(),
        sha256: sha256_hex(&file.bytes),
    };
    let mut list = corrupt_file(&mut file, target, severity, seed).map_err(|source| {
        CorruptFileError::Flip {
            path: model.clone(),
            source: Box::new(source),
        }
    })?;
    if input.is_dir() {
        copy_siblings(input, out)?;
    }
    atomic_write(&damaged, &file.bytes)?;
    list.source = Some(source);
    list.output = Some(FileId {
        path: damaged.display().to_string(),
        sha256: sha256_hex(&file.bytes),
    });
    let json = serde_json::to_string_pretty(&list).unwrap_or_default();
    atomic_write(&flips_path(&damaged), json.as_bytes())?;
    Ok((list, damaged))
}

/// Copies a model folder's files other than `model.safetensors` (config, tokenizer).
fn copy_siblings(input: &Path, out: &Path) -> Result<(), CorruptFileError> {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> crate::fsutil::FsError + '_ {
        move |source| crate::fsutil::FsError {
            path: path.to_path_buf(),
            source,
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(input)
        .map_err(io(input))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(input))?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let (name, path) = (e.file_name(), e.path());
        if name == "model.safetensors" || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        atomic_write(&out.join(&name), &bytes)?;
    }
    Ok(())
}
