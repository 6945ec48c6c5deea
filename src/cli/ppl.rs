//! `groundtruth ppl`: llama.cpp-compatible perplexity of a text, and with `--base` the
//! KL statistics llama.cpp's `--kl-divergence` prints, against an oracle.

use crate::model::{load_gguf, load_hf_folder, Llama, LoadOptions, Weights};
use crate::plan::EXIT_HOLDS;
use crate::project::Project;
use crate::run::{oracle_kl, perplexity_with, EvalSlice, KlReport, PplResult};
use crate::runtime::Runtime;
use crate::tokenizer::{GgufTokenizer, HfTokenizer, TextTokenizer};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A model loaded from a path, for the commands that take `--model`.
pub(super) struct Loaded {
    pub(super) llama: Llama,
    pub(super) tokenizer: Box<dyn TextTokenizer>,
    /// Storage type and architecture, in words.
    pub(super) about: String,
}

/// A model's weights and tokenizer read from a path, before any runtime is built from them.
pub(super) struct Read {
    pub(super) weights: Weights,
    pub(super) tokenizer: Box<dyn TextTokenizer>,
    /// Storage type and architecture, in words.
    pub(super) about: String,
}

/// Reads a GGUF file (checked before candle reads it) or a Hugging Face folder; errors
/// name the file.
pub(super) fn load_weights(path: &Path) -> Result<Read> {
    let (weights, tokenizer, kind): (_, Box<dyn TextTokenizer>, String) = if path.is_dir() {
        let w = load_hf_folder(path).with_context(|| format!("{}", path.display()))?;
        let t = HfTokenizer::from_folder(path).with_context(|| format!("{}", path.display()))?;
        (w, Box::new(t), "Hugging Face folder".into())
    } else if path.is_file() {
        crate::gguf_guard::validate_gguf(path)?;
        let (w, info) = load_gguf(path).with_context(|| format!("{}", path.display()))?;
        let t = GgufTokenizer::from_metadata(&info.metadata.clone().into_iter().collect())
            .with_context(|| format!("{}", path.display()))?;
        let kind = format!("GGUF, weights {}", info.predominant_type(&w));
        (w, Box::new(t), kind)
    } else {
        // Neither: say why (missing, or a device, FIFO or socket).
        crate::fsutil::require_regular_file(path)?;
        bail!("{}: no such file or folder", path.display());
    };
    let c = &weights.config;
    crate::tokenizer::check_fits(tokenizer.as_ref(), c.vocab_size)
        .with_context(|| format!("{}", path.display()))?;
    let about = format!(
        "{kind}; {} layers, hidden {}, vocab {}",
        c.num_hidden_layers, c.hidden_size, c.vocab_size
    );
    Ok(Read {
        weights,
        tokenizer,
        about,
    })
}

/// [`load_weights`] on the f32 path, on `runtime`'s device and in its precision (bf16:
/// autocast); errors name the file, or the device when there is none.
pub(super) fn load_model(path: &Path, runtime: Runtime) -> Result<Loaded> {
    // Opened first, so a missing GPU is one line before any file work.
    let device = super::train::open_device(runtime.device)?;
    let Read {
        weights,
        tokenizer,
        about,
    } = load_weights(path)?;
    let mut llama = Llama::load(
        &weights,
        &LoadOptions {
            device,
            ..LoadOptions::default()
        },
    )
    .with_context(|| format!("{}", path.display()))?;
    llama.set_autocast(runtime.precision.autocast());
    Ok(Loaded {
        llama,
        tokenizer,
        about,
    })
}

/// The text to score: a file, or the `configs/eval.toml` slice (what oracles score).
pub(super) fn read_text(project: &Project, file: Option<&Path>) -> Result<(String, String)> {
    match file {
        Some(f) => Ok((
            crate::fsutil::read_text_bounded(f, crate::run::MAX_PPL_TEXT_BYTES)?,
            f.display().to_string(),
        )),
        None => {
            let eval = project.path(crate::project::EVAL_FILE);
            let s = EvalSlice::load(&project.root, &eval)?;
            Ok((
                s.text,
                format!(
                    "{} slice of {}",
                    crate::project::EVAL_FILE,
                    s.corpus.display()
                ),
            ))
        }
    }
}

