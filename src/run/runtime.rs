//! [`Runtime`]: where and how a model's numbers are computed — device, matmul path, float
//! type — as one value, so that it can be named in evidence, compared between two runs and
//! later varied like a model or a variant.

use super::RunError;
use crate::device::{DeviceError, DeviceSpec};
use crate::model::{Llama, LoadOptions, MatmulPath, Weights};
use crate::runtime::Precision;
use candle_core::DType;

/// Device, matmul path, float type and precision of a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Runtime {
    /// Where it computes (a CUDA device needs a build with the `cuda` feature and a GPU).
    pub device: DeviceSpec,
    /// How projection matrices are multiplied.
    pub matmul: MatmulPath,
    /// Float type of weights, activations and logits (the quantized path yields f32 too).
    pub dtype: DType,
    /// The float matrix products' arithmetic: f32, or bf16 autocast.
    pub precision: Precision,
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
    pub const CPU_F32: Runtime = Runtime {
        device: DeviceSpec::Cpu,
        matmul: MatmulPath::F32,
        dtype: DType::F32,
        precision: Precision::F32,
    };

    /// candle's quantized matmul on the CPU (activations rounded to Q8, as llama.cpp does).
    pub const CPU_QUANTIZED: Runtime = Runtime {
        device: DeviceSpec::Cpu,
        matmul: MatmulPath::Quantized,
        dtype: DType::F32,
        precision: Precision::F32,
    };

    /// A case's runtime (device and precision, [`crate::runtime::Runtime`]) on the f32 path.
    pub(crate) fn of(r: crate::runtime::Runtime) -> Runtime {
        Runtime {
            device: r.device,
            matmul: MatmulPath::F32,
            dtype: DType::F32,
            precision: r.precision,
        }
    }

    /// The load options for this runtime. No GPU here (or a build without CUDA support)
    /// is [`RunError::Unavailable`] (a skip, never a pass); a GPU that is here but cannot
    /// be used is [`RunError::Device`].
    pub fn load_options(self) -> Result<LoadOptions, RunError> {
        let device = self.device.open().map_err(|e| match e {
            DeviceError::NoDevice(why) => RunError::Unavailable(Unavailable {
                device: "GPU device".into(),
                why,
            }),
            DeviceError::Setup { .. } => RunError::Device(e),
        })?;
        Ok(LoadOptions {
            matmul: self.matmul,
            device,
            dtype: self.dtype,
            autocast: self.precision.autocast(),
        })
    }

    /// `weights` loaded for this runtime.
    pub fn load(self, weights: &Weights) -> Result<Llama, RunError> {
        Ok(Llama::load(weights, &self.load_options()?)?)
    }

    /// A short stable name: `cpu/f32`, `cpu/quantized`, `cuda0/f32` (`…/f64` for another
    /// float type, `…/bf16-autocast` under bf16 autocast).
    pub fn name(self) -> String {
        let device = match self.device {
            DeviceSpec::Cpu => "cpu".to_string(),
            DeviceSpec::Cuda(i) => format!("cuda{i}"),
        };
        let matmul = match self.matmul {
            MatmulPath::F32 => "f32",
            MatmulPath::Quantized => "quantized",
        };
        let base = match self.dtype {
            DType::F32 => format!("{device}/{matmul}"),
            other => format!("{device}/{matmul}/{}", other.as_str()),
        };
        match self.precision {
            Precision::F32 => base,
            Precision::Bf16 => format!("{base}/bf16-autocast"),
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
        let cuda = Runtime::of(crate::runtime::Runtime::parse_label("cuda").unwrap());
        assert_eq!(cuda.name(), "cuda0/f32");
        assert_eq!(
            Runtime::of(crate::runtime::Runtime::parse_label("cpu-bf16").unwrap()).name(),
            "cpu/f32/bf16-autocast"
        );
        if !cfg!(feature = "cuda") {
            match cuda.load_options() {
                Err(RunError::Unavailable(u)) => assert!(u.why.contains("no CUDA support"), "{u}"),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
    }
}
