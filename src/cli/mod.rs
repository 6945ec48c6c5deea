//! The `groundtruth` command line: thin, every subcommand calls the library.

mod bench;
mod check;
mod commands;
mod ppl;

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
    /// llama.cpp-compatible perplexity: contexts of `--ctx` tokens, the second half of each
    /// scored. With `--base`, llama.cpp-style KL statistics against an oracle. Exit 0, or
    /// 2 on bad input.
    Ppl {
        /// GGUF file or folder with config.json, model.safetensors, tokenizer.json.
        #[arg(long)]
        model: PathBuf,
        /// UTF-8 text file; default the configs/eval.toml slice (what oracles score).
        #[arg(long)]
        text: Option<PathBuf>,
        /// Context length (even).
        #[arg(long, default_value_t = 512)]
        ctx: usize,
        /// Contexts to score; default every whole context in the text.
        #[arg(long)]
        chunks: Option<usize>,
        /// Oracle file (groundtruth-oracle/1) to compare with.
        #[arg(long)]
        base: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks.
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Print the model ladder: rung, target, realized parameters, shape.
    Ladder {
        /// Ladder file.
        #[arg(long, default_value = "configs/ladder.toml")]
        config: PathBuf,
    },
}

/// `bench` targets.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Scoring (ppl at the configs/eval.toml ctx × chunks) and greedy decoding tokens/s,
    /// against llama.cpp's figures on this machine.
    Eval {
        /// Model (default: SmolLM2-135M-Instruct Q4_1 in the model cache).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Tokens decoded per prompt.
        #[arg(long, default_value_t = 32)]
        tokens: usize,
        /// Prompts from configs/prompts.toml (0: skip decoding).
        #[arg(long, default_value_t = 4)]
        prompts: usize,
        /// Skip the perplexity run (decoding only).
        #[arg(long)]
        no_scoring: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
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
