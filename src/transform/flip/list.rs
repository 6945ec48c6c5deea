//! [`FlipList`]: the record of a corruption, written as JSON beside a damaged file and
//! carried in a case's evidence.

use super::engine::{Flip, Plan, Target};
use crate::flipspec::Severity;
use serde::{Deserialize, Serialize};

/// The format tag of a flip list.
pub const FLIPS_FORMAT: &str = "groundtruth-flips/1";

/// A file the corruption read or wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileId {
    /// Path as given.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// Everything needed to reproduce and audit a corruption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlipList {
    /// [`FLIPS_FORMAT`].
    pub format: String,
    /// Bit class name.
    pub bits: String,
    /// Region name.
    pub region: String,
    /// Tensor pattern that replaced the region's tensors, if any.
    pub tensors: Option<String>,
    /// `count=N` or `rate=R`.
    pub severity: String,
    /// Seed of the draw: with the file, target and severity, it fixes every flipped bit.
    pub seed: u64,
    /// Elements of the tensors the region holds (what a rate is per).
    pub weights: u64,
    /// Bits eligible for a flip.
    pub eligible_bits: u64,
    /// The file corrupted, when a file was.
    pub source: Option<FileId>,
    /// The damaged file written.
    pub output: Option<FileId>,
    /// Every flip, sorted by tensor (in the source's order), byte and bit.
    pub flips: Vec<Flip>,
}

impl FlipList {
    /// The list for `plan`'s flips.
    pub fn new(
        target: &Target,
        severity: Severity,
        seed: u64,
        plan: &Plan,
        flips: Vec<Flip>,
    ) -> FlipList {
        FlipList {
            format: FLIPS_FORMAT.into(),
            bits: target.bits_name.clone(),
            region: target.region.name().into(),
            tensors: target.tensors.clone(),
            severity: severity.name(),
            seed,
            weights: plan.weights,
            eligible_bits: plan.eligible_bits,
            source: None,
            output: None,
            flips,
        }
    }

    /// What was flipped, in one line: `246 flip(s) of class exponent-msb in region weights,
    /// rate=1e7, seed 0 (24576 eligible bits over 24576 weights)`.
    pub fn summary(&self) -> String {
        format!(
            "{} flip(s) of class {} in region {}{}, {}, seed {} ({} eligible bits over {} weights)",
            self.flips.len(),
            self.bits,
            self.region,
            self.tensors
                .as_deref()
                .map(|t| format!(" (tensors {t})"))
                .unwrap_or_default(),
            self.severity,
            self.seed,
            self.eligible_bits,
            self.weights
        )
    }

    /// One line per flip, for notes and reports (`tensor block 3 d bit 14: 2.1e-3 → 1.4e2`).
    pub fn describe(&self) -> Vec<String> {
        self.flips
            .iter()
            .map(|f| {
                let at = match (f.element, f.block) {
                    (Some(e), _) => format!("element {e}"),
                    (None, Some(b)) => format!("block {b} {}[{}]", f.field, f.index),
                    (None, None) => format!("byte {}", f.byte),
                };
                format!("{} {at} bit {}: {:e} → {:e}", f.tensor, f.bit, f.old, f.new)
            })
            .collect()
    }
}
