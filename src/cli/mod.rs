//! The `groundtruth` command line: thin, every subcommand calls the library.

mod check;
mod commands;
mod quant;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub use commands::execute;

/// Tries to falsify claims about tiny language models.
#[derive(Debug, Parser)]
#[command(name = "groundtruth", version, about)]
pub struct Cli {
    /// Project root (holds claims/, suites/, configs/, oracles/).
    #[arg(long, global = true, default_value = ".")]
    pub root: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a suite: progress bar, summary matrix, report and tickets. Exit 0 holds,
    /// 1 falsified, 2 bad input or error, 3 nothing judged.
    Run {
        /// Suite name (suites/<name>.toml).
        #[arg(long, default_value = "ci")]
        suite: String,
        /// Only cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Output folder (default target/groundtruth).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Registered claims.
    Claims {
        /// What to do with them.
        #[command(subcommand)]
        action: ClaimsAction,
    },
    /// Print the tickets of a report, one per claim and root cause.
    Ticket {
        /// The report (target/groundtruth/report.json).
        #[arg(long, default_value = "target/groundtruth/report.json")]
        report: PathBuf,
    },
    /// Write a registered seeded model as a Hugging Face folder (config.json,
    /// model.safetensors, tokenizer.json), e.g. for an independent runtime to make its oracle.
    Materialize {
        /// Model name from configs/models.toml.
        #[arg(long)]
        model: String,
        /// Folder to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Judge a checkpoint (GGUF file or Hugging Face folder) against an oracle with the
    /// claims of claims/check/. Exit 0 holds, 1 falsified, 2 bad input, 3 nothing judged.
    Check {
        /// GGUF file or folder with config.json, model.safetensors, tokenizer.json.
        #[arg(long)]
        model: PathBuf,
        /// Oracle file (groundtruth-oracle/1).
        #[arg(long)]
        oracle: PathBuf,
        /// Print `{"verdict", "claims": [...]}` instead of the table.
        #[arg(long)]
        json: bool,
        /// Write a ticket per falsified case into this folder.
        #[arg(long)]
        ticket: Option<PathBuf>,
    },
    /// Download a registered model's original from the Hugging Face hub (pinned repo and
    /// revision from configs/models.toml) into the model cache; prints the files.
    Hub {
        /// Model name from configs/models.toml.
        #[arg(long)]
        model: String,
    },
    /// Quantize a registered model (or a GGUF file) to one storage type and write it as
    /// GGUF; prints which tensors fell back to which type and each tensor's error.
    Quantize {
        /// Model name from configs/models.toml, or a path to a .gguf file.
        #[arg(long)]
        model: String,
        /// Storage type: f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0, q6_k, q5_k, q4_k, q3_k, q2_k.
        #[arg(long)]
        to: String,
        /// The GGUF file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Export a registered model (or a GGUF file) as it is stored: GGUF with complete
    /// llama metadata and tokenizer, or a Hugging Face folder (f32 safetensors).
    Export {
        /// Model name from configs/models.toml, or a path to a .gguf file.
        #[arg(long)]
        model: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "gguf")]
        to: ExportFormat,
        /// The file (gguf) or folder (safetensors) to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print what a GGUF file holds: metadata, tensor types and shapes, per-tensor
    /// statistics and SHA-256, and whether candle and gguf-rs read it the same way.
    /// Exit 1 when the readers disagree or a tensor is all zero, NaN or infinite.
    Inspect {
        /// The GGUF file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the model ladder: rung, target, realized parameters, shape.
    Ladder {
        /// Ladder file.
        #[arg(long, default_value = "configs/ladder.toml")]
        config: PathBuf,
    },
}

/// `claims` actions.
#[derive(Debug, Subcommand)]
pub enum ClaimsAction {
    /// List the cases a suite expands to (or every claim).
    List {
        /// Suite name; without it, every registered claim.
        #[arg(long)]
        suite: Option<String>,
    },
    /// Write claims/CLAIMS.md from the TOML files.
    Render {
        /// Exit 1 instead of writing when the file is stale.
        #[arg(long)]
        check: bool,
    },
}

/// Formats `groundtruth export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// llama.cpp's GGUF.
    Gguf,
    /// A Hugging Face folder: config.json, model.safetensors (f32), tokenizer.json.
    Safetensors,
}
