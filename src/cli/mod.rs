//! The `groundtruth` command line: thin, every subcommand calls the library. Only
//! [`main`] is public: the binary is that one call.

/// `print!` to standard output through [`out::write`]; `?` on its error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))?
    };
}

/// `println!` to standard output through [`out::write`]; `?` on its error.
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `eprintln!` that never panics (see [`out::note`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::out::note(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod anchor;
mod args;
mod bench;
mod bench_generate;
mod check;
mod commands;
mod generate;
mod gh;
mod integrity;
mod metrics;
mod oracle;
mod out;
mod ppl;
mod quant;
mod reproduce;
mod sft;
mod study;
mod sweep;
mod train;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub(crate) use args::{
    BenchEvalArgs, BenchGenerateArgs, CheckArgs, CorruptFlags, MetricsArgs, OracleArgs,
    ProblemGeneration, RunArgs, RuntimeArgs, StudyArgs, TicketArgs,
};
use commands::execute;

/// The `groundtruth` binary: parses the arguments, runs the command and maps its result to
/// the exit code (an error prints one line and exits 2; a closed standard output exits
/// quietly with 141, as a shell reports SIGPIPE).
pub fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let result = execute(Cli::parse())
        .and_then(|code| out::flush().map(|()| code).map_err(anyhow::Error::from));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => match out::report(&e) {
            None => ExitCode::from(out::EXIT_BROKEN_PIPE),
            Some(line) => {
                out::note(format_args!("groundtruth: {line}\n"));
                ExitCode::from(crate::plan::EXIT_BAD_INPUT)
            }
        },
    }
}

/// Tries to falsify claims about tiny language models.
#[derive(Debug, Parser)]
#[command(name = "groundtruth", version, about)]
pub(crate) struct Cli {
    /// Project root (holds claims/, suites/, configs/, oracles/, data/). Default: the
    /// nearest folder at or above the working directory with a groundtruth.toml, else the
    /// project built into this binary.
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// `train` carries many optional flags; the command line is parsed once, so size is moot.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// Run a suite: progress bar, summary matrix, report and tickets. Exit 0 holds,
    /// 1 falsified, 2 bad input or error, 3 nothing judged.
    Run(RunArgs),
    /// Write the project built into this binary (claims, suites, configs, oracles, corpus,
    /// oracle scripts) into a folder, as a new project to edit.
    Init {
        /// The folder (created if missing; must not hold the project's files yet).
        dir: PathBuf,
    },
    /// Make an oracle with an independent runtime: runs the reference script of ci/ for
    /// llama.cpp (a GGUF file) or transformers (a Hugging Face folder) in Python, then
    /// checks what it wrote against the oracle contract before putting it at --out.
    Oracle(OracleArgs),
    /// Registered claims.
    Claims {
        /// What to do with them.
        #[command(subcommand)]
        action: ClaimsAction,
    },
    /// Print the tickets of a report, one per claim × model × variant × root cause (each
    /// with its fingerprint); with --gh, file each new one as a GitHub issue.
    Ticket(TicketArgs),
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
    Check(CheckArgs),
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
    /// Export a registered model (or a GGUF file), as stored or as a variant: GGUF with
    /// complete llama metadata and tokenizer, or a Hugging Face folder (f32 safetensors).
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
        /// The variant to write (default: the model as stored): a storage type, a seeded
        /// corruption, or both (`q4_0+flip-exp-msb@count=1~3`).
        #[arg(long, default_value = "base")]
        variant: String,
    },
    /// Write a copy of a model (GGUF, .safetensors, or a Hugging Face folder) with seeded
    /// bit flips in its tensor data, and the flip list beside it (`OUT.flips.json`; for a
    /// folder, beside its model.safetensors). Flips in quantized blocks change the stored
    /// f16 scales, mins and packed values themselves.
    Corrupt(CorruptFlags),
    /// Record the SHA-256 of a model's files and of every tensor's stored bytes.
    Manifest {
        /// GGUF file, .safetensors file, model folder, or hf://….
        #[arg(long)]
        model: String,
        /// The manifest to write (JSON, groundtruth-manifest/1).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a model against its manifest: exit 0 intact, 1 naming every changed file and
    /// tensor, 2 bad input.
    Verify {
        /// The model the manifest was made of.
        #[arg(long)]
        model: String,
        /// The manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every tensor's values without a reference: NaN/infinity, all zero, or a
    /// magnitude absurd next to the tensor's own median. Exit 0 healthy, 1 flagged.
    Health {
        /// GGUF file, .safetensors file, model folder, or hf://….
        #[arg(long)]
        model: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    /// llama.cpp-compatible perplexity: contexts of `--ctx` tokens, the second half of each
    /// scored. With `--base`, llama.cpp-style KL statistics against an oracle. Exit 0, or
    /// 2 on bad input.
    Ppl(PplArgs),
    /// Structural fidelity (SF), semantic correctness (SC) and theater (SF and not SC) of
    /// reasoning traces in a GenerationRecord JSONL file, per model x variant, with seeded
    /// bootstrap intervals. Exit 0, or 2 on a bad line (file and line named, nothing written).
    Metrics(MetricsArgs),
    /// Generate GenerationRecord JSONL: a model (GGUF file or Hugging Face folder, or a
    /// variant of it) continues held-out arithmetic problems (configs/sft.toml), greedy or
    /// with seeded sampling; each record carries per-token entropies and top-1
    /// probabilities. `groundtruth metrics` scores the file.
    Generate {
        /// GGUF file or folder with config.json, model.safetensors, tokenizer.json.
        #[arg(long)]
        model: String,
        /// Variant, problems, decoding and output.
        #[command(flatten)]
        args: GenerateArgs,
    },
    /// The degradation study: SFT of each rung (its `{rung}-arith` recipe, cached), greedy
    /// records of each variant on the same held-out problems (cached in OUT/records, so a
    /// study resumes), then metrics.json, table.md and SVG plots of SF and SC against scale
    /// and against quantization and corruption.
    Study(StudyArgs),
    /// Judge the registered metric numbers (claims/metrics/*.toml), on committed records or
    /// on records generated fresh from a seeded SFT: each must reproduce within its
    /// registered tolerance, or its bound must be supported by the bootstrap interval. Exit 0 when all behave as registered, 1 (with a ticket each) when one does
    /// not, 2 on bad input, 3 when nothing was judged.
    Reproduce {
        /// Registered-numbers files (default: every claims/metrics/*.toml).
        #[arg(long)]
        registered: Vec<PathBuf>,
        /// Only the number with this id.
        #[arg(long)]
        id: Option<String>,
        /// Also write each ticket to DIR/ID.md.
        #[arg(long)]
        tickets: Option<PathBuf>,
        /// Also write the records generated for numbers with `generate` to DIR.
        #[arg(long)]
        records_out: Option<PathBuf>,
    },
    /// Print the model ladder: rung, target, realized parameters, shape.
    Ladder {
        /// Ladder file.
        #[arg(long, default_value = "configs/ladder.toml")]
        config: PathBuf,
    },
    /// Train a ladder rung deterministically (same seed and inputs: bit-identical weights),
    /// writing a Hugging Face folder, checkpoints, metrics.csv and loss.svg to --out.
    Train(TrainArgs),
    /// Severity sweeps.
    Sweep {
        /// What to sweep.
        #[command(subcommand)]
        action: SweepAction,
    },
    /// Benchmarks.
    Bench {
        /// What to measure.
        #[command(subcommand)]
        action: BenchAction,
    },
    /// The ladder's shared tokenizer.
    Tokenizer {
        /// What to do.
        #[command(subcommand)]
        action: TokenizerAction,
    },
}

/// `groundtruth train` flags. Unset hyper-parameters come from `--recipe`, else from the
/// tiny_1m recipe's defaults.
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// Registered recipe (configs/recipes.toml) to start from.
    #[arg(long)]
    pub recipe: Option<String>,
    /// Ladder rung (configs/ladder.toml); default the recipe's, else tiny_1m.
    #[arg(long)]
    pub rung: Option<String>,
    /// Corpus text file; default the recipe's (its SHA-256 then checked).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seed of init and batch sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sequences per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Tokens per sequence.
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final learning rate of the cosine.
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Warmup steps (default: the recipe's, or 10% of --steps when --steps is given).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// AdamW weight decay (matrices only).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Global gradient-norm clip (0: none).
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Held-out share of the corpus.
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Steps between validation evaluations.
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Steps between checkpoints (0: only the last).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u64,
    /// Continue from this checkpoint folder (identical to an uninterrupted run).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this step, with a checkpoint.
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// The device (default: the recipe's, else cpu).
    #[command(flatten)]
    pub device: DeviceArg,
    /// f32, or bf16 (autocast: matrix products in bf16, all else f32; default: the
    /// recipe's, else f32). Recorded in the checkpoint metadata.
    #[arg(long)]
    pub precision: Option<crate::runtime::Precision>,
    /// Supervised fine-tuning on arithmetic traces instead of pretraining: the loss on the
    /// completion only, the tags and an end token appended to the vocabulary. `--recipe`
    /// then names a recipe of configs/sft.toml.
    #[arg(long)]
    pub sft: bool,
    /// SFT: the trained Hugging Face folder to fine-tune (default: the recipe's base).
    #[arg(long, requires = "sft")]
    pub from: Option<PathBuf>,
    /// SFT: the file whose [problems] and end_token define the data (default configs/sft.toml).
    #[arg(long, requires = "sft")]
    pub problems: Option<PathBuf>,
    /// SFT: difficulty levels, comma-separated (default the recipe's).
    #[arg(long, requires = "sft")]
    pub levels: Option<String>,
}

/// `groundtruth generate` options.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GenerateArgs {
    /// Variant applied to the model before generating (base, q8_0, q4_0, flip-exp:SEED, …);
    /// also the records' variant label.
    #[arg(long, default_value = "base")]
    pub variant: String,
    /// Model label in the records (default: the file or folder name).
    #[arg(long)]
    pub label: Option<String>,
    /// Held-out problems to generate on.
    #[arg(long)]
    pub problems: usize,
    /// Seed of the problems and of the sampling.
    #[arg(long)]
    pub seed: u64,
    /// The file whose [problems] defines the problem space (default configs/sft.toml).
    #[arg(long)]
    pub problems_file: Option<PathBuf>,
    /// Seeded sampling (default greedy): temperature 0.3, top-k 25, top-p 0.8, repetition
    /// penalty 1.3 unless given.
    #[arg(long)]
    pub sample: bool,
    /// Sampling temperature.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Sampling top-k.
    #[arg(long)]
    pub top_k: Option<u64>,
    /// Sampling top-p.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Repetition penalty.
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
    /// `--levels`, `--max-new-tokens`, `--batch`.
    #[command(flatten)]
    pub generation: ProblemGeneration,
    /// The records file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// `sweep` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum SweepAction {
    /// Seeded bit flips at several rates, per bit class, over several seeds: perplexity
    /// ratio, mean/p99 KL and top-1 agreement against the clean model over the evaluation
    /// slice; writes points.csv, summary.csv and two SVG plots (PPL ratio − 1 and mean KL
    /// against rate, log axes, one line per bit class, the seeds' spread as a band).
    Corrupt {
        /// Model name from configs/models.toml, or a path to a .gguf file.
        #[arg(long)]
        model: String,
        /// Comma-separated rates in flips per billion weights of the region (1e3,1e4,1e5).
        #[arg(long, value_delimiter = ',', required = true)]
        rates: Vec<String>,
        /// Comma-separated bit classes (one line each).
        #[arg(long, value_delimiter = ',', default_value = "exponent-msb,exponent,sign,mantissa,mantissa-low", value_parser = crate::transform::flip::BitClass::parse)]
        bits: Vec<crate::transform::flip::BitClass>,
        /// Region the flips land in.
        #[arg(long, default_value = "weights", value_parser = crate::transform::flip::Region::parse)]
        region: crate::transform::flip::Region,
        /// Seeds per point (0, 1, …).
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Convert to this storage type first and flip its stored bytes (q4_0, q8_0, …).
        #[arg(long)]
        storage: Option<String>,
        /// Windows of the evaluation slice scored per point (of configs/eval.toml's).
        #[arg(long, default_value_t = 2)]
        chunks: usize,
        /// Folder for the CSV files and plots (default: the output folder's sweeps/MODEL).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `bench` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchAction {
    /// Training throughput (tokens/s), 6·N·T model FLOP/s and MFU against the measured
    /// f32 matmul rate, against PyTorch measured on the same shapes in the same run
    /// (`--with-pytorch`).
    Train {
        /// Comma-separated rungs.
        #[arg(long, default_value = "tiny_1m,small_8m")]
        rungs: String,
        /// Timed steps per rung.
        #[arg(long, default_value_t = 10)]
        steps: u64,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup_steps: u64,
        /// Sequences per step.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Tokens per sequence.
        #[arg(long, default_value_t = 128)]
        seq_len: usize,
        /// Python with torch and transformers: measure PyTorch on the same shapes in this
        /// run (ci/bench_pytorch_train.py) and print ratios against it; without it no
        /// ratio is shown.
        #[arg(long, value_name = "PYTHON")]
        with_pytorch: Option<PathBuf>,
        /// The device (`--device`).
        #[command(flatten)]
        device: DeviceArg,
        /// f32, or bf16 autocast (matrix products in bf16).
        #[arg(long, default_value = "f32")]
        precision: crate::runtime::Precision,
    },
    /// Generation throughput: records/s and tokens/s of greedy GenerationRecords on held-out
    /// arithmetic problems at each batch size, per model; every batch size's records must
    /// equal the first's (batching changes no token).
    Generate(BenchGenerateArgs),
    /// Scoring (ppl at the configs/eval.toml ctx × chunks) and greedy decoding tokens/s,
    /// against llama.cpp measured in the same run (`--with-llama-cpp`).
    Eval(BenchEvalArgs),
}

/// `groundtruth ppl`'s flags: one value, so the command's body takes one argument.
#[derive(Debug, clap::Args)]
pub(crate) struct PplArgs {
    /// GGUF file or folder with config.json, model.safetensors, tokenizer.json, or
    /// hf://ORG/REPO[@REV][/FILE].
    #[arg(long)]
    pub model: String,
    /// UTF-8 text file; default the configs/eval.toml slice (what oracles score).
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Context length (even).
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Contexts to score; default every whole context in the text.
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Oracle file (groundtruth-oracle/1) to compare with.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// `--device` and `--precision`.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `--device`: one typed option for every command that runs a model (`run`, `check`,
/// `train`, `ppl`, `bench train`, `bench eval`).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct DeviceArg {
    /// cpu, cuda or cuda:N. For `run` and `check`: the GPU that cases with a CUDA runtime
    /// (`…@cuda`) use, default cuda:0; `cpu` makes them skip with that reason. For the
    /// other commands: where the model runs, default cpu (`train`: the recipe's). A CUDA
    /// device needs a build with the `cuda` feature and a GPU; a command that needs one
    /// and finds none exits 2 naming why.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<crate::device::DeviceSpec>,
}

impl DeviceArg {
    /// Where a command's model runs: the flag, else the CPU.
    pub fn model_device(&self) -> crate::device::DeviceSpec {
        self.device.unwrap_or_default()
    }

    /// The GPU a run's CUDA cases use: the flag, else `cuda:0`.
    pub fn run_gpu(&self) -> crate::device::DeviceSpec {
        self.device.unwrap_or(crate::device::DeviceSpec::Cuda(0))
    }
}

/// `tokenizer` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenizerAction {
    /// Learn the ladder tokenizer from the corpus in configs/recipes.toml and write it to
    /// the path configs/ladder.toml names.
    Build {
        /// Exit 1 instead of writing when the file differs from a fresh build.
        #[arg(long)]
        check: bool,
    },
}

/// `claims` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum ClaimsAction {
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

/// Runtimes `groundtruth oracle` drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OracleRuntime {
    /// llama.cpp through llama-cpp-python, on a GGUF file (ci/oracle_llamacpp.py).
    #[value(name = "llama.cpp")]
    LlamaCpp,
    /// Hugging Face transformers on PyTorch, on a model folder (ci/oracle_transformers.py).
    Transformers,
}

/// An error as one line: the chain of causes joined by ": ", leaving out a cause whose
/// text the line already holds (an I/O error wrapped with its path would say it twice).
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text.trim());
    }
    line
}

/// Formats `groundtruth export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// llama.cpp's GGUF.
    Gguf,
    /// A Hugging Face folder: config.json, model.safetensors (f32), tokenizer.json.
    Safetensors,
}
