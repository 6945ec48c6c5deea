//! Transforms that derive a variant from a model's weights: storage-type conversion
//! ([`convert`], with llama.cpp's fallbacks and per-tensor error bounds), seeded
//! corruption ([`corrupt`]) and GGUF export ([`export_gguf`]).

mod convert;
mod corrupt;
mod export;
pub mod flip;
mod qerror;

pub use convert::{convert, describe_fallbacks, ggml_dtype, group_fallbacks, has_reference_quantizer, llama_cpp_fallback, storage_type, Fallback};
pub use corrupt::{corrupt, Damage};
pub use qerror::{llama_cpp_array_rmse, llama_cpp_total_error_bound, rmse, rmse_bound, tensor_errors, TensorError, LLAMA_CPP_TEST_SIZE};
pub use export::{declared_type, export_gguf, export_metadata, Source, llama_ftype, predominant_type, weight_type, GGML_QUANTIZATION_VERSION};

use crate::model::{Weights, ModelError};
use crate::variant::Variant;

/// Applies a variant to base weights. `used_tokens` are ids present in the evaluation
/// sequences, so damage to embedding rows lands where behaviour can show it.
pub fn apply(base: &Weights, variant: &Variant, used_tokens: &[u32]) -> Result<(Weights, Vec<String>), ModelError> {
    match variant {
        Variant::Base => Ok((base.clone(), vec![])),
        Variant::Convert(d) => convert(base, *d).map(|(w, f)| (w, describe_fallbacks(&f))),
        Variant::Corrupt(c, seed) => {
            let (w, damage) = corrupt(base, *c, *seed, used_tokens)?;
            Ok((w, vec![damage.describe()]))
        }
    }
}
