//! [`Weights`]: a model's tensors keyed by Hugging Face names, float or quantized, plus
//! the config they belong to. Every loader produces one and every writer consumes one, so
//! transforms (quantize, corrupt, export) work on this type alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use super::config::LlamaConfig;
use super::error::{CandleContext, ModelError, Result};
use super::rope_layout::{permute_rows, RopeLayout};

/// One tensor: plain floats, or candle's block-quantized storage kept as it was read.
#[derive(Debug, Clone)]
pub enum Weight {
    /// A float tensor (f32 after every loader; f16/bf16 allowed and converted on use).
    Float(Tensor),
    /// A GGML-typed tensor (Q8_0, Q4_1, K-quants, and also F16/BF16 from GGUF).
    Quant(Arc<QTensor>),
}

/// Every GGML type candle knows, in ggml's code order but for BF16 (code 30) third.
pub(crate) const GGML_TYPES: [GgmlDType; 15] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q8_1,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8K,
];

/// The types a model file stores: all of [`GGML_TYPES`] but Q8_1 and Q8_K, which ggml uses
/// only for activations.
#[cfg(test)]
pub(crate) fn stored_ggml_types() -> impl Iterator<Item = GgmlDType> {
    GGML_TYPES
        .into_iter()
        .filter(|t| !matches!(t, GgmlDType::Q8_1 | GgmlDType::Q8K))
}

/// The GGML type whose GGUF code is `code`, if candle knows it.
pub(crate) fn ggml_from_code(code: u32) -> Option<GgmlDType> {
    GGML_TYPES.into_iter().find(|t| ggml_type_code(*t) == code)
}

/// The short lowercase name llama.cpp uses for a GGML type (`q8_0`, `q4_k`, `f16`).
pub fn ggml_type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_k",
        GgmlDType::Q3K => "q3_k",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q5K => "q5_k",
        GgmlDType::Q6K => "q6_k",
        GgmlDType::Q8K => "q8_k",
    }
}

/// The type's code in GGUF files (ggml's `enum ggml_type`).
pub fn ggml_type_code(t: GgmlDType) -> u32 {
    match t {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

impl Weight {
    /// Dimensions, outermost first (`(out_features, in_features)` for projections).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Weight::Float(t) => t.dims().to_vec(),
            Weight::Quant(q) => q.shape().dims().to_vec(),
        }
    }

    /// Storage type: `f32`, `f16`, `bf16`, or a GGML name such as `q8_0`.
    pub fn dtype_name(&self) -> String {
        match self {
            Weight::Float(t) => t.dtype().as_str().to_string(),
            Weight::Quant(q) => ggml_type_name(q.dtype()).to_string(),
        }
    }

    /// The values as an f32 tensor on `device` (dequantizing if needed).
    pub fn to_f32_tensor(&self, device: &Device) -> Result<Tensor> {
        self.to_tensor(device, DType::F32)
    }

    /// The values as a `dtype` tensor on `device` (dequantizing if needed). A float tensor
    /// already of that dtype and device is returned as itself, not copied, so a model built
    /// on trainable variables stays differentiable with respect to them.
    pub fn to_tensor(&self, device: &Device, dtype: DType) -> Result<Tensor> {
        match self {
            Weight::Float(t) => t.to_dtype(dtype)?.to_device(device).ctx("convert weight"),
            Weight::Quant(q) => q
                .dequantize(device)
                .and_then(|t| t.to_dtype(dtype))
                .ctx("dequantize weight"),
        }
    }

    /// The stored bytes, little-endian, row-major: what a file would hold.
    pub fn raw_bytes(&self) -> Result<Vec<u8>> {
        match self {
            Weight::Float(t) => {
                let flat = t.flatten_all()?;
                let bytes = match t.dtype() {
                    DType::F32 => flat
                        .to_vec1::<f32>()?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                    DType::F16 => flat
                        .to_vec1::<half::f16>()?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                    DType::BF16 => flat
                        .to_vec1::<half::bf16>()?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                    other => {
                        return Err(ModelError::Unsupported {
                            what: format!("float weight dtype {}", other.as_str()),
                        })
                    }
                };
                Ok(bytes)
            }
            Weight::Quant(q) => Ok(q.data().ctx("read quantized bytes")?.into_owned()),
        }
    }

    /// Number of scalar parameters.
    pub fn elem_count(&self) -> usize {
        self.shape().iter().product()
    }
}

