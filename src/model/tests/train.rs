//! Training support: every parameter must receive a real gradient.

use candle_core::backprop::GradStore;
use candle_core::D;
use candle_nn::Optimizer;

use super::*;
use crate::model::{seeded, TrainableLlama};

/// Mean next-token cross-entropy of `model` on `tokens` (`(batch, seq)`), through the
/// differentiable forward pass.
fn lm_loss(model: &Llama, tokens: &Tensor) -> Tensor {
    let (b, t) = tokens.dims2().unwrap();
    let logits = model.forward_train(tokens).unwrap();
    let v = logits.dim(D::Minus1).unwrap();
    let inputs = logits
        .narrow(1, 0, t - 1)
        .unwrap()
        .reshape((b * (t - 1), v))
        .unwrap();
    let targets = tokens
        .narrow(1, 1, t - 1)
        .unwrap()
        .reshape(b * (t - 1))
        .unwrap();
    candle_nn::loss::cross_entropy(&inputs, &targets.to_dtype(candle_core::DType::U32).unwrap())
        .unwrap()
}

/// L2 norm of each parameter's gradient, `None` where `backward` produced none.
fn gradient_norms(t: &TrainableLlama, grads: &GradStore) -> BTreeMap<String, Option<f32>> {
    t.vars()
        .iter()
        .map(|(name, var)| {
            let norm = grads.get(var.as_tensor()).map(crate::testutil::l2_norm);
            (name.clone(), norm)
        })
        .collect()
}

/// Every parameter whose gradient is missing, zero or not finite.
fn without_gradient(t: &TrainableLlama, grads: &GradStore) -> Vec<String> {
    gradient_norms(t, grads)
        .into_iter()
        .filter(|(_, n)| !matches!(n, Some(x) if x.is_finite() && *x > 0.0))
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    for tied in [true, false] {
        let w = seeded(&tiny(tied), 31).unwrap();
        let t = TrainableLlama::new(&w, &Device::Cpu).unwrap();
        let loss = lm_loss(t.model(), &tokens(2, 12, 96, 31));
        let grads = loss.backward().unwrap();
        let norms = gradient_norms(&t, &grads);
        assert_eq!(norms.len(), w.tensors.len());
        assert_eq!(
            without_gradient(&t, &grads),
            Vec::<String>::new(),
            "tied {tied}"
        );
    }
}

#[test]
fn planted_fault_detached_weight_is_reported_by_name() {
    let w = seeded(&tiny(false), 32).unwrap();
    let t = TrainableLlama::new(&w, &Device::Cpu).unwrap();
    let mut vw = t.var_weights();
    let victim = "model.layers.1.mlp.up_proj.weight";
    let detached = vw.tensors[victim]
        .to_f32_tensor(&Device::Cpu)
        .unwrap()
        .detach();
    vw.tensors
        .insert(victim.to_string(), Weight::Float(detached));
    let faulty = load(&vw, MatmulPath::F32);
    let grads = lm_loss(&faulty, &tokens(2, 12, 96, 32)).backward().unwrap();
    assert_eq!(without_gradient(&t, &grads), [victim]);
    // The fused fast path is the fault this check exists for: it loses norm gradients.
    let fast_loss = {
        let toks = tokens(2, 12, 96, 32);
        let logits = t.model().forward(&toks, None).unwrap();
        let inputs = logits.narrow(1, 0, 11).unwrap().reshape((22, 96)).unwrap();
        let targets = toks.narrow(1, 1, 11).unwrap().reshape(22).unwrap();
        candle_nn::loss::cross_entropy(&inputs, &targets).unwrap()
    };
    let missing = without_gradient(&t, &fast_loss.backward().unwrap());
    assert!(
        missing.iter().any(|n| n == "model.norm.weight"),
        "{missing:?}"
    );
}

#[test]
fn sgd_steps_lower_the_loss_and_snapshot_sees_them() {
    let w = seeded(&tiny(true), 33).unwrap();
    let t = TrainableLlama::new(&w, &Device::Cpu).unwrap();
    let toks = tokens(2, 16, 96, 33);
    let mut sgd = candle_nn::SGD::new(t.vars().values().cloned().collect(), 0.5).unwrap();
    let first: f32 = lm_loss(t.model(), &toks).to_scalar().unwrap();
    for _ in 0..5 {
        sgd.backward_step(&lm_loss(t.model(), &toks)).unwrap();
    }
    let last: f32 = lm_loss(t.model(), &toks).to_scalar().unwrap();
    assert!(last < first, "loss {first} -> {last}");
    let snap = t.snapshot().unwrap();
    assert_ne!(snap.sha256().unwrap(), w.sha256().unwrap());
    let d = max_abs_diff(
        &load(&snap, MatmulPath::F32).forward(&toks, None).unwrap(),
        &t.model().forward(&toks, None).unwrap(),
    );
    assert_eq!(d, 0.0);
}
