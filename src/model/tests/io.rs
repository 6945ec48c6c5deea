//! File round trips: HF folders and GGUF, f32 and quantized.

use std::collections::BTreeMap;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::DType;
use sha2::{Digest, Sha256};

use super::*;
use crate::model::{
    load_gguf, load_hf_folder, read_hf_metadata, save_gguf, save_hf_folder, seeded, RopeLayout,
};

fn file_sha(p: &std::path::Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn hf_folder_round_trip_is_bit_identical_and_deterministic() {
    let w = seeded(&tiny(true), 21).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = BTreeMap::from([("groundtruth.seed".to_string(), "21".to_string())]);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    save_hf_folder(&a, &w, Some("{\"model\":{}}"), &meta).unwrap();
    save_hf_folder(&b, &w, Some("{\"model\":{}}"), &meta).unwrap();
    assert_eq!(
        file_sha(&a.join("model.safetensors")),
        file_sha(&b.join("model.safetensors"))
    );
    let mut names: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json"],
        "no temp files left behind"
    );

    let back = load_hf_folder(&a).unwrap();
    assert_eq!(back.config, w.config);
    assert_eq!(back.sha256().unwrap(), w.sha256().unwrap());
    let toks = tokens(1, 6, 96, 21);
    let l0 = load(&w, MatmulPath::F32).forward(&toks, None).unwrap();
    let l1 = load(&back, MatmulPath::F32).forward(&toks, None).unwrap();
    assert_eq!(max_abs_diff(&l0, &l1), 0.0);
    let m = read_hf_metadata(&a).unwrap();
    assert_eq!(m.get("groundtruth.seed").map(String::as_str), Some("21"));
    assert_eq!(m.get("format").map(String::as_str), Some("pt"));
    // The crate's own parser accepts what we wrote by hand.
    let bytes = std::fs::read(a.join("model.safetensors")).unwrap();
    assert_eq!(
        safetensors::SafeTensors::deserialize(&bytes).unwrap().len(),
        w.tensors.len()
    );
}

#[test]
fn hf_folder_reads_f16_and_bf16_and_names_bad_tensors() {
    let w = seeded(&tiny(true), 22).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (dtype, st) in [
        (DType::F16, safetensors::Dtype::F16),
        (DType::BF16, safetensors::Dtype::BF16),
    ] {
        let mut owned = Vec::new();
        for (name, weight) in &w.tensors {
            let t = weight
                .to_f32_tensor(&Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            owned.push((
                name.clone(),
                t.dims().to_vec(),
                Weight::Float(t).raw_bytes().unwrap(),
            ));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = owned
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(st, s.clone(), b).unwrap(),
                )
            })
            .collect();
        std::fs::write(
            dir.path().join("model.safetensors"),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("config.json"), w.config.to_hf_json()).unwrap();
        let back = load_hf_folder(dir.path()).unwrap();
        let name = "model.layers.0.mlp.up_proj.weight";
        assert_eq!(back.tensors[name].dtype_name(), "f32");
        let d = max_abs_diff(
            &back.tensors[name].to_f32_tensor(&Device::Cpu).unwrap(),
            &w.tensors[name].to_f32_tensor(&Device::Cpu).unwrap(),
        );
        assert!(d < 1e-3, "{dtype:?}: {d}");
    }
    // An integer tensor is refused with the file and tensor named.
    let data = [0u8; 4 * 2];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I32, vec![2], &data).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors::serialize([("model.norm.weight", view)], None).unwrap(),
    )
    .unwrap();
    let e = load_hf_folder(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("model.norm.weight") && e.contains("I32"),
        "{e}"
    );
}

