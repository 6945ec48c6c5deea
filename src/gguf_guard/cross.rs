//! [`cross_check_with_gguf_rs`]: reads a file with the gguf-rs crate, an independent second
//! reader, and compares everything it reports with [`super::validate_gguf`]'s summary.

use super::digest::{Fnv, Scalar};
use super::{validate_gguf, MetaValue, ValueKind};
use serde_json::Value as Json;
use std::path::Path;

/// Compares one metadata value; `Err` says how they differ.
fn same_value(ours: &MetaValue, theirs: &Json) -> Result<(), String> {
    let ok = match ours {
        MetaValue::Uint(_, v) => theirs.as_u64() == Some(*v),
        MetaValue::Int(_, v) => theirs.as_i64() == Some(*v),
        MetaValue::Bool(v) => theirs.as_bool() == Some(*v),
        MetaValue::Str(v) => theirs.as_str() == Some(v.as_str()),
        MetaValue::F32(_) | MetaValue::F64(_) => {
            let kind = if matches!(ours, MetaValue::F32(_)) {
                ValueKind::F32
            } else {
                ValueKind::F64
            };
            let mut a = Fnv::new();
            a.scalar(&match ours {
                MetaValue::F32(v) => Scalar::F32(*v),
                MetaValue::F64(v) => Scalar::F64(*v),
                _ => Scalar::Bool(false),
            });
            let mut b = Fnv::new();
            b.scalar(&to_scalar(kind, theirs)?);
            a.finish() == b.finish()
        }
        MetaValue::Array { elem, len, digest } => {
            let items = theirs.as_array().ok_or("gguf-rs has no array")?;
            if items.len() as u64 != *len {
                return Err(format!("{len} elements here, {} in gguf-rs", items.len()));
            }
            let mut h = Fnv::new();
            for (i, item) in items.iter().enumerate() {
                h.scalar(&to_scalar(*elem, item).map_err(|e| format!("element {i}: {e}"))?);
            }
            h.finish() == *digest
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} here, {} in gguf-rs",
            short(&format!("{ours:?}")),
            short(&theirs.to_string())
        ))
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Interprets a gguf-rs JSON value as an element of the type our parser saw.
fn to_scalar(kind: ValueKind, v: &Json) -> Result<Scalar, String> {
    let bad = || format!("gguf-rs value {} is not a {kind:?}", short(&v.to_string()));
    Ok(match kind {
        ValueKind::U8 | ValueKind::U16 | ValueKind::U32 | ValueKind::U64 => {
            Scalar::Uint(v.as_u64().ok_or_else(bad)?)
        }
        ValueKind::I8 | ValueKind::I16 | ValueKind::I32 | ValueKind::I64 => {
            Scalar::Int(v.as_i64().ok_or_else(bad)?)
        }
        // serde_json writes non-finite floats as null; f32s are printed in their shortest
        // f32 form, so they round-trip only after narrowing back to f32.
        ValueKind::F32 if v.is_null() => Scalar::F32(f32::NAN),
        ValueKind::F64 if v.is_null() => Scalar::F64(f64::NAN),
        ValueKind::F32 => Scalar::F32(v.as_f64().ok_or_else(bad)? as f32),
        ValueKind::F64 => Scalar::F64(v.as_f64().ok_or_else(bad)?),
        ValueKind::Bool => Scalar::Bool(v.as_bool().ok_or_else(bad)?),
        ValueKind::String => Scalar::Str(v.as_str().ok_or_else(bad)?.to_string()),
        ValueKind::Array => return Err("nested arrays are not read by gguf-rs".into()),
    })
}

/// Why the two readers do not agree on a file.
#[derive(Debug, thiserror::Error)]
pub enum CrossCheckError {
    /// Our validator refuses the file (gguf-rs is not asked).
    #[error(transparent)]
    Invalid(#[from] super::GgufError),
    /// gguf-rs cannot read a file our validator accepts, or reads it differently.
    #[error("{}: {what}", file.display())]
    Disagree {
        /// The GGUF file, as given.
        file: std::path::PathBuf,
        /// The first disagreement.
        what: String,
    },
}

/// Runs [`validate_gguf`] on `path` and, only if it passes, reads the file again with gguf-rs
/// and compares version, counts, alignment, data start, every metadata key and value, and
/// every tensor's name, type, shape and offset. Returns the first disagreement.
pub fn cross_check_with_gguf_rs(path: &Path) -> Result<(), CrossCheckError> {
    let ours = validate_gguf(path)?;
    let disagree = |what: String| CrossCheckError::Disagree {
        file: path.to_path_buf(),
        what,
    };
    let path_str = path
        .to_str()
        .ok_or_else(|| disagree("path is not UTF-8, which gguf-rs needs".into()))?;
    let mut container = gguf_rs::get_gguf_container_array_size(path_str, u64::MAX)
        .map_err(|e| disagree(format!("gguf-rs could not open it: {e}")))?;
    let model = container
        .decode()
        .map_err(|e| disagree(format!("gguf-rs could not decode it: {e}")))?;
    let differ = |what: String| Err(disagree(format!("gguf-rs disagrees on {what}")));

    if model.get_version() != format!("v{}", ours.version) {
        return differ(format!(
            "the version: v{} here, {} there",
            ours.version,
            model.get_version()
        ));
    }
    if model.num_kv() != ours.metadata.len() as u64 || model.metadata().len() != ours.metadata.len()
    {
        return differ(format!(
            "the metadata count: {} here, {} declared / {} read there",
            ours.metadata.len(),
            model.num_kv(),
            model.metadata().len()
        ));
    }
    if model.num_tensor() != ours.tensors.len() as u64
        || model.tensors().len() != ours.tensors.len()
    {
        return differ(format!(
            "the tensor count: {} here, {} there",
            ours.tensors.len(),
            model.tensors().len()
        ));
    }
    if model.alignment() != ours.alignment || model.data_offset() != ours.data_start {
        return differ(format!(
            "the data layout: alignment {} / data start {} here, {} / {} there",
            ours.alignment,
            ours.data_start,
            model.alignment(),
            model.data_offset()
        ));
    }
    for e in &ours.metadata {
        let Some(theirs) = model.metadata().get(&e.key) else {
            return differ(format!("metadata key '{}': missing there", e.key));
        };
        if let Err(msg) = same_value(&e.value, theirs) {
            return differ(format!("metadata '{}': {msg}", e.key));
        }
    }
    for (i, (a, b)) in ours.tensors.iter().zip(model.tensors()).enumerate() {
        if a.name != b.name
            || a.ggml_type.code() != b.kind
            || a.dims != b.shape
            || a.offset != b.offset
        {
            return differ(format!(
                "tensor {i}: '{}' {:?} (code {}) dims {:?} offset {} here, '{}' code {} dims {:?} offset {} there",
                a.name,
                a.ggml_type,
                a.ggml_type.code(),
                a.dims,
                a.offset,
                b.name,
                b.kind,
                b.shape,
                b.offset
            ));
        }
    }
    Ok(())
}
