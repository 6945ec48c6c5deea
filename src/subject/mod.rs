//! Subjects: a registered model ([`registry`]) resolved to weights, a tokenizer and a
//! runtime ([`Subject`]).

pub mod hub;
mod load;
pub mod registry;
mod sft;

pub use load::{
    derive, export_variant, export_weights, load_base, materialize_seeded, stored_gguf, Base,
    Subject, SubjectError,
};
pub use sft::{base_folder, ensure_sft, spec_from_folder};
