//! Transforms that derive a variant from a model's weights: storage-type conversion
//! ([`convert`], with llama.cpp's fallbacks and per-tensor error bounds), seeded
//! corruption ([`corrupt`]) and GGUF export ([`export_gguf`]).

mod convert;
mod corrupt;
mod export;
pub mod flip;
mod qerror;

pub use convert::{
    convert, describe_fallbacks, ggml_dtype, group_fallbacks, has_reference_quantizer,
    llama_cpp_fallback, storage_type, Fallback,
};
pub use corrupt::{corrupt, Damage};
pub use export::{
    declared_type, export_gguf, export_metadata, llama_ftype, predominant_type, weight_type,
    Source, GGML_QUANTIZATION_VERSION,
};
pub use qerror::{
    llama_cpp_array_rmse, llama_cpp_total_error_bound, rmse, rmse_bound, tensor_errors,
    TensorError, LLAMA_CPP_TEST_SIZE,
};

use crate::model::{ModelError, Weights};
use crate::variant::Variant;
use flip::{corrupt_weights, FlipError, FlipList, Target};

/// Why a variant could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// Converting or damaging the weights failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Bit flips could not be planned or applied.
    #[error(transparent)]
    Flip(#[from] FlipError),
}

/// A derived variant: its weights, one line per fallback or damage, and the flip list of
/// a bit-flip variant (what its evidence carries).
#[derive(Debug, Clone)]
pub struct Applied {
    /// The variant's weights (the base's, converted or damaged).
    pub weights: Weights,
    /// Fallbacks taken and damage done, for reports.
    pub notes: Vec<String>,
    /// Every flipped bit, for [`Variant::Flip`].
    pub flips: Option<FlipList>,
}

/// How many flips a note lists one by one (the flip list in the evidence has them all).
const FLIPS_NOTED: usize = 8;

/// Applies a variant to base weights. `used_tokens` are ids present in the evaluation
/// sequences, so damage to embedding rows lands where behaviour can show it.
pub fn apply(
    base: &Weights,
    variant: &Variant,
    used_tokens: &[u32],
) -> Result<Applied, TransformError> {
    let plain = |(weights, notes)| Applied {
        weights,
        notes,
        flips: None,
    };
    match variant {
        Variant::Base => Ok(plain((base.clone(), vec![]))),
        Variant::Convert(d) => Ok(plain(
            convert(base, *d).map(|(w, f)| (w, describe_fallbacks(&f)))?,
        )),
        Variant::Corrupt(c, seed) => {
            let (w, damage) = corrupt(base, *c, *seed, used_tokens)?;
            Ok(plain((w, vec![damage.describe()])))
        }
        Variant::Flip {
            storage,
            spec,
            seed,
        } => {
            let (stored, mut notes) = match storage {
                Some(d) => convert(base, *d).map(|(w, f)| (w, describe_fallbacks(&f)))?,
                None => (base.clone(), vec![]),
            };
            let (weights, list) = corrupt_weights(
                &stored,
                &Target::class(spec.bits, spec.region),
                spec.severity,
                *seed,
            )?;
            notes.push(format!(
                "{} flip(s) of {} bits in {} ({} eligible bits over {} weights), seed {seed}",
                list.flips.len(),
                list.bits,
                list.region,
                list.eligible_bits,
                list.weights
            ));
            let lines = list.describe();
            notes.extend(lines.iter().take(FLIPS_NOTED).cloned());
            if lines.len() > FLIPS_NOTED {
                notes.push(format!(
                    "… {} more flips in the evidence's flip list",
                    lines.len() - FLIPS_NOTED
                ));
            }
            Ok(Applied {
                weights,
                notes,
                flips: Some(list),
            })
        }
    }
}
