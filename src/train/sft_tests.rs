//! SFT: the completion-only loss against a direct computation and against finite
//! differences (with a planted dropped gradient it must catch), and a short fine-tune of
//! the committed tiny_1m that is deterministic, learns, and loads as a Hugging Face folder.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::recipe::GradCheckSpec;
use super::sanity::grad_check_loss_on;
use super::sft::{sft, SftOptions, SftSpec};
use super::sft_config::SftHyper;
use super::sft_data::{mask, masked_loss, Example};
use super::tests::micro_config;
use crate::metrics::Tags;
use crate::model::{seeded, Llama, LoadOptions};
use crate::problems::ProblemSpace;

fn examples() -> Vec<Example> {
    vec![
        Example {
            tokens: vec![5, 9, 33, 2, 17, 4, 299],
            prompt_len: 3,
        },
        Example {
            tokens: vec![8, 1, 250, 77],
            prompt_len: 1,
        },
        Example {
            tokens: vec![3, 3, 3, 3, 3, 12],
            prompt_len: 5,
        },
    ]
}

#[test]
fn masked_loss_is_the_mean_over_completion_targets() {
    let cfg = micro_config();
    let model = Llama::load(
        &seeded(&cfg, 4).unwrap(),
        &LoadOptions {
            dtype: DType::F64,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let ex = examples();
    let got: f64 = masked_loss(&model, &ex, 0).unwrap().to_scalar().unwrap();
    // Direct: each example alone, full logits, log-softmax at its completion positions.
    let (mut sum, mut n) = (0f64, 0usize);
    for e in &ex {
        let x = Tensor::new(&e.tokens[..e.tokens.len() - 1], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits: Vec<Vec<f64>> = model
            .forward_train(&x)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec2()
            .unwrap();
        for j in e.prompt_len - 1..e.tokens.len() - 1 {
            let row = &logits[j];
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            sum += lse - row[e.tokens[j + 1] as usize];
            n += 1;
        }
    }
    assert_eq!(n, mask(&ex, 0).targets.len());
    assert!(
        (got - sum / n as f64).abs() < 1e-10,
        "{got} vs {}",
        sum / n as f64
    );
}

#[test]
fn gradient_check_covers_the_masked_loss_and_catches_a_dropped_gradient() {
    let cfg = micro_config();
    let spec = GradCheckSpec {
        batch: 3,
        seq_len: 6,
        coords_per_matrix: 12,
        h: 1e-5,
        seed: 2,
    };
    let ex = examples();
    let loss = |m: &Llama| masked_loss(m, &ex, 0);
    let good = grad_check_loss_on(&cfg, &spec, &loss, None, &Device::Cpu).unwrap();
    assert!(good.max_rel_error < 1e-5, "{good:?}");
    let planted = |vars: &std::collections::BTreeMap<String, candle_core::Var>,
                   g: &mut candle_core::backprop::GradStore|
     -> candle_core::Result<()> {
        let v = &vars["model.layers.0.self_attn.q_proj.weight"];
        g.insert(v.as_tensor(), v.as_tensor().zeros_like()?);
        Ok(())
    };
    let bad = grad_check_loss_on(&cfg, &spec, &loss, Some(&planted), &Device::Cpu).unwrap();
    assert!(
        bad.max_rel_error > 0.5 && bad.worst.contains("q_proj"),
        "{bad:?}"
    );
}

fn tiny_spec(steps: u64) -> SftSpec {
    let root = crate::project::Project::from_manifest();
    let folder = root.path("models/tiny_1m");
    SftSpec {
        name: "unit".into(),
        base_label: "tiny_1m".into(),
        base_sha256: crate::fsutil::sha256_file(&folder.join("model.safetensors")).unwrap(),
        base: crate::model::load_hf_folder(&folder).unwrap(),
        base_tokenizer_json: Arc::new(
            std::fs::read_to_string(folder.join("tokenizer.json")).unwrap(),
        ),
        tags: Tags::default(),
        end_token: "<|end_of_text|>".into(),
        space: ProblemSpace {
            max_operand: 9,
            heldout_percent: 20,
            split_seed: 5,
            max_level: 2,
        },
        levels: vec![1],
        hyper: SftHyper {
            seed: 3,
            steps,
            batch: 8,
            lr: 3e-3,
            min_lr: 3e-4,
            warmup: 2,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
        },
        eval_problems: 16,
    }
}

#[test]
fn short_sft_of_tiny_1m_is_deterministic_learns_and_reloads() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let spec = tiny_spec(12);
    let run = |d: &std::path::Path| {
        sft(
            &spec,
            &SftOptions {
                out: d.to_path_buf(),
                eval_every: 6,
                progress: false,
                device: Device::Cpu,
            },
        )
        .unwrap()
    };
    let (a, b) = (run(dirs[0].path()), run(dirs[1].path()));
    assert_eq!(a.weights_sha256, b.weights_sha256);
    assert_eq!(a.model_file_sha256, b.model_file_sha256);
    assert_eq!(a.special_ids, [16000, 16001, 16002, 16003, 16004]);
    assert!(a.final_val_loss < a.val_loss_before, "{a:?}");
    let w = crate::model::load_hf_folder(dirs[0].path()).unwrap();
    assert_eq!(
        (w.config.vocab_size, w.config.eos_token_id),
        (16005, Some(16004))
    );
    let tok = crate::tokenizer::HfTokenizer::from_folder(dirs[0].path()).unwrap();
    use crate::tokenizer::TextTokenizer;
    assert_eq!(tok.eos(), Some(16004));
    // The pretraining tokenizer file is untouched and still the frozen one.
    let frozen = std::fs::read_to_string(
        crate::project::Project::from_manifest().path("configs/tokenizer.json"),
    )
    .unwrap();
    assert_eq!(*spec.base_tokenizer_json, frozen);
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "metrics.csv",
        "loss.svg",
        "sft_summary.json",
    ] {
        assert!(dirs[0].path().join(f).is_file(), "{f}");
    }
}
