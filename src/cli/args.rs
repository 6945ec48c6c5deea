//! The flags of the subcommands whose bodies take them as one value.

use super::{DeviceArg, OracleRuntime};
use std::path::PathBuf;

/// `groundtruth run`'s flags.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Suite name (suites/<name>.toml).
    #[arg(long, default_value = "ci")]
    pub suite: String,
    /// Only cases whose name contains this.
    #[arg(long, conflicts_with = "exact")]
    pub filter: Option<String>,
    /// Only the case with exactly this name.
    #[arg(long)]
    pub exact: Option<String>,
    /// Output folder (default target/groundtruth).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the cases as JUnit XML to this file (for CI systems that read it).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// The device (`--device`).
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `groundtruth oracle`'s flags.
#[derive(Debug, clap::Args)]
pub struct OracleArgs {
    /// Which runtime.
    #[arg(long, value_enum)]
    pub runtime: OracleRuntime,
    /// GGUF file (llama.cpp) or model folder (transformers), or hf://ORG/REPO[@REV][/FILE].
    #[arg(long)]
    pub model: String,
    /// Prompt set (default: the project's configs/prompts.toml).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// The oracle file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// model.id to record (default: ORG/REPO of an hf:// reference, else the file or folder name).
    #[arg(long)]
    pub model_id: Option<String>,
    /// model.weights to record for llama.cpp (default: the GGUF's most common tensor type).
    #[arg(long)]
    pub weights: Option<String>,
    /// Skip the perplexity record.
    #[arg(long)]
    pub no_perplexity: bool,
    /// Python interpreter with the runtime's packages (default: $GROUNDTRUTH_PYTHON, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// `groundtruth ticket`'s flags.
#[derive(Debug, clap::Args)]
pub struct TicketArgs {
    /// The report (default: report.json in the project's output folder).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// File each ticket with `gh issue create` (labels: groundtruth and the claim
    /// kind), skipping those whose fingerprint an open groundtruth issue already carries.
    #[arg(long)]
    pub gh: bool,
    /// OWNER/NAME of the repository (default: gh's, from the working directory).
    #[arg(long, requires = "gh")]
    pub repo: Option<String>,
    /// Print the gh commands that would create issues instead of running them.
    #[arg(long, requires = "gh")]
    pub dry_run: bool,
}

/// `groundtruth check`'s flags.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// GGUF file or folder with config.json, model.safetensors, tokenizer.json, or
    /// hf://ORG/REPO[@REV][/FILE] (resolved in the Hugging Face cache).
    #[arg(long)]
    pub model: String,
    /// Oracle file (groundtruth-oracle/1).
    #[arg(long)]
    pub oracle: PathBuf,
    /// Print `{"verdict", "claims": [...]}` instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write a ticket per falsified case into this folder.
    #[arg(long)]
    pub ticket: Option<PathBuf>,
    /// Write report.json, summary.md, report.html and tickets into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The device (`--device`).
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `groundtruth corrupt`'s flags.
#[derive(Debug, clap::Args)]
pub struct CorruptFlags {
    /// GGUF file, .safetensors file, model folder, or hf://ORG/REPO[@REV][/FILE].
    #[arg(long)]
    pub model: String,
    /// The damaged file (or folder, for a folder) to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed: the same seed and input give the same bytes.
    #[arg(long)]
    pub seed: u64,
    /// Number of flips.
    #[arg(long, conflicts_with = "rate", required_unless_present = "rate")]
    pub count: Option<u64>,
    /// Flips per billion weights of the region (e.g. 1e6).
    #[arg(long)]
    pub rate: Option<String>,
    /// Bit class: sign, exponent, exponent-msb, mantissa, mantissa-low, any.
    #[arg(long, default_value = "any", value_parser = crate::transform::flip::BitClass::parse)]
    pub bits: crate::transform::flip::BitClass,
    /// Region: weights (the matrices), scales, mins, packed (their quantized blocks'
    /// fields), embedding, norm.
    #[arg(long, default_value = "weights", value_parser = crate::transform::flip::Region::parse)]
    pub region: crate::transform::flip::Region,
    /// Only tensors whose stored or Hugging Face name matches this pattern (`*`, `?`),
    /// instead of the region's tensors; the region still picks the fields.
    #[arg(long)]
    pub tensors: Option<String>,
}

/// `groundtruth metrics`'s flags.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// The records (one JSON object a line).
    #[arg(long)]
    pub records: PathBuf,
    /// Tags, answer rule, tolerance and bootstrap (default: the project's configs/metrics.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write each record's verdict (SF, SC, broken rules, answer) as JSONL here.
    #[arg(long)]
    pub per_record: Option<PathBuf>,
}

