//! [`Runtime`]: where and how a model's numbers are computed — device, matmul path, float
//! type — as one value, so that it can be named in evidence, compared between two runs and
//! later varied like a model or a variant.

use super::RunError;
use crate::model::{Llama, LoadOptions, MatmulPath, Weights};
use candle_core::DType;

/// The device a runtime computes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU (the harness's f32 engine where the model supports it, else candle).
    Cpu,
    /// A CUDA device by ordinal (needs a build with the `cuda` feature).
    Cuda(usize),
}

/// Device, matmul path and float type of a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Runtime {
    /// Where it computes.
    pub device: Device,
    /// How projection matrices are multiplied.
    pub matmul: MatmulPath,
    /// Float type of activations and logits (the quantized path yields f32 too).
    pub dtype: DType,
}

/// Why a runtime is not available here: a missing device, never a failure of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {device}: {why}")]
pub struct Unavailable {
    /// The device, in words.
    pub device: String,
    /// Why not.
    pub why: String,
}

impl Runtime {
    /// f32 weights and activations on the CPU: the path every claim uses unless it names another.
    pub const CPU_F32: Runtime = Runtime { device: Device::Cpu, matmul: MatmulPath::F32, dtype: DType::F32 };

    /// candle's quantized matmul on the CPU (activations rounded to Q8, as llama.cpp does).
    pub const CPU_QUANTIZED: Runtime = Runtime { device: Device::Cpu, matmul: MatmulPath::Quantized, dtype: DType::F32 };

    /// f32 on CUDA device 0.
    pub const CUDA_F32: Runtime = Runtime { device: Device::Cuda(0), matmul: MatmulPath::F32, dtype: DType::F32 };

    /// The load options for this runtime, or why its device is not here.
    pub fn load_options(self) -> Result<LoadOptions, Unavailable> {
        let device = match self.device {
            Device::Cpu => candle_core::Device::Cpu,
            Device::Cuda(i) => {
                let no = |why: String| Unavailable { device: "CUDA device".into(), why };
                if !cfg!(feature = "cuda") {
                    return Err(no("built without the cuda feature: cargo test --release --features cuda".into()));
                }
                candle_core::Device::new_cuda(i).map_err(|e| no(e.to_string()))?
            }
        };
        Ok(LoadOptions { matmul: self.matmul, device, dtype: self.dtype })
    }

    /// `weights` loaded for this runtime.
    pub fn load(self, weights: &Weights) -> Result<Llama, RunError> {
        let options = self.load_options().map_err(RunError::Unavailable)?;
        Ok(Llama::load(weights, &options)?)
    }

    /// A short stable name: `cpu/f32`, `cpu/quantized`, `cuda0/f32` (`…/f64` for another float type).
    pub fn name(self) -> String {
        let device = match self.device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(i) => format!("cuda{i}"),
        };
        let matmul = match self.matmul {
            MatmulPath::F32 => "f32",
            MatmulPath::Quantized => "quantized",
        };
        match self.dtype {
            DType::F32 => format!("{device}/{matmul}"),
            other => format!("{device}/{matmul}/{}", other.as_str()),
        }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::CPU_F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_cuda_without_the_feature_is_unavailable() {
        assert_eq!(Runtime::CPU_F32.name(), "cpu/f32");
        assert_eq!(Runtime::CPU_QUANTIZED.name(), "cpu/quantized");
        assert_eq!(Runtime::CUDA_F32.name(), "cuda0/f32");
        if !cfg!(feature = "cuda") {
            assert!(Runtime::CUDA_F32.load_options().unwrap_err().why.contains("cuda feature"));
        }
    }
}
