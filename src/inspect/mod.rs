//! `groundtruth inspect`: what a GGUF file holds ([`Inspection`]), read by two independent
//! readers (candle's and gguf-rs) that must agree, and the structure checks the
//! `structure` claims count ([`findings`]).
//!
//! The bounded parser ([`crate::gguf_guard::validate_gguf`]) runs first, so a hostile file is
//! refused with one line naming the byte and the fault before either reader touches it.

pub mod findings;
mod readers;
mod tensor_stats;

pub(crate) use readers::reader_disagreements;
pub use tensor_stats::TensorStats;

use crate::gguf_guard::validate_gguf;
use crate::model::ggml_type_name;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::Device;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a file could not be inspected. One line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file is not a well-formed GGUF (the bounded parser's verdict).
    #[error(transparent)]
    Malformed(#[from] crate::gguf_guard::GgufError),
    /// A reader failed on a file the bounded parser accepted.
    #[error("{}: {reader}: {msg}", file.display())]
    Reader {
        /// The GGUF file, as given.
        file: PathBuf,
        /// `candle` or `gguf-rs`.
        reader: &'static str,
        /// What it said.
        msg: String,
    },
}

/// One tensor as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    /// GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Storage type (`q8_0`, `f32`).
    pub dtype: String,
    /// Shape, outermost first (`[rows, cols]`; GGUF stores it reversed).
    pub shape: Vec<usize>,
    /// Bytes stored.
    pub n_bytes: usize,
    /// SHA-256 of the stored bytes.
    pub sha256: String,
    /// Statistics of the (dequantized) values.
    pub stats: TensorStats,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The GGUF file, as given to [`inspect`].
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// GGUF version.
    pub version: u32,
    /// `general.*` and `<architecture>.*` scalar keys, rendered.
    pub architecture: BTreeMap<String, String>,
    /// Every metadata key (rendered in JSON: scalars in full, arrays as type and length).
    #[serde(serialize_with = "rendered")]
    pub metadata: BTreeMap<String, Value>,
    /// Number of metadata keys.
    pub metadata_count: usize,
    /// Number of tensors.
    pub tensor_count: usize,
    /// Tensors per storage type.
    pub dtypes: BTreeMap<String, usize>,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    /// Where candle and gguf-rs disagree (empty when they agree on every key and tensor,
    /// and when the comparison could not be made: then `reader_failure` says why).
    pub reader_disagreements: Vec<String>,
    /// Why gguf-rs's reading could not be compared (it refused the file, a read failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_failure: Option<String>,
}

fn rendered<S: serde::Serializer>(m: &BTreeMap<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(k, v)| (k, render_value(v))))
}

/// Renders a metadata value in one short line.
pub(crate) fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 60 => {
            format!("{:?}…", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => match a.first() {
            Some(first) => format!("[{:?}; {}]", first.value_type(), a.len()),
            None => "[]".into(),
        },
        Value::U8(x) => x.to_string(),
        Value::I8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
    }
}