/// A progress bar over chunks, showing the running perplexity.
pub(super) fn chunk_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} chunks {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `groundtruth ppl`.
pub(super) fn run(project: &Project, args: &super::PplArgs) -> Result<u8> {
    let runtime = args.runtime.runtime();
    let model = &super::commands::model_path(&args.model)?;
    let (text, base, ctx, chunks, json) = (
        args.text.as_deref(),
        args.base.as_deref(),
        args.ctx,
        args.chunks,
        args.json,
    );
    let oracle = base
        .map(|b| crate::oracle::read(b).with_context(|| format!("--base {}", b.display())))
        .transpose()?;
    let m = load_model(model, runtime)?;
    if let (Some(o), Some(b)) = (&oracle, base) {
        crate::oracle::check_for(o, b, &crate::oracle::ModelLimits::of(m.llama.config()))
            .with_context(|| format!("--base {}", b.display()))?;
    }
    let (text, source) = read_text(project, text)?;
    let add_bos = m.tokenizer.add_bos();
    let r = perplexity_shown(&m, &text, ctx, chunks)
        .with_context(|| format!("{}: perplexity of {source}", model.display()))?;
    let kl = oracle
        .as_ref()
        .map(|o| oracle_kl(&m.llama, m.tokenizer.as_ref(), o))
        .transpose()
        .with_context(|| {
            format!(
                "{}: teacher-forced run over the oracle's cases",
                model.display()
            )
        })?;
    let vs = oracle
        .as_ref()
        .and_then(|o| o.perplexity.as_ref())
        .map(|p| OraclePpl::of(p, &r));
    if json {
        let doc = serde_json::json!({
            "model": model.display().to_string(),
            "weights": m.about,
            "path": m.llama.numerical_path(),
            "runtime": runtime.to_string(),
            "text": source,
            "add_bos": add_bos,
            "result": r,
            "oracle_perplexity": vs,
            "kl": kl,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(EXIT_HOLDS);
    }
    outln!("model:  {} ({})", model.display(), m.about);
    outln!("path:   {}", m.llama.numerical_path());
    out!("{}", describe(&r, &source, add_bos));
    if let Some(v) = &vs {
        outln!("{v}");
    }
    if let (Some(k), Some(b)) = (&kl, base) {
        outln!("\nagainst {} (oracle top-k plus one bucket for the rest, {} teacher-forced positions):", b.display(), k.n);
        out!("{}", kl_table(k));
    }
    Ok(EXIT_HOLDS)
}

/// [`perplexity_with`] with a progress bar of the contexts scored.
pub(super) fn perplexity_shown(
    m: &Loaded,
    text: &str,
    ctx: usize,
    chunks: Option<usize>,
) -> Result<PplResult, crate::run::PplError> {
    let bar = chunk_bar();
    let r = perplexity_with(
        &m.llama,
        m.tokenizer.as_ref(),
        text,
        ctx,
        chunks,
        &mut |c, n, ppl| {
            bar.set_length(n as u64);
            bar.set_position(c as u64);
            bar.set_message(format!("ppl {ppl:.4}"));
        },
    );
    bar.finish_and_clear();
    r
}

/// The result in llama.cpp's words.
pub(super) fn describe(r: &PplResult, source: &str, add_bos: bool) -> String {
    format!(
        "text:   {source}: {} tokens (sha256 {}), add_bos {add_bos}\nscored: ctx {} × {} chunks, second half of each: {} tokens\nPPL = {:.4} (mean NLL {:.6})\nspeed:  {} tokens in {:.2} s = {:.1} tokens/s\n",
        r.n_text_tokens, r.text_sha256, r.ctx, r.chunks, r.n_scored, r.ppl, r.nll_mean, r.ctx * r.chunks, r.seconds, r.tokens_per_s
    )
}

/// The run next to the oracle's perplexity record, when they scored the same thing.
#[derive(Debug, serde::Serialize)]
struct OraclePpl {
    ppl: f64,
    n_scored: usize,
    /// Same text, ctx and chunks: the two numbers are comparable.
    comparable: bool,
    rel_diff: f64,
}

impl OraclePpl {
    fn of(p: &crate::oracle::Perplexity, r: &PplResult) -> OraclePpl {
        let comparable = p.text_sha256 == r.text_sha256
            && p.ctx == r.ctx
            && p.chunks == r.chunks
            && p.n_scored == r.n_scored;
        OraclePpl {
            ppl: p.ppl,
            n_scored: p.n_scored,
            comparable,
            rel_diff: (r.ppl - p.ppl).abs() / p.ppl,
        }
    }
}

impl std::fmt::Display for OraclePpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.comparable {
            true => write!(
                f,
                "oracle: PPL = {:.4} over the same {} tokens; |Δ|/PPL = {:.5}",
                self.ppl, self.n_scored, self.rel_diff
            ),
            false => write!(
                f,
                "oracle: PPL = {:.4} over {} tokens of another text or chunking: not comparable",
                self.ppl, self.n_scored
            ),
        }
    }
}

/// llama.cpp's `--kl-divergence` summary lines.
fn kl_table(k: &KlReport) -> String {
    let mut out = format!("Mean    KLD: {:10.6}\n", k.kld_mean);
    for (name, v) in &k.kld_percentiles {
        out.push_str(&format!(
            "{:<7} KLD: {v:10.6}\n",
            if name == "max" {
                "Maximum"
            } else if name == "min" {
                "Minimum"
            } else {
                name.as_str()
            }
        ));
    }
    out.push_str(&format!(
        "Same top p: {:6.3} %\nRMS Δp    : {:6.3} %\n",
        k.same_top_p, k.rms_dp
    ));
    out
}
