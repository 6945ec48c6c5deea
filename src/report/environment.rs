//! The environment a run happened in, cited by reports and tickets.

use serde::{Deserialize, Serialize};

/// Versions, CPU and threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// groundtruth's own version.
    pub groundtruth: String,
    /// Resolved versions of the numerical crates.
    pub crates: String,
    /// The compiler.
    pub rustc: String,
    /// `os/arch`.
    pub platform: String,
    /// CPU model name.
    pub cpu: String,
    /// Threads candle computes with.
    pub threads: usize,
}

impl Environment {
    /// The environment of this process.
    pub fn current() -> Environment {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Environment {
            groundtruth: env!("CARGO_PKG_VERSION").into(),
            crates: env!("GROUNDTRUTH_DEP_VERSIONS").into(),
            rustc: env!("GROUNDTRUTH_RUSTC").into(),
            platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            cpu,
            threads: candle_core::utils::get_num_threads(),
        }
    }
}
