//! `groundtruth bench eval`: the evaluation hot path's speed on SmolLM2 — teacher-forced
//! scoring (`ppl` at ctx 512 × 8 chunks) and greedy decoding through the KV cache —
//! next to llama.cpp measured on the same shapes in the same run (`--with-llama-cpp`), or
//! llama.cpp's stored figure without a ratio. No assertions: timings depend on the
//! machine and its load, which is printed with them.

use super::anchor::{compare, live, run_script, Live, LLAMA_CPP_DECODE, LLAMA_CPP_PREFILL};
use super::ppl::{describe, load_model, perplexity_shown, read_text};
use crate::model::KvCache;
use crate::plan::EXIT_HOLDS;
use crate::project::Project;
use crate::run::argmax;
use crate::run::EvalSlice;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model `bench eval` measures unless told otherwise.
const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// What `bench eval` measures.
pub(super) struct Plan {
    /// Worker threads.
    pub(super) threads: usize,
    /// Tokens decoded per prompt.
    pub(super) tokens: usize,
    /// Prompts decoded (0: none).
    pub(super) prompts: usize,
    /// Whether to run the perplexity measurement.
    pub(super) scoring: bool,
    /// The Python that runs `ci/bench_llamacpp.py` on the same shapes after ours.
    pub(super) llama_cpp: Option<PathBuf>,
    /// Device and precision of the model.
    pub(super) runtime: crate::runtime::Runtime,
}

/// llama.cpp measured in this run: scoring (all logits) and decoding, when asked.
struct Reference {
    prefill: Option<Live>,
    decode: Option<Live>,
}

/// Runs `ci/bench_llamacpp.py` with `python` on the shapes of `plan`.
fn llama_cpp(project: &Project, python: &Path, model: &Path, plan: &Plan) -> Result<Reference> {
    let script = project.path("ci/bench_llamacpp.py");
    let mut args = vec![
        "--json".to_string(),
        "--model".into(),
        model.display().to_string(),
        "--threads".into(),
        plan.threads.to_string(),
    ];
    args.extend([
        "--prompts".into(),
        plan.prompts.to_string(),
        "--tokens".into(),
        plan.tokens.to_string(),
    ]);
    if !plan.scoring {
        args.push("--no-prefill".into());
    }
    errln!(
        "measuring llama.cpp on the same shapes ({} {})…",
        python.display(),
        script.display()
    );
    let doc = run_script(python, &script, &args)?;
    Ok(Reference {
        prefill: plan
            .scoring
            .then(|| live(&doc, "prefill_logits_all", &script))
            .transpose()?,
        decode: (plan.prompts > 0)
            .then(|| live(&doc, "decode", &script))
            .transpose()?,
    })
}

/// What `bench eval` measured, for its JSON or text output.
struct Measured {
    path: PathBuf,
    /// The model's numerical path and storage, in words.
    numerical_path: String,
    about: String,
    add_bos: bool,
    /// Perplexity of the eval slice and where the text came from (none with --no-scoring).
    scored: Option<(crate::run::PplResult, String)>,
    prefill: Timing,
    decode: Timing,
    /// Prompts timed and tokens decoded for each.
    prompts: usize,
    tokens: usize,
    /// The 1-minute load average before llama.cpp's run.
    load: String,
    reference: Option<Reference>,
    threads: usize,
}

/// Runs `groundtruth bench eval`.
pub(super) fn eval(project: &Project, model: Option<&Path>, plan: &Plan, json: bool) -> Result<u8> {
    let path: PathBuf = model
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::project::models_cache().join(SMOLLM2));
    if !path.exists() {
        bail!(
            "model file not found: {}: run ci/fetch-models.sh",
            path.display()
        );
    }
    use_threads(plan.threads);
    let m = load_model(&path, plan.runtime)?;
    let scored = plan
        .scoring
        .then(|| score(project, &m, &path))
        .transpose()?;
    let all = crate::prompts::load(&project.path(crate::project::DEFAULT_PROMPTS))?;
    let mut decode = Timing::default();
    let mut prefill = Timing::default();
    for p in all.iter().take(plan.prompts) {
        let ids = crate::run::prompt_tokens(m.tokenizer.as_ref(), &p.text, &p.id)?;
        let (pre, dec) = greedy_timed(&m.llama, &ids, plan.tokens)?;
        prefill.add(ids.len(), pre);
        decode.add(plan.tokens.saturating_sub(1), dec);
    }
    let load = load_average();
    let reference = plan
        .llama_cpp
        .as_deref()
        .map(|py| llama_cpp(project, py, &path, plan))
        .transpose()?;
    let measured = Measured {
        numerical_path: m.llama.numerical_path(),
        about: m.about.clone(),
        add_bos: m.tokenizer.add_bos(),
        path,
        scored,
        prefill,
        decode,
        prompts: plan.prompts.min(all.len()),
        tokens: plan.tokens,
        load,
        reference,
        threads: rayon::current_num_threads(),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&measured.json())?);
    } else {
        measured.print()?;
    }
    Ok(EXIT_HOLDS)
}

/// Sizes rayon's global pool, which gemm and the engine share; it must run before anything
/// touches the pool, and says so when something already did.
fn use_threads(threads: usize) {
    if rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_err()
    {
        errln!(
            "groundtruth: the thread pool was already running; measuring with {} threads",
            rayon::current_num_threads()
        );
    }
}

