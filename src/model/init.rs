//! Seeded weight initialisation ([`seeded`]) that is bit-identical on every machine.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::config::LlamaConfig;
use super::error::{CandleContext, Result};
use super::rope_layout::RopeLayout;
use super::weights::{expected_shapes, Weight, Weights};
use crate::rng::SeededRng;

/// Half-width of a uniform distribution with standard deviation 0.02: `0.02 * sqrt(3)`,
/// written as a literal so no libm call is involved.
pub const INIT_HALF_WIDTH: f32 = 0.034_641_016;

/// The most parameters a seeded model may have (4 GiB of f32; the ladder's largest rung
/// has 350M): a seeded model's size comes from a config alone, with no file to hold it.
pub const MAX_SEEDED_PARAMS: u64 = 1 << 30;

/// Fresh weights for `cfg`: matrices uniform in `[-a, a)` with `a = 0.02·√3` (std 0.02),
/// norm gains 1.0. Each tensor draws from its own stream (`seed` mixed with its name), so
/// adding a tensor, a layer or a tied head never shifts the values of the others.
pub fn seeded(cfg: &LlamaConfig, seed: u64) -> Result<Weights> {
    cfg.validate()?;
    if cfg.param_count() > MAX_SEEDED_PARAMS {
        return Err(super::error::ModelError::Unsupported {
            what: format!(
                "a seeded model of {} parameters (at most {MAX_SEEDED_PARAMS})",
                cfg.param_count()
            ),
        });
    }
    let mut tensors = BTreeMap::new();
    for (name, shape) in expected_shapes(cfg) {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if shape.len() == 1 {
            vec![1.0; n]
        } else {
            let mut rng = SeededRng::for_stream(seed, &name);
            (0..n).map(|_| rng.uniform_sym(INIT_HALF_WIDTH)).collect()
        };
        let t = Tensor::from_vec(data, shape, &Device::Cpu).ctx("build init tensor")?;
        tensors.insert(name, Weight::Float(t));
    }
    Ok(Weights {
        config: cfg.clone(),
        tensors,
        rope: RopeLayout::Neox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tests::tiny;

    #[test]
    fn same_seed_same_hash_different_seed_differs() {
        let a = seeded(&tiny(true), 11).unwrap().sha256().unwrap();
        let b = seeded(&tiny(true), 11).unwrap().sha256().unwrap();
        let c = seeded(&tiny(true), 12).unwrap().sha256().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn adding_a_layer_or_head_keeps_existing_tensors() {
        let base = seeded(&tiny(true), 5).unwrap();
        let mut bigger_cfg = tiny(false);
        bigger_cfg.num_hidden_layers = 3;
        let bigger = seeded(&bigger_cfg, 5).unwrap();
        for (name, w) in &base.tensors {
            assert_eq!(
                w.raw_bytes().unwrap(),
                bigger.tensors[name].raw_bytes().unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn std_is_about_point_02() {
        let w = seeded(&tiny(true), 3).unwrap();
        let v = w.tensors["model.embed_tokens.weight"]
            .to_f32_tensor(&Device::Cpu)
            .unwrap();
        let v: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
        let var = v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len() as f64;
        assert!((var.sqrt() - 0.02).abs() < 0.001, "std {}", var.sqrt());
    }
}
