//! The "all paths agree" tests: one input through every runtime path.

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};

use super::*;
use crate::model::{seeded, KvCache, ModelError, RopeLayout};

#[test]
fn forward_returns_logits_for_every_position() {
    for tied in [true, false] {
        let w = seeded(&tiny(tied), 1).unwrap();
        let m = load(&w, MatmulPath::F32);
        let logits = m.forward(&tokens(2, 7, 96, 1), None).unwrap();
        assert_eq!(logits.dims(), &[2, 7, 96]);
        assert_eq!(logits.dtype(), candle_core::DType::F32);
    }
}

#[test]
fn kv_cache_incremental_equals_recompute() {
    let w = seeded(&tiny(false), 2).unwrap();
    let m = load(&w, MatmulPath::F32);
    let toks = tokens(1, 12, 96, 2);
    let full = m.forward(&toks, None).unwrap();
    let mut cache = KvCache::new(&w.config);
    // A prompt chunk, a 3-token chunk, then one token at a time.
    let mut pieces = vec![m
        .forward(&toks.narrow(1, 0, 5).unwrap(), Some(&mut cache))
        .unwrap()];
    pieces.push(
        m.forward(&toks.narrow(1, 5, 3).unwrap(), Some(&mut cache))
            .unwrap(),
    );
    for p in 8..12 {
        pieces.push(
            m.forward(&toks.narrow(1, p, 1).unwrap(), Some(&mut cache))
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), 12);
    let inc = Tensor::cat(&pieces, 1).unwrap();
    let d = max_abs_diff(&full, &inc);
    assert!(d < 1e-4, "max |Δ logit| {d}");
    cache.reset();
    assert!(cache.is_empty());
    let again = m.forward(&toks, Some(&mut cache)).unwrap();
    assert!(max_abs_diff(&full, &again) < 1e-6);
}

#[test]
fn batch_of_two_equals_two_batches_of_one() {
    let w = seeded(&tiny(true), 3).unwrap();
    let m = load(&w, MatmulPath::F32);
    let toks = tokens(2, 9, 96, 3);
    let both = m.forward(&toks, None).unwrap();
    for b in 0..2 {
        let one = m.forward(&toks.narrow(0, b, 1).unwrap(), None).unwrap();
        let d = max_abs_diff(&both.narrow(0, b, 1).unwrap(), &one);
        assert!(d < 1e-5, "row {b}: {d}");
    }
}

#[test]
fn differentiable_path_equals_fast_path() {
    let w = seeded(&tiny(false), 4).unwrap();
    for layout in [RopeLayout::Neox, RopeLayout::Interleaved] {
        let m = load(&w.to_layout(layout).unwrap(), MatmulPath::F32);
        let toks = tokens(2, 10, 96, 4);
        let d = max_abs_diff(
            &m.forward(&toks, None).unwrap(),
            &m.forward_train(&toks).unwrap(),
        );
        assert!(d < 1e-4, "{layout:?}: {d}");
    }
}

#[test]
fn interleaved_rope_on_permuted_rows_equals_rotate_half() {
    // Checks the llama.cpp permutation against candle's interleaved kernel, not against
    // its own inverse: a wrong permutation gives different logits here.
    let w = seeded(&tiny(true), 5).unwrap();
    let toks = tokens(1, 11, 96, 5);
    let neox = load(&w, MatmulPath::F32).forward(&toks, None).unwrap();
    let inter = load(
        &w.to_layout(RopeLayout::Interleaved).unwrap(),
        MatmulPath::F32,
    )
    .forward(&toks, None)
    .unwrap();
    assert!(max_abs_diff(&neox, &inter) < 1e-4);
    // And the unpermuted rows under interleaved RoPE are a different model.
    let mut wrong = w.clone();
    wrong.rope = RopeLayout::Interleaved;
    let bad = load(&wrong, MatmulPath::F32).forward(&toks, None).unwrap();
    assert!(max_abs_diff(&neox, &bad) > 1e-3);
}

#[test]
fn quantized_matmul_path_is_close_to_f32_path() {
    let w = seeded(&tiny(false), 6).unwrap();
    let q = quantize_matrices(&w, GgmlDType::Q8_0);
    let toks = tokens(1, 8, 96, 6);
    let exact = load(&w, MatmulPath::F32).forward(&toks, None).unwrap();
    let deq = load(&q, MatmulPath::F32).forward(&toks, None).unwrap();
    let qmm = load(&q, MatmulPath::Quantized)
        .forward(&toks, None)
        .unwrap();
    let scale: f32 = exact
        .abs()
        .unwrap()
        .max_keepdim(2)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    for (name, l) in [("dequantized", &deq), ("qmatmul", &qmm)] {
        let d = max_abs_diff(&exact, l);
        assert!(
            d < 0.05 * scale.max(0.1),
            "{name}: {d} (logit scale {scale})"
        );
    }
    // Quantized path with a KV cache agrees with itself recomputed.
    let m = load(&q, MatmulPath::Quantized);
    let mut cache = KvCache::new(&q.config);
    let a = m
        .forward(&toks.narrow(1, 0, 7).unwrap(), Some(&mut cache))
        .unwrap();
    let b = m
        .forward(&toks.narrow(1, 7, 1).unwrap(), Some(&mut cache))
        .unwrap();
    assert!(max_abs_diff(&qmm, &Tensor::cat(&[a, b], 1).unwrap()) < 1e-4);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let w = seeded(&tiny(true), 7).unwrap();
    let m = load(&w, MatmulPath::F32);
    let oob = Tensor::new(&[[1u32, 96]], &Device::Cpu).unwrap();
    assert!(matches!(
        m.forward(&oob, None),
        Err(ModelError::TokenOutOfRange { id: 96, vocab: 96 })
    ));
    let long = tokens(1, 65, 96, 7);
    assert!(matches!(
        m.forward(&long, None),
        Err(ModelError::ContextOverflow {
            needed: 65,
            max: 64
        })
    ));
    let mut cache = KvCache::new(&w.config);
    m.forward(&tokens(2, 3, 96, 7), Some(&mut cache)).unwrap();
    assert!(matches!(
        m.forward(&tokens(1, 1, 96, 7), Some(&mut cache)),
        Err(ModelError::BadInput { .. })
    ));
    let flat = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    assert!(matches!(
        m.forward(&flat, None),
        Err(ModelError::BadInput { .. })
    ));
}