/// Perplexity of the eval slice (what oracles score), with a progress bar, and the text's
/// source.
fn score(
    project: &Project,
    m: &super::ppl::Loaded,
    path: &Path,
) -> Result<(crate::run::PplResult, String)> {
    let (text, source) = read_text(project, None)?;
    let slice = EvalSlice::load(&project.root, &project.path(crate::project::EVAL_FILE))?;
    let r = perplexity_shown(m, &text, slice.ctx, Some(slice.chunks))
        .with_context(|| format!("{}: perplexity", path.display()))?;
    Ok((r, source))
}

impl Measured {
    /// llama.cpp's prefill and decode measurements, where it was run.
    fn reference_rates(&self) -> (Option<&Live>, Option<&Live>) {
        match &self.reference {
            Some(r) => (r.prefill.as_ref(), r.decode.as_ref()),
            None => (None, None),
        }
    }

    /// `bench eval --json`'s document.
    fn json(&self) -> serde_json::Value {
        let (ref_prefill, ref_decode) = self.reference_rates();
        let ppl = self.scored.as_ref().map(|(r, _)| r);
        let ratio = |ours: Option<f64>, theirs: Option<&Live>| {
            ours.zip(theirs).map(|(o, t)| o / t.tokens_per_s)
        };
        serde_json::json!({
            "model": self.path.display().to_string(),
            "path": self.numerical_path,
            "threads": self.threads,
            "load_average_1min": self.load,
            "ppl": ppl,
            "ppl_tokens_per_s": ppl.map(|r| r.tokens_per_s),
            "prompt_tokens_per_s": self.prefill.rate(),
            "decode_tokens_per_s": self.decode.rate(),
            "llama_cpp_measured": self.reference.is_some(),
            "llama_cpp_runtime": ref_decode.or(ref_prefill).map(|l| l.runtime.clone()),
            "llama_cpp_prefill_tokens_per_s": ref_prefill.map(|l| l.tokens_per_s),
            "llama_cpp_decode_tokens_per_s": ref_decode.map(|l| l.tokens_per_s),
            "ppl_vs_llama_cpp_prefill": ratio(ppl.map(|r| r.tokens_per_s), ref_prefill),
            "decode_vs_llama_cpp": ratio(self.decode.rate(), ref_decode),
            "load_average_1min_after_reference": self.reference.as_ref().map(|_| load_average()),
        })
    }

    /// `bench eval`'s text.
    fn print(&self) -> Result<()> {
        let (ref_prefill, ref_decode) = self.reference_rates();
        let threads = self.threads;
        let load = &self.load;
        outln!("model:   {} ({})", self.path.display(), self.about);
        outln!("path:    {}", self.numerical_path);
        outln!("machine: {threads} threads, 1-minute load average {load} (timings are noisy on a shared machine)\n");
        if let Some((r, source)) = &self.scored {
            out!("{}", describe(r, source, self.add_bos));
            outln!(
                "scoring: {:.1} tokens/s {}",
                r.tokens_per_s,
                compare(
                    r.tokens_per_s,
                    ref_prefill,
                    Some(&LLAMA_CPP_PREFILL),
                    "--with-llama-cpp"
                )
            );
        }
        if let (Some(p), Some(d)) = (self.prefill.rate(), self.decode.rate()) {
            outln!(
                "greedy:  {} prompts × {} tokens: prompts {p:.1} tokens/s, decoding {d:.1} tokens/s {}",
                self.prompts,
                self.tokens,
                compare(d, ref_decode, Some(&LLAMA_CPP_DECODE), "--with-llama-cpp")
            );
        }
        if self.reference.is_some() {
            let after = load_average();
            outln!("machine: 1-minute load average {after} after llama.cpp's run");
            for l in [load, &after] {
                if let Some(w) = super::anchor::contention_warning(l, threads) {
                    outln!("{w}");
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The 1-minute load average, or `?` where /proc/loadavg cannot be read.
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

#[derive(Default)]
struct Timing {
    tokens: usize,
    seconds: f64,
}

impl Timing {
    fn add(&mut self, tokens: usize, seconds: f64) {
        self.tokens += tokens;
        self.seconds += seconds;
    }

    /// Tokens per second; `None` when nothing was timed.
    fn rate(&self) -> Option<f64> {
        (self.tokens > 0 && self.seconds > 0.0).then(|| self.tokens as f64 / self.seconds)
    }
}

/// Greedy decoding of `n` tokens (EOS ignored, so every prompt decodes the same count):
/// seconds spent on the prompt and on the `n − 1` single-token steps.
fn greedy_timed(llama: &crate::model::Llama, prompt: &[u32], n: usize) -> Result<(f64, f64)> {
    let mut cache = KvCache::new(llama.config());
    let t0 = Instant::now();
    let input = Tensor::new(prompt, &Device::Cpu)?.unsqueeze(0)?;
    let out = llama.forward_from(&input, Some(&mut cache), prompt.len() - 1)?;
    let mut next = argmax(&out.flatten_all()?.to_vec1::<f32>()?);
    let pre = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 1..n {
        let input = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
        let out = llama.forward(&input, Some(&mut cache))?;
        next = argmax(&out.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((pre, t1.elapsed().as_secs_f64()))
}