/// A complete set of model tensors under Hugging Face names.
///
/// Names: `model.embed_tokens.weight`, `model.layers.N.self_attn.{q,k,v,o}_proj.weight`,
/// `model.layers.N.mlp.{gate,up,down}_proj.weight`,
/// `model.layers.N.{input_layernorm,post_attention_layernorm}.weight`, `model.norm.weight`,
/// and `lm_head.weight` unless embeddings are tied.
#[derive(Debug, Clone)]
pub struct Weights {
    /// The architecture these tensors belong to.
    pub config: LlamaConfig,
    /// Tensors by HF name (sorted, which is also the canonical hashing order).
    pub tensors: BTreeMap<String, Weight>,
    /// Row order of the Q and K projections; every loader returns [`RopeLayout::Neox`].
    pub rope: RopeLayout,
}

/// The tensors a config requires, with their shapes, by HF name.
pub fn expected_shapes(cfg: &LlamaConfig) -> BTreeMap<String, Vec<usize>> {
    expected_tensors(cfg).collect()
}

/// The tensors a config requires and their shapes, generated one at a time (globals
/// first, then layer by layer): a config that declares more layers than a file holds costs
/// nothing before its first missing tensor is found.
pub fn expected_tensors(cfg: &LlamaConfig) -> impl Iterator<Item = (String, Vec<usize>)> + '_ {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let kv = cfg.num_key_value_heads * cfg.head_dim();
    let mut globals = vec![
        ("model.embed_tokens.weight".to_string(), vec![v, h]),
        ("model.norm.weight".to_string(), vec![h]),
    ];
    if !cfg.tie_word_embeddings {
        globals.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    let layers = (0..cfg.num_hidden_layers).flat_map(move |l| {
        [
            ("self_attn.q_proj", vec![h, h]),
            ("self_attn.k_proj", vec![kv, h]),
            ("self_attn.v_proj", vec![kv, h]),
            ("self_attn.o_proj", vec![h, h]),
            ("mlp.gate_proj", vec![i, h]),
            ("mlp.up_proj", vec![i, h]),
            ("mlp.down_proj", vec![h, i]),
            ("input_layernorm", vec![h]),
            ("post_attention_layernorm", vec![h]),
        ]
        .into_iter()
        .map(move |(name, shape)| (format!("model.layers.{l}.{name}.weight"), shape))
    });
    globals.into_iter().chain(layers)
}

