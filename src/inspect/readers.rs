//! candle's reader against gguf-rs: every metadata key and value, every tensor's name,
//! type, shape, size and stored bytes.

use super::TensorInfo;
use crate::model::ggml_type_code;
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Whether candle's value and gguf-rs's JSON rendering of it are the same value; floats
/// compare by bits (gguf-rs prints f32 in its shortest form, which narrows back exactly;
/// non-finite floats become null).
fn same(v: &Value, j: &Json) -> bool {
    match v {
        Value::U8(x) => j.as_u64() == Some(u64::from(*x)),
        Value::U16(x) => j.as_u64() == Some(u64::from(*x)),
        Value::U32(x) => j.as_u64() == Some(u64::from(*x)),
        Value::U64(x) => j.as_u64() == Some(*x),
        Value::I8(x) => j.as_i64() == Some(i64::from(*x)),
        Value::I16(x) => j.as_i64() == Some(i64::from(*x)),
        Value::I32(x) => j.as_i64() == Some(i64::from(*x)),
        Value::I64(x) => j.as_i64() == Some(*x),
        Value::F32(x) if !x.is_finite() => j.is_null(),
        Value::F64(x) if !x.is_finite() => j.is_null(),
        Value::F32(x) => j
            .as_f64()
            .is_some_and(|y| (y as f32).to_bits() == x.to_bits()),
        Value::F64(x) => j.as_f64().is_some_and(|y| y.to_bits() == x.to_bits()),
        Value::Bool(x) => j.as_bool() == Some(*x),
        Value::String(s) => j.as_str() == Some(s.as_str()),
        Value::Array(a) => j
            .as_array()
            .is_some_and(|b| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))),
    }
}

/// Every way gguf-rs's reading of `path` differs from candle's (`metadata`, `tensors` in
/// file order and their stored `raw` bytes), one line each. A read that fails (gguf-rs
/// refusing the file, the file not reopening, a short read) is an `Err`: it compared
/// nothing, so it must not count as a disagreement (which a negative claim would welcome).
pub fn reader_disagreements(
    path: &Path,
    metadata: &BTreeMap<String, Value>,
    tensors: &[TensorInfo],
    raw: &[(GgmlDType, Vec<u8>)],
) -> Result<Vec<String>, String> {
    let path_str = path
        .to_str()
        .ok_or("path is not UTF-8, which gguf-rs needs")?;
    let model = gguf_rs::get_gguf_container_array_size(path_str, u64::MAX)
        .and_then(|mut c| c.decode())
        .map_err(|e| format!("gguf-rs cannot read the file: {e}"))?;
    let mut out = Vec::new();
    let theirs = model.metadata();
    for (k, v) in metadata {
        match theirs.get(k) {
            None => out.push(format!("metadata '{k}': missing in gguf-rs")),
            Some(j) if !same(v, j) => out.push(format!(
                "metadata '{k}': {} in candle, {} in gguf-rs",
                super::render_value(v),
                short(&j.to_string())
            )),
            Some(_) => {}
        }
    }
    out.extend(
        theirs
            .keys()
            .filter(|k| !metadata.contains_key(*k))
            .map(|k| format!("metadata '{k}': missing in candle")),
    );
    if model.tensors().len() != tensors.len() {
        out.push(format!(
            "tensor count: {} in candle, {} in gguf-rs",
            tensors.len(),
            model.tensors().len()
        ));
    }
    let mut file = std::fs::File::open(path).map_err(|e| format!("reopening the file: {e}"))?;
    for (i, ((ours, (dtype, bytes)), t)) in tensors.iter().zip(raw).zip(model.tensors()).enumerate()
    {
        let shape: Vec<usize> = t.shape.iter().rev().map(|&d| d as usize).collect();
        if ours.name != t.name
            || ggml_type_code(*dtype) != t.kind
            || ours.shape != shape
            || bytes.len() as u64 != t.size
        {
            out.push(format!(
                "tensor {i}: '{}' {} {:?} {} bytes in candle, '{}' type {} {:?} {} bytes in gguf-rs",
                ours.name, ours.dtype, ours.shape, bytes.len(), t.name, t.kind, shape, t.size
            ));
            continue;
        }
        let at = model.data_offset() + t.offset;
        let mut theirs = vec![0u8; bytes.len()];
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut theirs))
            .map_err(|e| {
                format!(
                    "tensor '{}': reading {} bytes at gguf-rs's offset {at}: {e}",
                    t.name,
                    bytes.len()
                )
            })?;
        if &theirs != bytes {
            out.push(format!(
                "tensor '{}': bytes at gguf-rs's offset {at} differ from candle's",
                t.name
            ));
        }
    }
    Ok(out)
}

fn short(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gguf_rs_cannot_read_is_a_failure_not_a_disagreement() {
        // Before: this came back as one "disagreement", which ST-12 (registered to see
        // disagreements) would have counted as confirmed.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.gguf");
        let e = reader_disagreements(&missing, &BTreeMap::new(), &[], &[]).unwrap_err();
        assert!(e.contains("gguf-rs cannot read the file"), "{e}");
        let junk = dir.path().join("junk.gguf");
        std::fs::write(&junk, b"not a gguf file at all").unwrap();
        assert!(reader_disagreements(&junk, &BTreeMap::new(), &[], &[]).is_err());
    }
}
