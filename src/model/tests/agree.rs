//! The "all paths agree" tester: one input through every runtime path of one model —
//! the CPU engine (full pass, tail rows only, KV cache in chunks and one token at a
//! time, block kernels for few rows and `gemm` for many), candle's fused ops with and
//! without a cache, the differentiable ops, and each batch row alone — compared with
//! candle's fused full pass.

use candle_core::quantized::GgmlDType;
use candle_core::Tensor;

use super::*;
use crate::model::llama::Runtime;
use crate::model::{seeded, KvCache, LlamaConfig, RopeLayout};

/// Largest |Δ logit| allowed between two paths: f32 summation order only.
const TOL: f32 = 1e-4;

struct Tester {
    name: String,
    model: Llama,
    tokens: Tensor,
}

impl Tester {
    fn new(name: &str, w: &Weights, batch: usize, seq: usize, seed: u64) -> Tester {
        let model = load(w, MatmulPath::F32);
        assert!(model.engine, "{name}: the engine should run this model");
        let tokens = tokens(batch, seq, w.config.vocab_size, seed);
        Tester {
            name: name.into(),
            model,
            tokens,
        }
    }

    /// Feeds the tokens through a cache in pieces of the given lengths (the last one
    /// repeated until the sequence ends).
    fn incremental(&self, pieces: &[usize], runtime: Runtime) -> Tensor {
        let t = self.tokens.dim(1).unwrap();
        let mut cache = KvCache::new(self.model.config());
        let (mut at, mut out, mut i) = (0, Vec::new(), 0);
        while at < t {
            let n = pieces[i.min(pieces.len() - 1)].min(t - at);
            out.push(
                self.model
                    .run(
                        &self.tokens.narrow(1, at, n).unwrap(),
                        Some(&mut cache),
                        0,
                        runtime,
                    )
                    .unwrap(),
            );
            at += n;
            i += 1;
        }
        assert_eq!(cache.len(), t);
        Tensor::cat(&out, 1).unwrap()
    }

    fn check(&self) {
        let m = &self.model;
        let toks = &self.tokens;
        let (b, t) = toks.dims2().unwrap();
        let reference = m.run(toks, None, 0, Runtime::Candle).unwrap();
        let first = t / 2;
        let mut paths: Vec<(&str, Tensor)> = vec![
            ("engine", m.forward(toks, None).unwrap()),
            ("differentiable", m.forward_train(toks).unwrap()),
            (
                "engine, kv 5+3+1…",
                self.incremental(&[5, 3, 1], Runtime::Fast),
            ),
            (
                "engine, kv 1 at a time",
                self.incremental(&[1], Runtime::Fast),
            ),
            ("engine, kv 2+9…", self.incremental(&[2, 9], Runtime::Fast)),
            (
                "candle, kv 4+1…",
                self.incremental(&[4, 1], Runtime::Candle),
            ),
        ];
        let rows: Vec<Tensor> = (0..b)
            .map(|r| m.forward(&toks.narrow(0, r, 1).unwrap(), None).unwrap())
            .collect();
        paths.push(("each batch row alone", Tensor::cat(&rows, 0).unwrap()));
        for (name, logits) in &paths {
            let d = max_abs_diff(&reference, logits);
            assert!(d < TOL, "{}: {name}: max |Δ logit| {d}", self.name);
        }
        let tail = m.forward_from(toks, None, first).unwrap();
        let d = max_abs_diff(&reference.narrow(1, first, t - first).unwrap(), &tail);
        assert!(d < TOL, "{}: forward_from({first}): {d}", self.name);
        let candle_tail = m.run(toks, None, first, Runtime::Candle).unwrap();
        assert!(
            max_abs_diff(&candle_tail, &tail) < TOL,
            "{}: candle forward_from",
            self.name
        );
    }
}

fn long(tied: bool) -> LlamaConfig {
    LlamaConfig {
        max_position_embeddings: 160,
        ..tiny(tied)
    }
}

