//! [`DeviceSpec`]: where a model runs (`--device cpu|cuda[:N]`), and [`DeviceSpec::open`],
//! which tells "there is no GPU here" ([`DeviceError::NoDevice`]: claims skip with that
//! reason, a command that needs the GPU exits 2) from a GPU whose CUDA set-up is broken
//! ([`DeviceError::Setup`]: always an error, so a broken driver never reads as a skip).
//!
//! Why probe before candle: the binary `ci/build-cuda.sh` makes loads CUDA at run time
//! (cudarc's dynamic loading), so on a machine without the driver candle's
//! `Device::new_cuda` would panic inside cudarc instead of returning an error. The driver
//! library, the driver's own verdict (`cuInit`, device count) and the toolkit libraries
//! candle opens with a device are checked here first, in that order.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use candle_core::Device;

/// A device named on the command line or by a claim's runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum DeviceSpec {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device `N` (`cuda` is `cuda:0`).
    Cuda(usize),
}

/// Why a device could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No GPU to run on: this build has no CUDA support, the driver is not installed, it
    /// reports no device, or fewer devices than the ordinal asked for.
    #[error("no GPU device: {0}")]
    NoDevice(String),
    /// There is a GPU but it cannot be used (a driver error other than "no device", a
    /// missing toolkit library, candle failing to open it).
    #[error("cuda:{ordinal}: {reason}")]
    Setup {
        /// The device asked for.
        ordinal: usize,
        /// What failed.
        reason: String,
    },
}

/// A `--device` value that is not `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device `{0}`: expected cpu, cuda or cuda:N")]
pub struct ParseDeviceError(String);

