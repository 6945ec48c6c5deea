//! groundtruth: a harness that tries to falsify claims about tiny language models and the
//! tools that convert, quantize, corrupt and run them.
//!
//! Data flow: [`claim`] → cases → [`subject`] → transform → run → [`stats`] → [`outcome`] → [`report`].
#![warn(missing_docs)]

pub mod check;
pub mod claim;
pub mod builtin;
pub mod cli;
pub mod excerpt;
pub mod flipspec;
pub mod fsutil;
pub mod gguf_guard;
pub mod input;
pub mod integrity;
pub mod inspect;
pub mod jsonnum;
pub mod memo;
pub mod judge;
pub mod metrics;
pub mod model;
pub mod oracle;
pub mod outcome;
pub mod plan;
pub mod project;
pub mod problems;
pub mod prompts;
pub mod report;
pub mod rng;
pub mod run;
pub mod stats;
pub mod stored;
pub mod sweep;
pub mod subject;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tokenizer;
pub mod train;
pub mod transform;
pub mod variant;
