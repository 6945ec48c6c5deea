//! The real SmolLM2-135M-Instruct Q4_1 GGUF, when `ci/fetch-models.sh` has cached it.

use std::time::Instant;

use super::*;
use crate::model::load_gguf;

#[test]
fn smollm2_gguf_loads_and_predicts_paris() {
    let Some(path) = crate::testutil::smollm2_gguf() else {
        return;
    };
    let t0 = Instant::now();
    let (w, info) = load_gguf(&path).unwrap();
    let c = &w.config;
    assert_eq!(
        (
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.vocab_size
        ),
        (30, 576, 9, 3, 49152)
    );
    println!(
        "config {c:?}; predominant type {}; tied {}",
        info.predominant_type(&w),
        c.tie_word_embeddings
    );
    let m = load(&w, MatmulPath::F32);
    println!("load_gguf + Llama::load (F32): {:?}", t0.elapsed());
    let toks = Tensor::new(&[[504u32, 3575, 282, 4649, 314]], &Device::Cpu).unwrap();
    let t1 = Instant::now();
    let logits = m.forward(&toks, None).unwrap();
    let dt = t1.elapsed();
    let last = logits.narrow(1, 4, 1).unwrap();
    let top = argmax(&last)[0];
    let v: Vec<f32> = last.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    println!("5-token forward: {dt:?}; next token after \"The capital of France is\": {top} (llama.cpp: 7042 \" Paris\")");
    assert_eq!(
        top, 7042,
        "greedy next token differs from llama.cpp's \" Paris\""
    );

    // candle's quantized kernels (Q8 activations, as llama.cpp) on the same file.
    let embed_type = &info.tensor_types["model.embed_tokens.weight"];
    let t2 = Instant::now();
    let q = load(&w, MatmulPath::Quantized);
    let ql = q.forward(&toks, None).unwrap();
    let qtop = argmax(&ql.narrow(1, 4, 1).unwrap())[0];
    println!(
        "quantized path (embed {embed_type:?}): load + forward {:?}, next token {qtop}",
        t2.elapsed()
    );
    assert_eq!(qtop, 7042);

    // Re-export with the file's own metadata and read back: the Q4_1 Q/K rows go
    // through permute and un-permute, and nothing may change.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("re.gguf");
    let all: Vec<_> = info.metadata.clone().into_iter().collect();
    crate::model::save_gguf(&out, &w, &all).unwrap();
    let (again, info2) = load_gguf(&out).unwrap();
    assert_eq!(again.config, w.config);
    assert_eq!(again.sha256().unwrap(), w.sha256().unwrap());
    assert_eq!(info2.metadata.len(), info.metadata.len());
}
