//! Transforms that derive a variant from a model's weights: storage-type conversion
//! ([`convert`]) and seeded corruption ([`corrupt`]).

mod convert;
mod corrupt;

pub use convert::{convert, ggml_dtype};
pub use corrupt::{corrupt, Damage};

use crate::model::{Weights, ModelError};
use crate::variant::Variant;

/// Applies a variant to base weights. `used_tokens` are ids present in the evaluation
/// sequences, so damage to embedding rows lands where behaviour can show it.
pub fn apply(base: &Weights, variant: &Variant, used_tokens: &[u32]) -> Result<(Weights, Vec<String>), ModelError> {
    match variant {
        Variant::Base => Ok((base.clone(), vec![])),
        Variant::Convert(d) => convert(base, *d),
        Variant::Corrupt(c, seed) => {
            let (w, damage) = corrupt(base, *c, *seed, used_tokens)?;
            Ok((w, vec![damage.describe()]))
        }
    }
}
