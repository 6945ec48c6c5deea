//! [`Runtime`]: where a model runs and in what precision. For training it is part of what
//! determines the weights (the CPU and a GPU sum in different orders), so it is recorded in
//! the checkpoint metadata and the cache key whenever it is not the original CPU f32 default.
//! For claims it is a case dimension: a claim names runtimes by [`Runtime::label`]
//! (`runtimes = ["cpu", "cuda", "cuda-bf16"]`), without a GPU ordinal, which is the run's
//! choice (`--device cuda:N`). Public because a case names its runtime.

use std::fmt;
use std::str::FromStr;

use candle_core::DType;

use crate::device::DeviceSpec;

/// The arithmetic of a training step or a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Precision {
    /// Everything in f32 (on CUDA, cuBLAS with f32 compute: no TF32).
    #[default]
    F32,
    /// bf16 autocast: the forward and backward matrix products (projections, attention,
    /// output layer) take bf16 operands with f32 accumulation; weights, gradients,
    /// optimizer moments, norms, softmax and the loss stay f32 (PyTorch's
    /// `torch.autocast(dtype=torch.bfloat16)` split).
    Bf16,
}

/// A `--precision` value that is neither `f32` nor `bf16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("precision `{0}`: expected f32 or bf16")]
pub struct ParsePrecisionError(String);

impl FromStr for Precision {
    type Err = ParsePrecisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(ParsePrecisionError(other.to_string())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl Precision {
    /// The matmul type under autocast, `None` for plain f32.
    pub fn autocast(&self) -> Option<DType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(DType::BF16),
        }
    }

    /// In words, for metadata and reports.
    pub fn describe(&self) -> &'static str {
        match self {
            Precision::F32 => "f32 (weights, activations, products, gradients, optimizer)",
            Precision::Bf16 => {
                "bf16 autocast (matrix products in bf16 with f32 accumulation; weights, gradients, optimizer, norms, softmax and loss in f32)"
            }
        }
    }
}

/// Device and precision of a training run or of a case's forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Runtime {
    /// Where the steps run.
    pub device: DeviceSpec,
    /// Their arithmetic.
    pub precision: Precision,
}

/// Claims write a runtime as its label (`"cuda-bf16"`).
impl serde::Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> serde::Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Runtime::parse_label(&label).map_err(serde::de::Error::custom)
    }
}

/// A claim's runtime label that is none of `cpu`, `cuda`, `cpu-bf16`, `cuda-bf16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("runtime `{0}`: expected cpu, cuda, cpu-bf16 or cuda-bf16 (the GPU ordinal is the run's --device, not the claim's)")]
pub struct ParseRuntimeError(String);

impl Runtime {
    /// CPU, f32: the runtime of every claim that names none.
    pub const CPU: Runtime = Runtime {
        device: DeviceSpec::Cpu,
        precision: Precision::F32,
    };

    /// The name a claim uses and a case name carries after `@`: `cpu`, `cuda`, `cpu-bf16`,
    /// `cuda-bf16`. No ordinal: two identical GPUs compute the same numbers.
    pub fn label(&self) -> &'static str {
        match (self.device, self.precision) {
            (DeviceSpec::Cpu, Precision::F32) => "cpu",
            (DeviceSpec::Cpu, Precision::Bf16) => "cpu-bf16",
            (DeviceSpec::Cuda(_), Precision::F32) => "cuda",
            (DeviceSpec::Cuda(_), Precision::Bf16) => "cuda-bf16",
        }
    }

    /// A label as written in a claim (a CUDA runtime on `cuda:0` until the run binds its GPU
    /// with [`Runtime::on_gpu`]).
    pub fn parse_label(s: &str) -> Result<Runtime, ParseRuntimeError> {
        let (device, precision) = match s {
            "cpu" => (DeviceSpec::Cpu, Precision::F32),
            "cpu-bf16" => (DeviceSpec::Cpu, Precision::Bf16),
            "cuda" => (DeviceSpec::Cuda(0), Precision::F32),
            "cuda-bf16" => (DeviceSpec::Cuda(0), Precision::Bf16),
            other => return Err(ParseRuntimeError(other.to_string())),
        };
        Ok(Runtime { device, precision })
    }

    /// This runtime as the run executes it: a CUDA runtime on the run's GPU (`--device`);
    /// `None` when the run was told to use no GPU (`--device cpu`) and this one needs it.
    pub fn on_gpu(self, gpu: DeviceSpec) -> Option<Runtime> {
        match (self.device, gpu) {
            (DeviceSpec::Cpu, _) => Some(self),
            (DeviceSpec::Cuda(_), DeviceSpec::Cuda(n)) => Some(Runtime {
                device: DeviceSpec::Cuda(n),
                ..self
            }),
            (DeviceSpec::Cuda(_), DeviceSpec::Cpu) => None,
        }
    }

    /// The metadata value, or `None` for CPU f32: checkpoints written before runtimes
    /// existed carry no such key, and the committed `models/tiny_1m` must keep its bytes.
    /// The ordinal is left out: which of two identical GPUs ran does not change the
    /// arithmetic.
    pub fn metadata_value(&self) -> Option<String> {
        let device = match self.device {
            DeviceSpec::Cpu => "cpu",
            DeviceSpec::Cuda(_) => "cuda",
        };
        match (self.device, self.precision) {
            (DeviceSpec::Cpu, Precision::F32) => None,
            _ => Some(format!("{device}, {}", self.precision.describe())),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.device, self.precision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_records_precision() {
        assert_eq!("f32".parse::<Precision>(), Ok(Precision::F32));
        assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
        assert!("fp16".parse::<Precision>().is_err());
        assert_eq!(Precision::Bf16.autocast(), Some(DType::BF16));
        assert_eq!(Precision::F32.autocast(), None);
        assert_eq!(Runtime::default().metadata_value(), None);
        let gpu = Runtime {
            device: DeviceSpec::Cuda(1),
            precision: Precision::Bf16,
        };
        let v = gpu.metadata_value().unwrap();
        assert!(v.starts_with("cuda, bf16 autocast"), "{v}");
        let cpu_bf16 = Runtime {
            device: DeviceSpec::Cpu,
            precision: Precision::Bf16,
        };
        assert!(cpu_bf16.metadata_value().unwrap().starts_with("cpu, bf16"));
    }

    #[test]
    fn labels_round_trip_and_bind_to_the_runs_gpu() {
        for label in ["cpu", "cpu-bf16", "cuda", "cuda-bf16"] {
            assert_eq!(Runtime::parse_label(label).unwrap().label(), label);
        }
        for bad in ["", "gpu", "cuda:1", "CUDA", "cuda-f16", "cpu-f32", "bf16"] {
            assert!(Runtime::parse_label(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(Runtime::default(), Runtime::CPU);
        let cuda = Runtime::parse_label("cuda-bf16").unwrap();
        assert_eq!(
            cuda.on_gpu(DeviceSpec::Cuda(3)).map(|r| r.device),
            Some(DeviceSpec::Cuda(3))
        );
        assert_eq!(cuda.on_gpu(DeviceSpec::Cpu), None);
        assert_eq!(Runtime::CPU.on_gpu(DeviceSpec::Cpu), Some(Runtime::CPU));
        assert_eq!(Runtime::CPU.on_gpu(DeviceSpec::Cuda(1)), Some(Runtime::CPU));
    }
}