impl Weights {
    /// The tensor `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&Weight> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
            })
    }

    /// Checks the config and that the tensors are exactly the expected names and shapes.
    /// The expected tensors are checked one at a time against those present, so the work
    /// and memory are bounded by what was actually loaded, whatever the config declares.
    pub fn check_complete(&self) -> Result<()> {
        self.config.validate()?;
        let mut n_expected = 0;
        for (name, shape) in expected_tensors(&self.config) {
            let w = self.get(&name)?;
            if w.shape() != shape {
                return Err(ModelError::ShapeMismatch {
                    name,
                    expected: shape,
                    got: w.shape(),
                });
            }
            n_expected += 1;
        }
        if n_expected == self.tensors.len() {
            return Ok(());
        }
        // Every expected tensor is present, so this set is no larger than what was loaded.
        let expected = expected_shapes(&self.config);
        if let Some(extra) = self.tensors.keys().find(|k| !expected.contains_key(*k)) {
            return Err(ModelError::UnexpectedTensor {
                name: extra.clone(),
            });
        }
        Ok(())
    }

    /// Total scalar parameters actually stored.
    pub fn param_count(&self) -> u64 {
        self.tensors.values().map(|w| w.elem_count() as u64).sum()
    }

    /// Every tensor as an f32 [`Weight::Float`] on the CPU (quantized ones dequantized).
    pub fn to_f32(&self) -> Result<Weights> {
        let mut tensors = BTreeMap::new();
        for (name, w) in &self.tensors {
            tensors.insert(name.clone(), Weight::Float(w.to_f32_tensor(&Device::Cpu)?));
        }
        Ok(Weights {
            config: self.config.clone(),
            tensors,
            rope: self.rope,
        })
    }

    /// SHA-256 (hex) over the tensors only, in name order: name, dtype, shape, raw bytes.
    /// Two `Weights` with equal hashes compute the same function given equal configs
    /// (compare configs separately: the hash ignores e.g. `rope_theta`).
    pub fn sha256(&self) -> Result<String> {
        let mut h = Sha256::new();
        for (name, w) in &self.tensors {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            let dt = w.dtype_name();
            h.update((dt.len() as u64).to_le_bytes());
            h.update(dt.as_bytes());
            let shape = w.shape();
            h.update((shape.len() as u64).to_le_bytes());
            for d in shape {
                h.update((d as u64).to_le_bytes());
            }
            let bytes = w.raw_bytes()?;
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The same model with Q/K projection rows in `layout` (a pure row permutation, also
    /// for quantized tensors since GGML quantizes each row on its own).
    pub fn to_layout(&self, layout: RopeLayout) -> Result<Weights> {
        if layout == self.rope {
            return Ok(self.clone());
        }
        let cfg = &self.config;
        let mut out = self.clone();
        for l in 0..cfg.num_hidden_layers {
            for (proj, heads) in [
                ("q_proj", cfg.num_attention_heads),
                ("k_proj", cfg.num_key_value_heads),
            ] {
                let name = format!("model.layers.{l}.self_attn.{proj}.weight");
                let w = self.get(&name)?;
                let permuted = permute_rows(&name, w, heads, cfg.head_dim(), layout)?;
                out.tensors.insert(name, permuted);
            }
        }
        out.rope = layout;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tests::tiny;
    use crate::model::init::seeded;

    #[test]
    fn every_ggml_code_maps_back() {
        for t in GGML_TYPES {
            assert_eq!(ggml_from_code(ggml_type_code(t)), Some(t));
        }
        assert_eq!(ggml_from_code(4), None);
    }

    #[test]
    fn complete_and_named_errors() {
        let w = seeded(&tiny(false), 1).unwrap();
        w.check_complete().unwrap();
        assert_eq!(w.param_count(), w.config.param_count());
        let mut missing = w.clone();
        missing.tensors.remove("model.layers.1.mlp.up_proj.weight");
        let e = missing.check_complete().unwrap_err().to_string();
        assert!(e.contains("model.layers.1.mlp.up_proj.weight"), "{e}");
        let mut extra = w.clone();
        extra.tensors.insert(
            "model.layers.2.mlp.up_proj.weight".into(),
            w.tensors["model.norm.weight"].clone(),
        );
        assert!(extra
            .check_complete()
            .unwrap_err()
            .to_string()
            .contains("layers.2"));
        let mut bad = w.clone();
        bad.tensors.insert(
            "model.norm.weight".into(),
            w.tensors["model.layers.0.input_layernorm.weight"].clone(),
        );
        bad.tensors.insert(
            "lm_head.weight".into(),
            w.tensors["model.layers.0.mlp.down_proj.weight"].clone(),
        );
        let e = bad.check_complete().unwrap_err().to_string();
        assert!(
            e.contains("lm_head.weight") && e.contains("[64, 96]"),
            "{e}"
        );
    }

    #[test]
    fn a_config_declaring_more_layers_than_loaded_fails_at_the_first_missing_tensor() {
        let mut w = seeded(&tiny(false), 1).unwrap();
        w.config.num_hidden_layers = crate::model::config::limits::LAYERS;
        let e = w.check_complete().unwrap_err().to_string();
        assert!(e.contains("model.layers.2.self_attn.q_proj.weight"), "{e}");
    }

    #[test]
    fn layout_round_trip_is_identity_for_float_and_quant() {
        let w = seeded(&tiny(true), 2).unwrap();
        let back = w
            .to_layout(RopeLayout::Interleaved)
            .unwrap()
            .to_layout(RopeLayout::Neox)
            .unwrap();
        assert_eq!(w.sha256().unwrap(), back.sha256().unwrap());
        assert_ne!(
            w.sha256().unwrap(),
            w.to_layout(RopeLayout::Interleaved)
                .unwrap()
                .sha256()
                .unwrap()
        );
        let mut q = w.clone();
        let name = "model.layers.0.self_attn.q_proj.weight";
        let t = w.tensors[name].to_f32_tensor(&Device::Cpu).unwrap();
        q.tensors.insert(
            name.into(),
            Weight::Quant(Arc::new(QTensor::quantize(&t, GgmlDType::Q8_0).unwrap())),
        );
        let q2 = q
            .to_layout(RopeLayout::Interleaved)
            .unwrap()
            .to_layout(RopeLayout::Neox)
            .unwrap();
        assert_eq!(q.sha256().unwrap(), q2.sha256().unwrap());
        assert_eq!(q2.tensors[name].dtype_name(), "q8_0");
    }
}
