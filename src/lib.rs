//! groundtruth: a harness that tries to falsify claims about tiny language models and the
//! tools that convert, quantize, corrupt and run them.
#![warn(missing_docs)]

pub mod model;
pub mod rng;
