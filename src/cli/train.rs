//! `groundtruth train`, `groundtruth bench train` and `groundtruth tokenizer build`.

use super::{BenchAction, TokenizerAction, TrainArgs};
use crate::device::{DeviceError, DeviceSpec};
use crate::plan::{EXIT_FALSIFIED, EXIT_HOLDS};
use crate::project::Project;
use crate::train::{self as tr, Hyper, RunOptions, TrainSpec};
use anyhow::{Context, Result};
use std::sync::Arc;

/// Opens a `--device` value: one line naming the flag and why, for exit 2.
pub(super) fn open_device(spec: DeviceSpec) -> Result<candle_core::Device> {
    spec.open().map_err(|e| match e {
        DeviceError::NoDevice(_) => anyhow::anyhow!("--device {spec}: {e}"),
        // Already names the device.
        DeviceError::Setup { .. } => anyhow::anyhow!("--device {e}"),
    })
}

/// `groundtruth train`.
pub fn train(project: &Project, a: &TrainArgs) -> Result<u8> {
    if a.sft {
        return super::sft::sft(project, a);
    }
    let recipes = tr::load_recipes(&project.path(tr::RECIPES_FILE))?;
    let mut runtime = a
        .recipe
        .as_deref()
        .and_then(|n| recipes.get(n))
        .map(|r| r.runtime)
        .unwrap_or_default();
    runtime.device = a.device.device.unwrap_or(runtime.device);
    runtime.precision = a.precision.unwrap_or(runtime.precision);
    // Opened first, so a missing GPU is one line before any corpus or tokenizer work.
    open_device(runtime.device)?;
    let (rung, hyper, corpus, eval_every) = what_to_train(project, &recipes, a)?;
    let corpus = Arc::new(tr::Corpus::load(&corpus.0, corpus.1.as_deref())?);
    let spec = TrainSpec::for_rung(project, &recipes, &rung, hyper, corpus)?.on(runtime);
    let data = tr::data_for(&spec)?;
    let mut opts = RunOptions::new(&a.out);
    opts.eval_every = a.eval_every.unwrap_or(eval_every);
    opts.checkpoint_every = a.checkpoint_every;
    opts.resume = a.resume.clone();
    opts.stop_after = a.stop_after;
    opts.progress = true;
    errln!(
        "training {rung} ({} parameters) on {} ({} train / {} validation tokens), {} steps × {} × {}, seed {}, {runtime}, {} threads",
        spec.config.param_count(),
        spec.corpus.path.display(),
        data.train.len(),
        data.val.len(),
        hyper.steps,
        hyper.batch,
        hyper.seq_len,
        hyper.seed,
        candle_core::utils::get_num_threads()
    );
    let t0 = std::time::Instant::now();
    let s = tr::train(&spec, &data, &opts)?;
    let val = s.final_val_loss.map_or("-".into(), |v| format!("{v:.4}"));
    outln!("step {}/{}: train loss {:.4}, validation loss {val}, unigram entropy (train) {:.4}, ln(vocab) {:.4}", s.step, s.steps, s.final_train_loss, s.unigram_entropy_train, s.ln_vocab);
    outln!("weights sha256 {}", s.weights_sha256);
    if let Some(f) = &s.model_file_sha256 {
        outln!("model.safetensors sha256 {f}");
    }
    outln!(
        "{:.1} s wall, {:.0} training tokens/s; wrote {}",
        t0.elapsed().as_secs_f64(),
        s.tokens_per_second,
        a.out.display()
    );
    Ok(EXIT_HOLDS)
}

/// A corpus file and the SHA-256 it must have (none: whatever it holds).
type CorpusRef = (std::path::PathBuf, Option<String>);

/// The rung, hyperparameters, corpus (path and expected SHA-256) and evaluation interval
/// of a `train` run: the recipe's (or the defaults), each overridden by its flag.
fn what_to_train(
    project: &Project,
    recipes: &tr::Recipes,
    a: &TrainArgs,
) -> Result<(String, Hyper, CorpusRef, u64)> {
    let (rung, mut hyper, corpus, eval_every) = match &a.recipe {
        Some(name) => {
            let r = recipes
                .get(name)
                .with_context(|| format!("{}: no recipe named `{name}`", tr::RECIPES_FILE))?;
            (
                r.rung.clone(),
                r.hyper,
                (project.path(&r.corpus), Some(r.corpus_sha256.clone())),
                r.eval_every,
            )
        }
        None => {
            let c = a.corpus.clone().map(|p| (p, None)).unwrap_or_else(|| {
                (
                    project.path(&recipes.tokenizer.corpus),
                    Some(recipes.tokenizer.corpus_sha256.clone()),
                )
            });
            (
                a.rung.clone().unwrap_or_else(|| "tiny_1m".into()),
                Hyper::default(),
                c,
                50,
            )
        }
    };
    let rung = a.rung.clone().unwrap_or(rung);
    let corpus = match &a.corpus {
        Some(p) => (p.clone(), None),
        None => corpus,
    };
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = a.$f { hyper.$f = v; })* };
    }
    set!(
        seed,
        steps,
        batch,
        seq_len,
        lr,
        min_lr,
        warmup,
        weight_decay,
        grad_clip,
        val_fraction
    );
    if a.steps.is_some() && a.warmup.is_none() {
        hyper.warmup = hyper.steps / 10;
    }
    Ok((rung, hyper, corpus, eval_every))
}

