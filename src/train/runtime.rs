//! [`TrainRuntime`]: where a run trains and in what precision — part of what determines the
//! weights (the CPU and a GPU sum in different orders), so it is recorded in the checkpoint
//! metadata and the cache key whenever it is not the original CPU f32 default.

use std::fmt;
use std::str::FromStr;

use candle_core::DType;

use crate::device::DeviceSpec;

/// The arithmetic of the training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// Device and precision of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TrainRuntime {
    /// Where the steps run.
    pub device: DeviceSpec,
    /// Their arithmetic.
    pub precision: Precision,
}

impl TrainRuntime {
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

impl fmt::Display for TrainRuntime {
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
        assert_eq!(TrainRuntime::default().metadata_value(), None);
        let gpu = TrainRuntime {
            device: DeviceSpec::Cuda(1),
            precision: Precision::Bf16,
        };
        let v = gpu.metadata_value().unwrap();
        assert!(v.starts_with("cuda, bf16 autocast"), "{v}");
        let cpu_bf16 = TrainRuntime {
            device: DeviceSpec::Cpu,
            precision: Precision::Bf16,
        };
        assert!(cpu_bf16.metadata_value().unwrap().starts_with("cpu, bf16"));
    }
}
