//! Subjects: a registered model, resolved to weights, a tokenizer and a runtime.

pub mod registry;