/// `groundtruth bench train` (`bench eval` lives in `super::bench`).
pub fn bench(project: &Project, action: &BenchAction) -> Result<u8> {
    let BenchAction::Train {
        rungs,
        steps,
        warmup_steps,
        batch,
        seq_len,
        with_pytorch,
        device,
        precision,
    } = action
    else {
        anyhow::bail!("bench eval is not a training benchmark");
    };
    let device = device.model_device();
    let runtime = tr::Runtime {
        device,
        precision: *precision,
    };
    let dev = open_device(device)?;
    let ladder = crate::model::load_ladder(&project.path(tr::LADDER_FILE))?;
    let threads = candle_core::utils::get_num_threads();
    let mm_dtype = precision.autocast().unwrap_or(candle_core::DType::F32);
    let mm = tr::bench::matmul_gflops_on(&dev, mm_dtype);
    outln!(
        "{} matmul (candle on {device}, best of the benchmark's products): {mm:.1} GFLOP/s",
        mm_dtype.as_str()
    );
    outln!(
        "runtime: {runtime} ({}); {threads} CPU threads",
        precision.describe()
    );
    outln!(
        "machine: 1-minute load average {} (timings are noisy on a shared machine)",
        super::bench::load_average()
    );
    outln!("MFU: 6·N·T model FLOP/s over the measured matmul rate above, for both columns");
    outln!("| rung | params | batch × seq | tokens/s | model TFLOP/s (6·N·T) | MFU | PyTorch tokens/s | PyTorch MFU | ratio |");
    outln!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    let rows = BenchRows {
        project,
        with_pytorch: with_pytorch.as_deref(),
        batch: *batch,
        seq_len: *seq_len,
        warmup: *warmup_steps,
        steps: *steps,
        runtime,
        threads,
        mm,
    };
    let mut notes = Vec::new();
    for name in rungs.split(',') {
        let rung = ladder
            .rung(name)
            .with_context(|| format!("{}: no rung named `{name}`", tr::LADDER_FILE))?;
        rows.row(name, rung, &mut notes)?;
    }
    for n in notes {
        outln!("{n}");
    }
    let load = super::bench::load_average();
    if let Some(w) = with_pytorch
        .as_ref()
        .and_then(|_| super::anchor::contention_warning(&load, threads))
    {
        outln!("{w}");
    }
    Ok(EXIT_HOLDS)
}

/// What every row of `bench train`'s table shares.
struct BenchRows<'a> {
    project: &'a Project,
    /// The Python that times PyTorch on the same shapes, when asked.
    with_pytorch: Option<&'a std::path::Path>,
    batch: usize,
    seq_len: usize,
    warmup: u64,
    steps: u64,
    runtime: tr::Runtime,
    threads: usize,
    /// The measured matmul rate (GFLOP/s) MFU is taken against.
    mm: f64,
}

impl BenchRows<'_> {
    /// Times one rung, prints its row, and adds its comparison with PyTorch to `notes`.
    fn row(&self, name: &str, rung: &crate::model::Rung, notes: &mut Vec<String>) -> Result<()> {
        let r = tr::bench::train_throughput(
            &rung.config,
            self.batch,
            self.seq_len,
            self.warmup,
            self.steps,
            self.runtime,
        )?;
        let n = rung.config.param_count() as f64;
        let mfu = |tps: f64| format!("{:.1}%", 100.0 * 6.0 * n * tps / (self.mm * 1e9));
        let shape = PytorchShape {
            rung: name,
            config: &rung.config,
            batch: self.batch,
            seq_len: self.seq_len,
            warmup: self.warmup,
            steps: self.steps,
            threads: self.threads,
            runtime: self.runtime,
        };
        let reference = self
            .with_pytorch
            .map(|py| pytorch(self.project, py, &shape))
            .transpose()?;
        // The stored PyTorch figures were measured on this project's CPU machine.
        let stored = if self.runtime.device.is_cuda() {
            None
        } else {
            super::anchor::pytorch_stored(name)
        };
        let (theirs, their_mfu, ratio) = match (&reference, stored) {
            (Some(l), _) => (
                format!("{:.0} (measured now)", l.tokens_per_s),
                mfu(l.tokens_per_s),
                format!("{:.2}", r.tokens_per_second / l.tokens_per_s),
            ),
            (None, Some(s)) => {
                notes.push(format!(
                    "{name}: {}",
                    super::anchor::compare(r.tokens_per_second, None, Some(&s), "--with-pytorch")
                ));
                (
                    format!("{:.0} (stored)", s.tokens_per_s),
                    "-".into(),
                    "-".into(),
                )
            }
            (None, None) => ("-".into(), "-".into(), "-".into()),
        };
        outln!(
            "| {name} | {} | {} × {} | {:.0} | {:.3} | {} | {theirs} | {their_mfu} | {ratio} |",
            rung.config.param_count(),
            self.batch,
            self.seq_len,
            r.tokens_per_second,
            6.0 * n * r.tokens_per_second / 1e12,
            mfu(r.tokens_per_second),
        );
        if let Some(l) = &reference {
            notes.push(format!(
                "{name}: {}",
                super::anchor::compare(r.tokens_per_second, Some(l), None, "--with-pytorch")
            ));
        }
        Ok(())
    }
}

