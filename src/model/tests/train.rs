//! Training support: every parameter must receive a real gradient.

use candle_nn::Optimizer;

use super::*;
use crate::model::{lm_loss, seeded, ModelError, TrainableLlama};

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    for tied in [true, false] {
        let w = seeded(&tiny(tied), 31).unwrap();
        let t = TrainableLlama::new(&w, &Device::Cpu).unwrap();
        let loss = lm_loss(t.model(), &tokens(2, 12, 96, 31)).unwrap();
        let grads = loss.backward().unwrap();
        let norms = t.gradient_norms(&grads).unwrap();
        assert_eq!(norms.len(), w.tensors.len());
        t.check_gradients(&grads)
            .unwrap_or_else(|e| panic!("tied {tied}: {e}"));
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
    let grads = lm_loss(&faulty, &tokens(2, 12, 96, 32))
        .unwrap()
        .backward()
        .unwrap();
    match t.check_gradients(&grads) {
        Err(ModelError::NoGradient { names }) => assert_eq!(names, [victim]),
        other => panic!("expected NoGradient, got {other:?}"),
    }
    // The fused fast path is the fault this check exists for: it loses norm gradients.
    let fast_loss = {
        let toks = tokens(2, 12, 96, 32);
        let logits = t.model().forward(&toks, None).unwrap();
        let inputs = logits.narrow(1, 0, 11).unwrap().reshape((22, 96)).unwrap();
        let targets = toks.narrow(1, 1, 11).unwrap().reshape(22).unwrap();
        candle_nn::loss::cross_entropy(&inputs, &targets).unwrap()
    };
    let e = t
        .check_gradients(&fast_loss.backward().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.norm.weight"), "{e}");
}

#[test]
fn sgd_steps_lower_the_loss_and_snapshot_sees_them() {
    let w = seeded(&tiny(true), 33).unwrap();
    let t = TrainableLlama::new(&w, &Device::Cpu).unwrap();
    let toks = tokens(2, 16, 96, 33);
    let mut sgd = candle_nn::SGD::new(t.varmap().all_vars(), 0.5).unwrap();
    let first: f32 = lm_loss(t.model(), &toks).unwrap().to_scalar().unwrap();
    for _ in 0..5 {
        sgd.backward_step(&lm_loss(t.model(), &toks).unwrap())
            .unwrap();
    }
    let last: f32 = lm_loss(t.model(), &toks).unwrap().to_scalar().unwrap();
    assert!(last < first, "loss {first} -> {last}");
    let snap = t.snapshot().unwrap();
    assert_ne!(snap.sha256().unwrap(), w.sha256().unwrap());
    let d = max_abs_diff(
        &load(&snap, MatmulPath::F32).forward(&toks, None).unwrap(),
        &t.model().forward(&toks, None).unwrap(),
    );
    assert_eq!(d, 0.0);
}
