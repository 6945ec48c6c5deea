//! Oracles: the `groundtruth-oracle/1` format ([`Oracle`]), read and written atomically.

mod config;
mod format;
mod io;

pub use config::{ModelConfig, RopeScaling};
pub use format::{
    Decoding, ModelLimits, Oracle, OracleCase, OracleModel, Perplexity, Runtime, FORMAT,
    MAX_CASE_TEXT_BYTES, STORAGE_TYPES,
};
pub use io::{check_for, parse, read, read_for, write, OracleError, MAX_ORACLE_BYTES};