/// Reads `path` with the bounded parser, candle and gguf-rs; summarizes every tensor.
pub fn inspect(path: &Path) -> Result<Inspection, InspectError> {
    let summary = validate_gguf(path)?;
    let candle_err = |msg: String| InspectError::Reader {
        file: path.to_path_buf(),
        reader: "candle",
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|e| candle_err(e.to_string()))?;
    let content = Content::read(&mut f).map_err(|e| candle_err(e.to_string()))?;
    let metadata: BTreeMap<String, Value> = content.metadata.clone().into_iter().collect();
    let arch = match metadata.get("general.architecture") {
        Some(Value::String(a)) => a.clone(),
        _ => String::new(),
    };
    let architecture = metadata
        .iter()
        .filter(|(k, v)| {
            (k.starts_with("general.") || (!arch.is_empty() && k.starts_with(&format!("{arch}."))))
                && !matches!(v, Value::Array(_))
        })
        .map(|(k, v)| (k.clone(), render_value(v)))
        .collect();
    let mut tensors = Vec::with_capacity(summary.tensors.len());
    let mut raw: Vec<(candle_core::quantized::GgmlDType, Vec<u8>)> =
        Vec::with_capacity(summary.tensors.len());
    let mut dtypes = BTreeMap::new();
    for t in &summary.tensors {
        let q = content
            .tensor(&mut f, &t.name, &Device::Cpu)
            .map_err(|e| candle_err(format!("tensor '{}': {e}", t.name)))?;
        let bytes = q
            .data()
            .map_err(|e| candle_err(format!("tensor '{}': {e}", t.name)))?
            .into_owned();
        let values = q
            .dequantize(&Device::Cpu)
            .and_then(|v| v.flatten_all())
            .and_then(|v| v.to_vec1::<f32>())
            .map_err(|e| candle_err(format!("tensor '{}': {e}", t.name)))?;
        let dtype = ggml_type_name(q.dtype()).to_string();
        *dtypes.entry(dtype.clone()).or_insert(0) += 1;
        tensors.push(TensorInfo {
            name: t.name.clone(),
            dtype,
            shape: q.shape().dims().to_vec(),
            n_bytes: bytes.len(),
            sha256: crate::fsutil::sha256_hex(&bytes),
            stats: TensorStats::of(&values),
        });
        raw.push((q.dtype(), bytes));
    }
    let (reader_disagreements, reader_failure) =
        match reader_disagreements(path, &metadata, &tensors, &raw) {
            Ok(d) => (d, None),
            Err(e) => (Vec::new(), Some(e)),
        };
    let sha256 = crate::fsutil::sha256_file(path).map_err(|e| candle_err(e.to_string()))?;
    Ok(Inspection {
        file: path.display().to_string(),
        sha256,
        size: summary.file_size,
        version: summary.version,
        architecture,
        metadata_count: metadata.len(),
        metadata,
        tensor_count: tensors.len(),
        dtypes,
        tensors,
        reader_disagreements,
        reader_failure,
    })
}

impl Inspection {
    /// The human-readable report `groundtruth inspect` prints.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "{}\n  sha256 {}\n  {} bytes, GGUF v{}, {} metadata keys, {} tensors\n",
            self.file, self.sha256, self.size, self.version, self.metadata_count, self.tensor_count
        );
        let types: Vec<String> = self
            .dtypes
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        let _ = writeln!(out, "  dtypes: {}", types.join(", "));
        out.push_str("\nmetadata:\n");
        for (k, v) in &self.architecture {
            let _ = writeln!(out, "  {k} = {v}");
        }
        for (k, v) in self
            .metadata
            .iter()
            .filter(|(k, _)| !self.architecture.contains_key(*k))
        {
            let _ = writeln!(out, "  {k} = {}", render_value(v));
        }
        out.push_str("\ntensors:\n  name | dtype | shape | min | max | mean | std | nan | inf | zeros | sha256\n");
        for t in &self.tensors {
            let s = &t.stats;
            let _ = writeln!(
                out,
                "  {} | {} | {:?} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {} | {} | {} | {}",
                t.name,
                t.dtype,
                t.shape,
                s.min,
                s.max,
                s.mean,
                s.std,
                s.nan,
                s.inf,
                s.zeros,
                &t.sha256[..16]
            );
        }
        if let Some(why) = &self.reader_failure {
            let _ = writeln!(out, "\nreaders: not compared: {why}");
            return out;
        }
        match self.reader_disagreements.len() {
            0 => out.push_str("\nreaders: candle and gguf-rs agree on every key and tensor\n"),
            n => {
                let _ = writeln!(
                    out,
                    "\nreaders: {n} disagreement(s) between candle and gguf-rs:"
                );
                for d in &self.reader_disagreements {
                    let _ = writeln!(out, "  {d}");
                }
            }
        }
        out
    }
}
