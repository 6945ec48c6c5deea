//! Hugging Face folders: `config.json` + `model.safetensors` (+ `tokenizer.json`), written
//! deterministically and atomically ([`save_hf_folder`]) and read back ([`load_hf_folder`]).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype as StDtype, SafeTensors};

use super::atomic::write_atomic;
use super::config::LlamaConfig;
use super::error::{io_err, ModelError, Result};
use super::rope_layout::RopeLayout;
use super::weights::{Weight, Weights};

/// Writes `dir/config.json`, `dir/model.safetensors` (f32, HF names, HF rotate-half Q/K
/// order, `metadata` in the header's `__metadata__`) and `dir/tokenizer.json` if given.
///
/// Bytes are a function of the weights and metadata only (tensors and metadata keys in
/// sorted order), so equal inputs give equal file hashes. `format = "pt"` is added to the
/// metadata unless present: `transformers` refuses safetensors metadata without it.
pub fn save_hf_folder(
    dir: &Path,
    weights: &Weights,
    tokenizer_json: Option<&str>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let w = weights.to_layout(RopeLayout::Neox)?.to_f32()?;
    w.check_complete()?;
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let mut meta = metadata.clone();
    meta.entry("format".to_string())
        .or_insert_with(|| "pt".to_string());
    let bytes = serialize(&w, &meta)?;
    write_atomic(&dir.join("model.safetensors"), &bytes)?;
    write_atomic(&dir.join("config.json"), w.config.to_hf_json().as_bytes())?;
    if let Some(tok) = tokenizer_json {
        write_atomic(&dir.join("tokenizer.json"), tok.as_bytes())?;
    }
    Ok(())
}

/// The safetensors layout, by hand: the crate's serializer takes metadata as a
/// `HashMap`, whose iteration order (and so the header bytes) changes run to run.
fn serialize(w: &Weights, meta: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let json = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""));
    let mut entries = Vec::new();
    if !meta.is_empty() {
        let kv: Vec<String> = meta
            .iter()
            .map(|(k, v)| format!("{}:{}", json(k), json(v)))
            .collect();
        entries.push(format!("\"__metadata__\":{{{}}}", kv.join(",")));
    }
    let mut data = Vec::new();
    for (name, weight) in &w.tensors {
        let start = data.len();
        data.extend_from_slice(&weight.raw_bytes()?);
        let shape: Vec<String> = weight.shape().iter().map(|d| d.to_string()).collect();
        entries.push(format!(
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
            json(name),
            shape.join(","),
            data.len()
        ));
    }
    let mut header = format!("{{{}}}", entries.join(","));
    // The spec pads the header with spaces so the data starts 8-byte aligned.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

/// The safetensors files of a folder: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json` (plain file names inside the folder, nothing else).
fn shard_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index = dir.join("model.safetensors.index.json");
    let parsed: Index =
        crate::input::read_json(&index, crate::fsutil::MAX_TEXT_BYTES).map_err(|e| {
            ModelError::Parse {
                path: index.clone(),
                reason: e.detail(),
            }
        })?;
    let files: std::collections::BTreeSet<&str> =
        parsed.weight_map.values().map(String::as_str).collect();
    let plain = |f: &str| {
        !f.is_empty()
            && !f.contains(['/', '\\'])
            && f != "."
            && f != ".."
            && f.ends_with(".safetensors")
    };
    if let Some(f) = files.iter().find(|f| !plain(f)) {
        return Err(ModelError::Parse {
            path: index.clone(),
            reason: format!(
                "shard '{}' is not a .safetensors file name inside the folder",
                crate::excerpt::excerpt(f)
            ),
        });
    }
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

/// Reads a Hugging Face Llama folder. f32, f16 and bf16 tensors become f32; a tied
/// checkpoint's redundant `lm_head.weight` and old `rotary_emb.inv_freq` buffers are
/// dropped. Errors name the file and tensor.
pub fn load_hf_folder(dir: &Path) -> Result<Weights> {
    let cfg_path = dir.join("config.json");
    let text =
        crate::fsutil::read_text(&cfg_path).map_err(|e| io_err("read", &cfg_path)(e.source))?;
    let config = LlamaConfig::from_hf_json(&text, &cfg_path)?;
    let mut tensors = BTreeMap::new();
    for file in shard_files(dir)? {
        // Strict header (no duplicate keys), read only as far as it says, before the crate.
        let bytes = super::safetensors_read::read_file(&file)?;
        let err = |tensor: Option<&str>, reason: String| ModelError::Safetensors {
            path: file.clone(),
            tensor: tensor.map(str::to_string),
            reason,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| err(None, e.to_string()))?;
        for (name, view) in st.iter() {
            if name.ends_with("rotary_emb.inv_freq") {
                continue;
            }
            let dtype = match view.dtype() {
                StDtype::F32 => DType::F32,
                StDtype::F16 => DType::F16,
                StDtype::BF16 => DType::BF16,
                other => {
                    return Err(err(
                        Some(name),
                        format!("dtype {other:?} is not f32, f16 or bf16"),
                    ))
                }
            };
            let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| err(Some(name), e.to_string()))?;
            if tensors.insert(name.to_string(), Weight::Float(t)).is_some() {
                return Err(err(Some(name), "is stored in more than one shard".into()));
            }
        }
    }
    if config.tie_word_embeddings {
        tensors.remove("lm_head.weight");
    }
    let w = Weights {
        config,
        tensors,
        rope: RopeLayout::Neox,
    };
    w.check_complete().map_err(|e| ModelError::Safetensors {
        path: dir.to_path_buf(),
        tensor: None,
        reason: e.to_string(),
    })?;
    Ok(w)
}

/// The `__metadata__` of `dir/model.safetensors`, reading only the header.
pub fn read_hf_metadata(dir: &Path) -> Result<BTreeMap<String, String>> {
    let header = super::safetensors_read::header(&dir.join("model.safetensors"))?;
    Ok(header.metadata.into_iter().collect())
}
