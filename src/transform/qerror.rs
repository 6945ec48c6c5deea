//! Quantize→dequantize error, measured as a true RMSE and bounded per type from
//! llama.cpp's `tests/test-quantize-fns.cpp`.
//!
//! llama.cpp's "absolute quantization error" is `sqrt(Σ d²) / n` (not an RMSE: it is the
//! RMSE divided by √n) on `0.1 + 2·cos(i)` for n = 4096, and must stay under 0.002 for
//! most types, 0.004 for Q3_K and 0.0075 for Q2_K. On that data the same thresholds are
//! true RMSEs of `bound · √4096`, and the data's largest magnitude is 2.1, so the bound is
//! stated here as `RMSE ≤ bound · 64 / 2.1 · max|x|` — the same limit on llama.cpp's data,
//! carried to any scale (block quantizers are scale-equivariant up to f16 rounding of the
//! scales). It holds for smooth or noisy data; a block made of ±max values of both signs
//! can exceed it for Q4_0/Q5_0, whose grids are asymmetric (−8…7), as in llama.cpp.

use crate::model::{ggml_type_name, ModelError, Weights};
use candle_core::quantized::GgmlDType;
use candle_core::Device;

/// Elements in llama.cpp's test vector (`32 * 128`).
pub const LLAMA_CPP_TEST_SIZE: usize = 32 * 128;
/// Largest magnitude of llama.cpp's test data `0.1 + 2·cos(i)`.
const LLAMA_CPP_TEST_ABSMAX: f64 = 2.1;

/// llama.cpp's threshold on `sqrt(Σ d²) / n` for a type (`MAX_QUANTIZATION_TOTAL_ERROR*`).
pub fn llama_cpp_total_error_bound(t: GgmlDType) -> f64 {
    match t {
        GgmlDType::Q2K => 0.0075,
        GgmlDType::Q3K => 0.0040,
        _ => 0.002,
    }
}

/// The true-RMSE bound for data whose largest magnitude is `absmax` (see the module docs).
pub fn rmse_bound(t: GgmlDType, absmax: f64) -> f64 {
    llama_cpp_total_error_bound(t) * (LLAMA_CPP_TEST_SIZE as f64).sqrt() / LLAMA_CPP_TEST_ABSMAX
        * absmax
}

/// Root mean square of the element-wise difference (NaN for empty or unequal lengths).
pub fn rmse(a: &[f32], b: &[f32]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return f64::NAN;
    }
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    (sum / a.len() as f64).sqrt()
}

/// llama.cpp's `array_rmse`: `sqrt(Σ d²) / n`, kept only to reproduce its test exactly.
pub fn llama_cpp_array_rmse(a: &[f32], b: &[f32]) -> f64 {
    rmse(a, b) / (a.len() as f64).sqrt()
}

/// One matrix's conversion error.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorError {
    /// HF tensor name.
    pub tensor: String,
    /// Storage type after conversion.
    pub dtype: String,
    /// True RMSE against the parent's values.
    pub rmse: f64,
    /// RMSE divided by the RMS of the parent's values.
    pub relative: f64,
    /// Largest |Δ|.
    pub max_abs: f64,
    /// [`rmse_bound`] for the stored type and the parent's largest magnitude.
    pub bound: f64,
}

