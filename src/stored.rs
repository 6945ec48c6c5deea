//! A model file as stored ([`StoredFile`]): its bytes and where each tensor's data lies in
//! them, for GGUF and safetensors alike. Corruption flips bits in these ranges; manifests
//! hash them. Both formats are validated before any range is trusted (the bounded GGUF
//! parser, the safetensors crate's own header check). Public as part of the transform
//! toolkit: bit flips ([`crate::transform::flip`]) address these ranges.

use crate::gguf_guard::GgufError;
use crate::model::{ggml_from_code, gguf_to_hf};
use candle_core::quantized::GgmlDType;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a model file could not be read as a tensor table.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    /// The file could not be read.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// A GGUF that fails the bounded check.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A safetensors file whose header is invalid.
    #[error("{}: safetensors: {reason}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// Neither a GGUF nor a safetensors file (by its first bytes and name).
    #[error("{}: neither a GGUF file nor a .safetensors file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
}

/// The two tensor-file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// llama.cpp's GGUF.
    Gguf,
    /// Hugging Face safetensors.
    Safetensors,
}

/// One tensor's place in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    /// Name as stored.
    pub name: String,
    /// Hugging Face name (a GGUF name mapped; `None` for tensors no Llama name matches).
    pub hf_name: Option<String>,
    /// Storage type name as the file says it (`q4_0`, `f32`, `I64`).
    pub dtype_name: String,
    /// The GGML type, when it is one (safetensors' F32, F16, BF16 are).
    pub dtype: Option<GgmlDType>,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Absolute byte range of its data in the file.
    pub range: Range<usize>,
}

impl StoredTensor {
    /// Elements.
    pub fn elems(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A file's bytes and tensor table, tensors in data order.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// The file read.
    pub path: PathBuf,
    /// Its format.
    pub format: FileFormat,
    /// Every byte.
    pub bytes: Vec<u8>,
    /// Where the tensor data starts (everything before is header).
    pub data_start: usize,
    /// Tensors, sorted by where their data lies.
    pub tensors: Vec<StoredTensor>,
}

impl StoredFile {
    /// Reads `path`: GGUF by its magic, safetensors by its `.safetensors` name.
    pub fn read(path: &Path) -> Result<StoredFile, StoredError> {
        // A device or FIFO has no size to trust: only regular files are read whole.
        crate::fsutil::require_regular_file(path)?;
        let bytes = std::fs::read(path).map_err(|source| crate::fsutil::FsError {
            path: path.to_path_buf(),
            source,
        })?;
        StoredFile::from_bytes(path, bytes)
    }

    /// Parses `bytes` that were read from `path` (the path names the file in errors and
    /// picks the format when the bytes do not start with GGUF's magic).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<StoredFile, StoredError> {
        if bytes.starts_with(b"GGUF") {
            return StoredFile::gguf(path, bytes);
        }
        if path.extension().is_some_and(|e| e == "safetensors") {
            return StoredFile::safetensors(path, bytes);
        }
        Err(StoredError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }

    fn gguf(path: &Path, bytes: Vec<u8>) -> Result<StoredFile, StoredError> {
        // The bounded parser reads from a file; a copy in a temporary file would double
        // the I/O, and the caller read these very bytes from `path`, so parse the bytes.
        let summary = crate::gguf_guard::check_gguf_bytes(&bytes, path)?;
        let data_start = summary.data_start as usize;
        let mut tensors: Vec<StoredTensor> = summary
            .tensors
            .iter()
            .map(|t| {
                let dtype = ggml_from_code(t.ggml_type.code());
                let start = data_start + t.offset as usize;
                StoredTensor {
                    name: t.name.clone(),
                    hf_name: gguf_to_hf(&t.name),
                    dtype_name: dtype
                        .map(crate::model::ggml_type_name)
                        .unwrap_or("?")
                        .to_string(),
                    dtype,
                    shape: t.dims.iter().rev().copied().collect(),
                    range: start..start + t.n_bytes as usize,
                }
            })
            .collect();
        tensors.sort_by_key(|t| t.range.start);
        Ok(StoredFile {
            path: path.to_path_buf(),
            format: FileFormat::Gguf,
            bytes,
            data_start,
            tensors,
        })
    }

    fn safetensors(path: &Path, bytes: Vec<u8>) -> Result<StoredFile, StoredError> {
        let bad = |reason: String| StoredError::Safetensors {
            path: path.to_path_buf(),
            reason,
        };
        let (n, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let data_start = 8 + n;
        let mut tensors: Vec<StoredTensor> = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let dtype = match info.dtype {
                    safetensors::Dtype::F32 => Some(GgmlDType::F32),
                    safetensors::Dtype::F16 => Some(GgmlDType::F16),
                    safetensors::Dtype::BF16 => Some(GgmlDType::BF16),
                    _ => None,
                };
                let (a, b) = info.data_offsets;
                StoredTensor {
                    hf_name: Some(name.clone()),
                    name,
                    dtype_name: format!("{:?}", info.dtype),
                    dtype,
                    shape: info.shape.iter().map(|d| *d as u64).collect(),
                    range: data_start + a..data_start + b,
                }
            })
            .collect();
        tensors.sort_by(|x, y| (x.range.start, &x.name).cmp(&(y.range.start, &y.name)));
        Ok(StoredFile {
            path: path.to_path_buf(),
            format: FileFormat::Safetensors,
            bytes,
            data_start,
            tensors,
        })
    }

    /// The values of tensor `t` as f32 (`None` for types that are not weights, such as
    /// safetensors' integer buffers). Floats are decoded here, byte by byte; quantized
    /// blocks are copied out and dequantized by candle.
    pub fn values(&self, t: &StoredTensor) -> Result<Option<Vec<f32>>, candle_core::Error> {
        let bytes = &self.bytes[t.range.clone()];
        let float =
            |w: usize, f: fn(&[u8]) -> f32| Ok(Some(bytes.chunks_exact(w).map(f).collect()));
        match t.dtype {
            None => Ok(None),
            Some(GgmlDType::F32) => float(4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Some(GgmlDType::F16) => float(2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            Some(GgmlDType::BF16) => float(2, |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            Some(q) => {
                let dims: Vec<usize> = t.shape.iter().map(|d| *d as usize).collect();
                let elems: usize = dims.iter().product();
                if !elems.is_multiple_of(q.block_size())
                    || bytes.len() != elems / q.block_size() * q.type_size()
                {
                    candle_core::bail!(
                        "{} bytes do not hold {elems} {} elements",
                        bytes.len(),
                        crate::model::ggml_type_name(q)
                    );
                }
                // candle reads the blocks through a pointer cast: hand it its own allocation.
                let owned = bytes.to_vec();
                let qt = candle_core::quantized::ggml_file::qtensor_from_ggml(
                    q,
                    &owned,
                    dims,
                    &candle_core::Device::Cpu,
                )?;
                Ok(Some(
                    qt.dequantize(&candle_core::Device::Cpu)?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                ))
            }
        }
    }

    /// The model file of `path`: the file itself, or a folder's `model.safetensors`.
    pub fn model_file(path: &Path) -> Result<PathBuf, StoredError> {
        if path.is_dir() {
            let st = path.join("model.safetensors");
            if st.is_file() {
                return Ok(st);
            }
            return Err(StoredError::UnknownFormat { path: st });
        }
        Ok(path.to_path_buf())
    }
}