#[test]
fn all_paths_agree() {
    let f32w = seeded(&tiny(false), 11).unwrap();
    Tester::new("f32 untied", &f32w, 2, 13, 1).check();
    Tester::new("f32 tied", &seeded(&tiny(true), 12).unwrap(), 2, 13, 2).check();
    Tester::new(
        "f32 interleaved",
        &f32w.to_layout(RopeLayout::Interleaved).unwrap(),
        1,
        13,
        3,
    )
    .check();
    for (i, ty) in [
        GgmlDType::Q8_0,
        GgmlDType::Q4_1,
        GgmlDType::Q4_0,
        GgmlDType::F16,
    ]
    .into_iter()
    .enumerate()
    {
        Tester::new(
            &format!("{ty:?}"),
            &quantize_matrices(&f32w, ty),
            2,
            13,
            4 + i as u64,
        )
        .check();
    }
    // Longer than one attention tile (64 query rows), a cache across tiles.
    let lw = seeded(&long(true), 13).unwrap();
    Tester::new("f32 long", &lw, 1, 150, 9).check();
    Tester::new(
        "Q4_1 long",
        &quantize_matrices(&lw, GgmlDType::Q4_1),
        2,
        150,
        10,
    )
    .check();
}

#[test]
fn forward_from_and_caches_refuse_misuse() {
    let w = seeded(&tiny(true), 14).unwrap();
    let m = load(&w, MatmulPath::F32);
    let toks = tokens(1, 4, 96, 14);
    assert!(matches!(
        m.forward_from(&toks, None, 4),
        Err(crate::model::ModelError::BadInput { .. })
    ));
    // A cache filled by one runtime path cannot be extended by the other.
    let mut cache = KvCache::new(&w.config);
    m.forward(&toks, Some(&mut cache)).unwrap();
    assert!(m.run(&toks, Some(&mut cache), 0, Runtime::Candle).is_err());
    let q = load(
        &quantize_matrices(&w, GgmlDType::Q8_0),
        MatmulPath::Quantized,
    );
    assert!(!q.engine);
    assert!(q.forward(&toks, Some(&mut cache)).is_err());
    let mut cache = KvCache::new(&w.config);
    q.forward(&toks, Some(&mut cache)).unwrap();
    assert!(m.forward(&toks, Some(&mut cache)).is_err());
}

#[test]
fn autocast_reaches_the_inference_paths() {
    // bf16 evaluation (a `cpu-bf16` or `cuda-bf16` case) is the f32 model with its matrix
    // products cast: it must differ from f32 (else the cast did not happen, and a bf16
    // claim would pass by measuring f32), by bf16 rounding only, on every path.
    let w = seeded(&tiny(false), 15).unwrap();
    let mut m = load(&w, MatmulPath::F32);
    let toks = tokens(2, 13, w.config.vocab_size, 15);
    let f32_logits = m.forward(&toks, None).unwrap();
    m.set_autocast(Some(candle_core::DType::BF16));
    let cast = m.forward(&toks, None).unwrap();
    assert_eq!(
        cast.dtype(),
        candle_core::DType::F32,
        "logits stay in the model's type"
    );
    let d = max_abs_diff(&f32_logits, &cast);
    // Operands rounded to 8 significant bits (relative 2^-9) through 2 layers: logits of
    // magnitude ~1 move by ~1e-3..1e-2; a cast that did nothing gives 0.
    assert!(d > 0.0 && d < 0.05, "bf16 autocast moved logits by {d}");
    assert!(
        m.numerical_path().contains("bf16 autocast"),
        "{}",
        m.numerical_path()
    );
    // The cached path under the cast agrees with the full pass under the cast.
    let t = toks.dim(1).unwrap();
    let mut cache = KvCache::new(m.config());
    let rows: Vec<Tensor> = (0..t)
        .map(|i| {
            m.forward(&toks.narrow(1, i, 1).unwrap(), Some(&mut cache))
                .unwrap()
        })
        .collect();
    let inc = Tensor::cat(&rows, 1).unwrap();
    assert!(
        max_abs_diff(&cast, &inc) < 1e-2,
        "kv under autocast: {}",
        max_abs_diff(&cast, &inc)
    );
    m.set_autocast(None);
    assert_eq!(
        max_abs_diff(&f32_logits, &m.forward(&toks, None).unwrap()),
        0.0,
        "uncast is the engine again"
    );
}