/// How held-out problems are generated (`study`, `generate`).
#[derive(Debug, Clone, clap::Args)]
pub struct ProblemGeneration {
    /// Difficulty levels, comma-separated.
    #[arg(long, default_value = "1,2")]
    pub levels: String,
    /// New tokens at most per problem.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: u64,
    /// Problems generated together in one forward pass per step (same tokens at any size).
    #[arg(long, default_value_t = crate::run::DEFAULT_BATCH)]
    pub batch: usize,
}

/// `groundtruth study`'s flags.
#[derive(Debug, clap::Args)]
pub struct StudyArgs {
    /// Ladder rungs, comma-separated.
    #[arg(long, default_value = "tiny_1m,small_8m")]
    pub rungs: String,
    /// Variants, comma-separated (the first is the scale plot's).
    #[arg(long, default_value = "base,q8_0,q4_0,flip-exp,zero-tensor")]
    pub variants: String,
    /// Held-out problems per rung and variant.
    #[arg(long, default_value_t = 64)]
    pub problems: usize,
    /// Seed of the problems.
    #[arg(long, default_value_t = 20261129)]
    pub seed: u64,
    /// `--levels`, `--max-new-tokens`, `--batch`.
    #[command(flatten)]
    pub generation: ProblemGeneration,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// `groundtruth bench generate`'s flags.
#[derive(Debug, clap::Args)]
pub struct BenchGenerateArgs {
    /// Models: tiny_1m (committed), small_8m (the newest trained one in
    /// target/groundtruth/models/trained, or --small-8m), smollm2 (the model cache's
    /// SmolLM2-135M-Instruct Q4_1), or paths.
    #[arg(long, default_value = "tiny_1m,small_8m,smollm2")]
    pub models: String,
    /// A trained small_8m folder.
    #[arg(long, value_name = "DIR")]
    pub small_8m: Option<PathBuf>,
    /// Batch sizes, comma-separated (speed-ups are against the first).
    #[arg(long, default_value = "1,16")]
    pub batches: String,
    /// Held-out problems per run.
    #[arg(long, default_value_t = 32)]
    pub problems: usize,
    /// New tokens at most per problem.
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: u64,
}

/// `groundtruth bench eval`'s flags.
#[derive(Debug, clap::Args)]
pub struct BenchEvalArgs {
    /// Model (default: SmolLM2-135M-Instruct Q4_1 in the model cache).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Tokens decoded per prompt.
    #[arg(long, default_value_t = 32)]
    pub tokens: usize,
    /// Prompts from configs/prompts.toml (0: skip decoding).
    #[arg(long, default_value_t = 4)]
    pub prompts: usize,
    /// Skip the perplexity run (decoding only).
    #[arg(long)]
    pub no_scoring: bool,
    /// Python with llama-cpp-python: measure llama.cpp on the same shapes in this run
    /// (ci/bench_llamacpp.py) and print ratios against it; without it no ratio is shown.
    #[arg(long, value_name = "PYTHON")]
    pub with_llama_cpp: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// `--device` and `--precision`.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `--device` and `--precision` of a command that runs a model (`ppl`, `bench eval`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RuntimeArgs {
    /// The device (`--device`).
    #[command(flatten)]
    pub device: DeviceArg,
    /// f32, or bf16 autocast (matrix products in bf16, the rest f32); default f32.
    #[arg(long)]
    pub precision: Option<crate::runtime::Precision>,
}

impl RuntimeArgs {
    /// Where and in what precision the model runs: the flags, else the CPU in f32.
    pub fn runtime(&self) -> crate::runtime::Runtime {
        crate::runtime::Runtime {
            device: self.device.model_device(),
            precision: self.precision.unwrap_or_default(),
        }
    }
}
