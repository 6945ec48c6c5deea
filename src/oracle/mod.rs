//! Oracles: the `groundtruth-oracle/1` format ([`Oracle`]), read and written atomically.

mod config;
mod format;
mod io;

pub use config::{ModelConfig, RopeScaling};
pub use format::{Decoding, Oracle, OracleCase, OracleModel, Perplexity, Runtime, FORMAT};
pub use io::{parse, read, write, OracleError, MAX_ORACLE_BYTES};
