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
        Value::F32(x) => j.as_f64().is_some_and(|y| (y as f32).to_bits() == x.to_bits()),
        Value::F64(x) => j.as_f64().is_some_and(|y| y.to_bits() == x.to_bits()),
        Value::Bool(x) => j.as_bool() == Some(*x),
        Value::String(s) => j.as_str() == Some(s.as_str()),
        Value::Array(a) => j.as_array().is_some_and(|b| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))),
    }
}

/// Every way gguf-rs's reading of `path` differs from candle's (`metadata`, `tensors` in
/// file order and their stored `raw` bytes), one line each; a gguf-rs failure is one line.
pub fn reader_disagreements(path: &Path, metadata: &BTreeMap<String, Value>, tensors: &[TensorInfo], raw: &[(GgmlDType, Vec<u8>)]) -> Vec<String> {
    let Some(path_str) = path.to_str() else { return vec!["path is not UTF-8, which gguf-rs needs".into()] };
    let model = match gguf_rs::get_gguf_container_array_size(path_str, u64::MAX).and_then(|mut c| c.decode()) {
        Ok(m) => m,
        Err(e) => return vec![format!("gguf-rs cannot read the file: {e}")],
    };
    let mut out = Vec::new();
    let theirs = model.metadata();
    for (k, v) in metadata {
        match theirs.get(k) {
            None => out.push(format!("metadata '{k}': missing in gguf-rs")),
            Some(j) if !same(v, j) => out.push(format!("metadata '{k}': {} in candle, {} in gguf-rs", super::render_value(v), short(&j.to_string()))),
            Some(_) => {}
        }
    }
    out.extend(theirs.keys().filter(|k| !metadata.contains_key(*k)).map(|k| format!("metadata '{k}': missing in candle")));
    if model.tensors().len() != tensors.len() {
        out.push(format!("tensor count: {} in candle, {} in gguf-rs", tensors.len(), model.tensors().len()));
    }
    let mut file = std::fs::File::open(path).ok();
    for (i, ((ours, (dtype, bytes)), t)) in tensors.iter().zip(raw).zip(model.tensors()).enumerate() {
        let shape: Vec<usize> = t.shape.iter().rev().map(|&d| d as usize).collect();
        if ours.name != t.name || ggml_type_code(*dtype) != t.kind || ours.shape != shape || bytes.len() as u64 != t.size {
            out.push(format!(
                "tensor {i}: '{}' {} {:?} {} bytes in candle, '{}' type {} {:?} {} bytes in gguf-rs",
                ours.name, ours.dtype, ours.shape, bytes.len(), t.name, t.kind, shape, t.size
            ));
            continue;
        }
        let at = model.data_offset() + t.offset;
        let mut theirs = vec![0u8; bytes.len()];
        let read = file.as_mut().map(|f| f.seek(SeekFrom::Start(at)).and_then(|_| f.read_exact(&mut theirs)));
        match read {
            Some(Ok(())) if &theirs == bytes => {}
            Some(Ok(())) => out.push(format!("tensor '{}': bytes at gguf-rs's offset {at} differ from candle's", t.name)),
            Some(Err(e)) => out.push(format!("tensor '{}': reading {} bytes at gguf-rs's offset {at}: {e}", t.name, bytes.len())),
            None => out.push(format!("tensor '{}': file could not be reopened", t.name)),
        }
    }
    out
}

fn short(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