/// The shapes `bench train` timed, for PyTorch to time the same.
struct PytorchShape<'a> {
    rung: &'a str,
    config: &'a crate::model::LlamaConfig,
    batch: usize,
    seq_len: usize,
    warmup: u64,
    steps: u64,
    threads: usize,
    runtime: tr::Runtime,
}

/// Runs `ci/bench_pytorch_train.py` with `python` on the rung's config (written next to the
/// output folder, removed afterwards) and the same batch, sequence length, steps and threads.
fn pytorch(
    project: &Project,
    python: &std::path::Path,
    s: &PytorchShape<'_>,
) -> Result<super::anchor::Live> {
    let script = project.path("ci/bench_pytorch_train.py");
    let cfg = project.out_dir().join("tmp").join(format!(
        "bench-train-{}-{}.json",
        s.rung,
        std::process::id()
    ));
    crate::fsutil::atomic_write(&cfg, s.config.to_hf_json().as_bytes())?;
    let args: Vec<String> = vec![
        "--config".into(),
        cfg.display().to_string(),
        "--batch".into(),
        s.batch.to_string(),
        "--seq-len".into(),
        s.seq_len.to_string(),
        "--warmup".into(),
        s.warmup.to_string(),
        "--steps".into(),
        s.steps.to_string(),
        "--threads".into(),
        s.threads.to_string(),
        "--device".into(),
        if s.runtime.device.is_cuda() {
            "cuda".into()
        } else {
            "cpu".into()
        },
        "--precision".into(),
        s.runtime.precision.to_string(),
    ];
    errln!(
        "measuring PyTorch on {} ({} {})…",
        s.rung,
        python.display(),
        script.display()
    );
    let doc = super::anchor::run_script(python, &script, &args);
    let _ = std::fs::remove_file(&cfg);
    super::anchor::live(&doc?, "tokens_per_s", &script)
}

/// `groundtruth tokenizer ...`.
pub fn tokenizer(project: &Project, action: &TokenizerAction) -> Result<u8> {
    match action {
        TokenizerAction::Build { check } => {
            let recipes = tr::load_recipes(&project.path(tr::RECIPES_FILE))?;
            let json = tr::build_tokenizer(project, &recipes)?;
            let ladder = crate::model::load_ladder(&project.path(tr::LADDER_FILE))?;
            let rel = ladder
                .vocabulary
                .tokenizer
                .context("configs/ladder.toml: field `vocabulary.tokenizer` is not set")?;
            let path = project.path(&rel);
            let sha = crate::fsutil::sha256_hex(json.as_bytes());
            if *check {
                let current = crate::fsutil::read_bounded(&path, crate::fsutil::MAX_TEXT_BYTES)
                    .unwrap_or_default();
                if current == json.as_bytes() && sha == recipes.tokenizer.sha256 {
                    outln!("{}: up to date (sha256 {sha})", path.display());
                    return Ok(EXIT_HOLDS);
                }
                errln!(
                    "{}: differs from a fresh build (sha256 {sha}); registered {}",
                    path.display(),
                    recipes.tokenizer.sha256
                );
                return Ok(EXIT_FALSIFIED);
            }
            crate::fsutil::atomic_write(&path, json.as_bytes())?;
            outln!("wrote {} (sha256 {sha})", path.display());
            if sha != recipes.tokenizer.sha256 {
                errln!(
                    "note: {} registers sha256 {}; update it if this build is intended",
                    tr::RECIPES_FILE,
                    recipes.tokenizer.sha256
                );
            }
            Ok(EXIT_HOLDS)
        }
    }
}