impl FromStr for DeviceSpec {
    type Err = ParseDeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseDeviceError(s.to_string());
        match s.split_once(':') {
            None if s == "cpu" => Ok(DeviceSpec::Cpu),
            None if s == "cuda" => Ok(DeviceSpec::Cuda(0)),
            Some(("cuda", n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse().map(DeviceSpec::Cuda).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Whether this is a GPU.
    pub fn is_cuda(&self) -> bool {
        match self {
            DeviceSpec::Cpu => false,
            DeviceSpec::Cuda(_) => true,
        }
    }

    /// The candle device. A CUDA device is opened once per process and shared: candle
    /// refuses to combine tensors of two `Device` values even on the same GPU.
    pub fn open(&self) -> Result<Device, DeviceError> {
        match *self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => {
                static OPENED: OnceLock<Mutex<BTreeMap<usize, Result<Device, DeviceError>>>> =
                    OnceLock::new();
                let mut opened = OPENED
                    .get_or_init(|| Mutex::new(BTreeMap::new()))
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let expected =
                    std::env::var(EXPECT_GPU_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
                opened
                    .entry(ordinal)
                    .or_insert_with(|| expect_gpu(ordinal, cuda::open(ordinal), expected))
                    .clone()
            }
        }
    }
}

/// Set (to anything but `0`) where a GPU must be present (`ci/gpu-check.sh`): "no GPU
/// device" becomes a set-up error instead of a skip, so a GPU check cannot pass by skipping.
pub const EXPECT_GPU_ENV: &str = "GROUNDTRUTH_EXPECT_GPU";

fn expect_gpu(
    ordinal: usize,
    r: Result<Device, DeviceError>,
    expected: bool,
) -> Result<Device, DeviceError> {
    match r {
        Err(DeviceError::NoDevice(why)) if expected => Err(DeviceError::Setup {
            ordinal,
            reason: format!("{EXPECT_GPU_ENV} is set and there is no GPU device: {why}"),
        }),
        other => other,
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use super::DeviceError;

    pub(super) fn open(_ordinal: usize) -> Result<candle_core::Device, DeviceError> {
        Err(DeviceError::NoDevice(
            "this build has no CUDA support (build with `--features cuda`, or ci/build-cuda.sh)"
                .into(),
        ))
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::DeviceError;
    use cudarc::driver::sys::CUresult;
    use cudarc::driver::{result, DriverError};

    /// The driver library, as cudarc looks it up on Linux.
    const DRIVER: [&str; 2] = ["libcuda.so.1", "libcuda.so"];

    /// The toolkit libraries candle opens with a device (cuBLAS, which loads cuBLASLt, and
    /// cuRAND), under the names cudarc tries for CUDA 13.
    const TOOLKIT: [[&str; 2]; 3] = [
        ["libcublas.so.13", "libcublas.so"],
        ["libcublasLt.so.13", "libcublasLt.so"],
        ["libcurand.so.10", "libcurand.so"],
    ];

    fn loadable(names: &[&str]) -> bool {
        // SAFETY: loading a shared library runs its initialisers; these are the NVIDIA
        // libraries cudarc itself would load next.
        names
            .iter()
            .any(|n| unsafe { libloading::Library::new(*n) }.is_ok())
    }

    /// "No device" only for the driver's two answers that mean it: no GPU, or the stub
    /// library a machine without a driver may carry. Anything else is a broken set-up.
    fn driver_error(ordinal: usize, what: &str, e: DriverError) -> DeviceError {
        match e.0 {
            CUresult::CUDA_ERROR_NO_DEVICE | CUresult::CUDA_ERROR_STUB_LIBRARY => {
                DeviceError::NoDevice(format!("the CUDA driver reports {:?} ({what})", e.0))
            }
            _ => DeviceError::Setup {
                ordinal,
                reason: format!("{what}: {:?}", e.0),
            },
        }
    }

    pub(super) fn open(ordinal: usize) -> Result<candle_core::Device, DeviceError> {
        if !loadable(&DRIVER) {
            return Err(DeviceError::NoDevice(
                "the NVIDIA driver library libcuda.so.1 is not installed".into(),
            ));
        }
        result::init().map_err(|e| driver_error(ordinal, "cuInit", e))?;
        let count = result::device::get_count()
            .map_err(|e| driver_error(ordinal, "cuDeviceGetCount", e))?;
        if ordinal >= count.max(0) as usize {
            return Err(DeviceError::NoDevice(format!(
                "cuda:{ordinal} was asked for and the driver sees {count} device(s)"
            )));
        }
        if let Some(missing) = TOOLKIT.iter().find(|names| !loadable(&names[..])) {
            return Err(DeviceError::Setup {
                ordinal,
                reason: format!(
                    "{} not found: put the CUDA 13 libraries on LD_LIBRARY_PATH (ci/build-cuda.sh's bundle/lib)",
                    missing[0]
                ),
            });
        }
        let setup = |reason: String| DeviceError::Setup { ordinal, reason };
        std::panic::catch_unwind(|| candle_core::Device::new_cuda(ordinal))
            .map_err(|_| setup("candle panicked opening the device".into()))?
            .map_err(|e| setup(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(3)));
        for bad in [
            "", "gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "CUDA", "cuda:1:2", "cuda:+1",
        ] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(DeviceSpec::Cuda(0).to_string(), "cuda:0");
        assert_eq!(DeviceSpec::Cpu.to_string(), "cpu");
    }

    #[test]
    fn cpu_opens_and_a_missing_gpu_is_no_device() {
        assert!(DeviceSpec::Cpu.open().unwrap().is_cpu());
        // Where no GPU is expected (this machine, CI), a missing one is NoDevice: the one
        // outcome that may be a skip, never a device.
        if std::env::var_os(EXPECT_GPU_ENV).is_none() {
            match DeviceSpec::Cuda(7).open() {
                Err(DeviceError::NoDevice(why)) => assert!(!why.is_empty()),
                other => panic!("expected no GPU device, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_expected_gpu_turns_no_device_into_an_error() {
        match expect_gpu(2, Err(DeviceError::NoDevice("none".into())), true) {
            Err(DeviceError::Setup { ordinal: 2, reason }) => {
                assert!(reason.contains(EXPECT_GPU_ENV) && reason.contains("none"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            expect_gpu(0, Err(DeviceError::NoDevice("x".into())), false),
            Err(DeviceError::NoDevice(_))
        ));
    }
}
