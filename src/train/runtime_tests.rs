//! The training runtime on this CPU-only machine: bf16 autocast (the GPU recipes'
//! precision, which candle also runs on the CPU) trains, changes the arithmetic, is recorded
//! in the metadata and refuses to resume an f32 run; CPU f32 checkpoints carry no runtime
//! key (the committed tiny_1m keeps its bytes); a CUDA run without a GPU is "no GPU device".

use candle_core::{Device, Tensor};

use super::checkpoint::checkpoint_name;
use super::tests::{data, l2_norm, micro_config, micro_hyper, micro_spec};
use super::trainer::{batch_loss, RunSummary};
use super::*;
use crate::device::{DeviceError, DeviceSpec};
use crate::model::{read_hf_metadata, seeded, TrainableLlama};
use crate::runtime::Precision;

fn run(
    spec: &TrainSpec,
    out: &std::path::Path,
    stop_after: Option<u64>,
) -> Result<RunSummary, TrainError> {
    let mut o = RunOptions::new(out);
    o.eval_every = 4;
    o.stop_after = stop_after;
    train(spec, &data(spec), &o)
}

const BF16_CPU: Runtime = Runtime {
    device: DeviceSpec::Cpu,
    precision: Precision::Bf16,
};

#[test]
fn bf16_autocast_trains_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let f32_spec = micro_spec(micro_hyper());
    let bf16_spec = micro_spec(micro_hyper()).on(BF16_CPU);
    let a = run(&f32_spec, &dir.path().join("f32"), None).unwrap();
    let b = run(&bf16_spec, &dir.path().join("bf16"), None).unwrap();
    assert!(b.final_train_loss < (300f64).ln() - 0.5, "{b:?}");
    assert!(
        (a.final_train_loss - b.final_train_loss).abs() < 0.1,
        "{a:?} vs {b:?}"
    );
    assert_ne!(
        a.weights_sha256, b.weights_sha256,
        "autocast changed nothing"
    );
    assert!(b.runtime.contains("bf16 autocast"), "{}", b.runtime);
    assert!(a.runtime.starts_with("cpu: f32"), "{}", a.runtime);
    let meta = |d: &str| read_hf_metadata(&dir.path().join(d)).unwrap();
    assert_eq!(
        meta("f32").get("groundtruth.runtime"),
        None,
        "CPU f32 must keep the original metadata"
    );
    let r = meta("bf16")
        .get("groundtruth.runtime")
        .cloned()
        .unwrap_or_default();
    assert!(r.starts_with("cpu, bf16 autocast"), "{r}");
    assert_ne!(
        f32_spec.key(),
        bf16_spec.key(),
        "the cache must not mix precisions"
    );
}

#[test]
fn a_run_does_not_resume_from_another_precision() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part");
    run(&micro_spec(micro_hyper()).on(BF16_CPU), &part, Some(3)).unwrap();
    let mut o = RunOptions::new(&part);
    o.resume = Some(part.join(checkpoint_name(3)));
    let spec = micro_spec(micro_hyper());
    let e = train(&spec, &data(&spec), &o).unwrap_err().to_string();
    assert!(e.contains("groundtruth.runtime"), "{e}");
}

/// Autocast rounds the products' operands to bf16: gradients move by about bf16's
/// precision (2^-8 relative), not by nothing and not by more than a few percent.
#[test]
fn autocast_gradients_are_near_but_not_equal_to_f32() {
    let weights = seeded(&micro_config(), 5).unwrap();
    let tokens: Vec<u32> = (0..2 * 17).map(|i| (i * 37 % 300) as u32).collect();
    let grads = |cast| {
        let mut m = TrainableLlama::new(&weights, &Device::Cpu).unwrap();
        m.set_autocast(cast);
        let g = batch_loss(m.model(), &tokens, 2, 16)
            .unwrap()
            .backward()
            .unwrap();
        let flat = |name: &str| {
            let v = m.vars()[name].as_tensor();
            g.get(v).unwrap().flatten_all().unwrap()
        };
        Tensor::cat(
            &[
                flat("model.layers.0.mlp.up_proj.weight"),
                flat("model.embed_tokens.weight"),
            ],
            0,
        )
        .unwrap()
    };
    let (full, cast) = (grads(None), grads(Precision::Bf16.autocast()));
    let rel = l2_norm(&(&full - &cast).unwrap()) / l2_norm(&full);
    assert!(rel > 1e-5 && rel < 0.05, "relative gradient change {rel}");
}

/// Where this build and machine have a GPU, the micro run trains there and says so; where
/// not, training refuses with "no GPU device" and writes no model.
#[test]
fn training_on_cuda_trains_there_or_is_no_gpu_device() {
    let dir = tempfile::tempdir().unwrap();
    let gpu = Runtime {
        device: DeviceSpec::Cuda(0),
        precision: Precision::Bf16,
    };
    let spec = micro_spec(micro_hyper()).on(gpu);
    let out = dir.path().join("cuda");
    match (gpu.device.open(), run(&spec, &out, None)) {
        (Ok(_), Ok(s)) => {
            assert!(s.final_train_loss < (300f64).ln() - 0.5, "{s:?}");
            let r = read_hf_metadata(&out)
                .unwrap()
                .get("groundtruth.runtime")
                .cloned()
                .unwrap_or_default();
            assert!(r.starts_with("cuda, bf16 autocast"), "{r}");
        }
        (Err(DeviceError::NoDevice(_)), Err(TrainError::Device(DeviceError::NoDevice(why)))) => {
            assert!(!why.is_empty());
            assert!(!out.join("model.safetensors").exists());
        }
        (device, run) => panic!("device {device:?}, run {run:?}"),
    }
}