/// The error of every 2-D tensor of `variant` against the same tensor of `parent`.
pub fn tensor_errors(parent: &Weights, variant: &Weights) -> Result<Vec<TensorError>, ModelError> {
    let mut out = Vec::new();
    for (name, v) in &variant.tensors {
        if v.shape().len() != 2 {
            continue;
        }
        let a = parent
            .get(name)?
            .to_f32_tensor(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let b = v
            .to_f32_tensor(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let rms =
            (a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / a.len().max(1) as f64).sqrt();
        let absmax = a.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        let max_abs = a.iter().zip(&b).fold(0.0f64, |m, (&x, &y)| {
            m.max((f64::from(x) - f64::from(y)).abs())
        });
        let e = rmse(&a, &b);
        let ty = super::weight_type(v);
        out.push(TensorError {
            tensor: name.clone(),
            dtype: ggml_type_name(ty).into(),
            rmse: e,
            relative: e / rms,
            max_abs,
            bound: rmse_bound(ty, absmax),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::Tensor;
    use proptest::prelude::*;

    const TYPES: [GgmlDType; 12] = [
        GgmlDType::F16,
        GgmlDType::BF16,
        GgmlDType::Q8_0,
        GgmlDType::Q5_1,
        GgmlDType::Q5_0,
        GgmlDType::Q4_1,
        GgmlDType::Q4_0,
        GgmlDType::Q6K,
        GgmlDType::Q5K,
        GgmlDType::Q4K,
        GgmlDType::Q3K,
        GgmlDType::Q2K,
    ];

    fn round_trip(x: &[f32], t: GgmlDType) -> Vec<f32> {
        let tensor = Tensor::from_slice(x, (1, x.len()), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&tensor, t).unwrap();
        q.dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    /// llama.cpp's own test, on its own data and with its own metric and thresholds.
    #[test]
    fn llama_cpp_test_quantize_fns_thresholds_hold() {
        let data: Vec<f32> = (0..LLAMA_CPP_TEST_SIZE)
            .map(|i| 0.1 + 2.0 * (i as f32).cos())
            .collect();
        for t in TYPES {
            let back = round_trip(&data, t);
            let err = llama_cpp_array_rmse(&data, &back);
            assert!(
                err < llama_cpp_total_error_bound(t),
                "{t:?}: {err} (llama.cpp metric)"
            );
            let absmax = data.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
            assert!(
                rmse(&data, &back) <= rmse_bound(t, absmax),
                "{t:?}: true RMSE {}",
                rmse(&data, &back)
            );
        }
    }

    /// Data llama.cpp's bound is meant for, at any scale: uniform noise, a sum of uniforms
    /// (near-Gaussian), or llama.cpp's cosine with another offset and amplitude.
    fn data() -> impl Strategy<Value = Vec<f32>> {
        let scale = prop_oneof![Just(1e-3f32), Just(0.02), Just(1.0), Just(37.0)];
        let shape = 0..3u8;
        (scale, shape, any::<u64>()).prop_map(|(s, shape, seed)| {
            let mut rng = crate::rng::SeededRng::new(seed);
            let mut u = move || (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0;
            let off = u() * 100.0;
            (0..LLAMA_CPP_TEST_SIZE)
                .map(|i| match shape {
                    0 => s * u(),
                    1 => s * (u() + u() + u() + u()) / 2.0,
                    _ => s * (0.05 + (i as f32 + off).cos()),
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn quantize_dequantize_rmse_within_the_types_bound(x in data()) {
            let absmax = x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
            for t in TYPES {
                let e = rmse(&x, &round_trip(&x, t));
                prop_assert!(e <= rmse_bound(t, absmax), "{:?}: rmse {} > bound {} (absmax {})", t, e, rmse_bound(t, absmax), absmax);
            }
        }
    }

    #[test]
    fn every_tensor_of_tiny_seeded_is_within_its_bound_for_every_type() {
        let cfg_text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/tiny-seeded.json"
        ))
        .unwrap();
        let cfg = crate::model::LlamaConfig::from_hf_json(
            &cfg_text,
            std::path::Path::new("configs/tiny-seeded.json"),
        )
        .unwrap();
        let base = crate::model::seeded(&cfg, 20261122).unwrap();
        for d in [
            crate::variant::DType::Q8_0,
            crate::variant::DType::Q4_0,
            crate::variant::DType::Q2K,
            crate::variant::DType::Bf16,
        ] {
            let (v, _) = crate::transform::convert(&base, d).unwrap();
            for e in tensor_errors(&base, &v).unwrap() {
                assert!(e.rmse <= e.bound, "{d:?} {}: {e:?}", e.tensor);
                assert!(
                    e.rmse > 0.0,
                    "{d:?} {}: unchanged by quantization",
                    e.tensor
                );
            }
        }
    }

    #[test]
    fn rmse_is_a_true_rmse() {
        assert_eq!(rmse(&[0.0, 0.0], &[3.0, 4.0]), (12.5f64).sqrt());
        assert_eq!(llama_cpp_array_rmse(&[0.0, 0.0], &[3.0, 4.0]), 2.5);
        assert!(rmse(&[], &[]).is_nan());
    }
}