#[test]
fn gguf_f32_round_trip_matches_hf_path() {
    for tied in [true, false] {
        let w = seeded(&tiny(tied), 23).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        let extra = vec![("general.name".to_string(), Value::String("tiny".into()))];
        save_gguf(&p, &w, &extra).unwrap();
        let (back, info) = load_gguf(&p).unwrap();
        assert_eq!(back.config, w.config, "tied {tied}");
        assert_eq!(back.rope, RopeLayout::Neox);
        assert_eq!(back.sha256().unwrap(), w.sha256().unwrap());
        assert!(matches!(info.metadata.get("general.name"), Some(Value::String(s)) if s == "tiny"));
        assert_eq!(info.predominant_type(&back), "f32");
        let toks = tokens(2, 7, 96, 23);
        let d = max_abs_diff(
            &load(&w, MatmulPath::F32).forward(&toks, None).unwrap(),
            &load(&back, MatmulPath::F32).forward(&toks, None).unwrap(),
        );
        assert!(d < 1e-4, "{d}");
        // Same weights, same bytes; a loaded file's metadata can be passed back whole.
        let p2 = dir.path().join("m2.gguf");
        save_gguf(&p2, &w, &extra).unwrap();
        assert_eq!(file_sha(&p), file_sha(&p2));
        let all: Vec<(String, Value)> = info.metadata.clone().into_iter().collect();
        save_gguf(&p2, &back, &all).unwrap();
        assert_eq!(file_sha(&p), file_sha(&p2));
    }
}

#[test]
fn gguf_q8_0_round_trip_stays_quantized_and_close() {
    let w = seeded(&tiny(false), 24).unwrap();
    let q = quantize_matrices(&w, GgmlDType::Q8_0);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("q.gguf");
    save_gguf(&p, &q, &[]).unwrap();
    let (back, info) = load_gguf(&p).unwrap();
    assert_eq!(
        back.sha256().unwrap(),
        q.sha256().unwrap(),
        "permute + unpermute of Q8_0 rows is exact"
    );
    assert_eq!(
        back.tensors["model.layers.1.self_attn.k_proj.weight"].dtype_name(),
        "q8_0"
    );
    assert_eq!(info.predominant_type(&back), "q8_0");
    let toks = tokens(1, 9, 96, 24);
    let exact = load(&w, MatmulPath::F32).forward(&toks, None).unwrap();
    for path in [MatmulPath::F32, MatmulPath::Quantized] {
        let l = load(&back, path).forward(&toks, None).unwrap();
        let d = max_abs_diff(&exact, &l);
        assert!(d < 0.02, "{path:?}: {d}");
    }
}

#[test]
fn gguf_errors_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.gguf");
    let arch = Value::String("llama".into());
    let mut buf = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut buf, &[("general.architecture", &arch)], &[])
        .unwrap();
    std::fs::write(&p, buf.get_ref()).unwrap();
    let e = load_gguf(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.gguf") && e.contains("token_embd.weight"),
        "{e}"
    );
    let w = seeded(&tiny(true), 25).unwrap();
    let e = save_gguf(&p, &w, &[("llama.block_count".into(), Value::U32(9))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("llama.block_count"), "{e}");
    save_gguf(&p, &w, &[]).unwrap();
    let (_, info) = load_gguf(&p).unwrap();
    let mut meta = info.metadata.clone();
    meta.remove("llama.block_count");
    let (full, _) = load_gguf(&p).unwrap();
    let interleaved = full.to_layout(RopeLayout::Interleaved).unwrap();
    let mut qts = Vec::new();
    for (name, weight) in &interleaved.tensors {
        let t = weight.to_f32_tensor(&Device::Cpu).unwrap();
        let g = name
            .replace("model.embed_tokens", "token_embd")
            .replace("model.norm", "output_norm")
            .replace("model.layers.", "blk.")
            .replace("self_attn.q_proj", "attn_q")
            .replace("self_attn.k_proj", "attn_k")
            .replace("self_attn.v_proj", "attn_v")
            .replace("self_attn.o_proj", "attn_output")
            .replace("mlp.gate_proj", "ffn_gate")
            .replace("mlp.up_proj", "ffn_up")
            .replace("mlp.down_proj", "ffn_down")
            .replace("post_attention_layernorm", "ffn_norm")
            .replace("input_layernorm", "attn_norm");
        qts.push((
            g,
            candle_core::quantized::QTensor::quantize(&t, GgmlDType::F32).unwrap(),
        ));
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &candle_core::quantized::QTensor)> =
        qts.iter().map(|(k, q)| (k.as_str(), q)).collect();
    let mut buf = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut buf, &meta_refs, &t_refs).unwrap();
    std::fs::write(&p, buf.get_ref()).unwrap();
    let e = load_gguf(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.gguf") && e.contains("llama.block_count") && e.contains("missing"),
        "{e}"
    );
}
