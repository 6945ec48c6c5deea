//! How often each check catches a single seeded flip ([`catch_rates`]): for every seed,
//! one flip of the class is made in the file's bytes, the manifest's tensor hashes and
//! the health check look at the damaged tensor, and the flip is undone.

use super::health::check_values;
use super::IntegrityError;
use crate::fsutil::sha256_hex;
use crate::stored::StoredFile;
use crate::transform::flip::{corrupt_file, BitClass, Region, Severity, Target};
use serde::Serialize;

/// One bit class's catch rates over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatchRate {
    /// The class.
    pub bits: BitClass,
    /// Single flips made (one per seed).
    pub flips: usize,
    /// Flips whose tensor's SHA-256 changed (the manifest names the tensor).
    pub manifest_caught: usize,
    /// Flips after which the health check flags the damaged tensor.
    pub health_caught: usize,
}

impl CatchRate {
    /// Share the manifest caught.
    pub fn manifest_rate(&self) -> f64 {
        self.manifest_caught as f64 / self.flips as f64
    }

    /// Share the health check caught.
    pub fn health_rate(&self) -> f64 {
        self.health_caught as f64 / self.flips as f64
    }
}

/// Seeds `0..seeds` of one flip of each class in `region` of `file`, each checked and undone.
pub fn catch_rates(
    file: &mut StoredFile,
    classes: &[BitClass],
    region: Region,
    seeds: u64,
) -> Result<Vec<CatchRate>, IntegrityError> {
    let hashes: Vec<String> = file
        .tensors
        .iter()
        .map(|t| sha256_hex(&file.bytes[t.range.clone()]))
        .collect();
    let decode = |file: &StoredFile, i: usize, reason: String| IntegrityError::Decode {
        file: file.path.clone(),
        tensor: file.tensors[i].name.clone(),
        reason,
    };
    let mut out = Vec::new();
    for &bits in classes {
        let mut rate = CatchRate {
            bits,
            flips: 0,
            manifest_caught: 0,
            health_caught: 0,
        };
        for seed in 0..seeds {
            let list = corrupt_file(file, &Target::class(bits, region), Severity::Count(1), seed)
                .map_err(|e| decode(file, 0, e.to_string()))?;
            let flip = &list.flips[0];
            let offset = flip.file_offset.unwrap_or_default() as usize;
            let i = file
                .tensors
                .iter()
                .position(|t| t.range.contains(&offset))
                .ok_or_else(|| {
                    decode(file, 0, format!("flip at byte {offset} lies in no tensor"))
                })?;
            let t = &file.tensors[i];
            rate.flips += 1;
            rate.manifest_caught +=
                usize::from(sha256_hex(&file.bytes[t.range.clone()]) != hashes[i]);
            let values = file
                .values(t)
                .map_err(|e| decode(file, i, e.to_string()))?
                .unwrap_or_default();
            rate.health_caught += usize::from(check_values(&values).is_some());
            // Undo: the next seed starts from the clean bytes.
            file.bytes[offset] ^= 1 << (flip.bit % 8);
        }
        out.push(rate);
    }
    Ok(out)
}
