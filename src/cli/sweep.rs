//! `sweep corrupt`: a severity sweep of seeded bit flips, written as CSV and SVG plots.

use super::SweepAction;
use crate::plan::EXIT_HOLDS;
use crate::project::Project;
use crate::sweep::{points_csv, rows_csv, run, summarize, svg, Metric, Reference, Row, SweepSpec};
use crate::transform::flip::Severity;
use crate::variant::{DType, Variant};
use anyhow::{bail, Context, Result};

fn parse_rates(rates: &[String]) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for r in rates {
        out.push(
            Severity::parse_rate(r)
                .map_err(anyhow::Error::msg)
                .context("flag --rates")?,
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn storage_type(s: Option<&str>) -> Result<Option<DType>> {
    let Some(s) = s else { return Ok(None) };
    match Variant::parse(s)
        .map_err(anyhow::Error::msg)
        .context("flag --storage")?
    {
        Variant::Convert(d) => Ok(Some(d)),
        Variant::Base | Variant::Corrupt(..) | Variant::Flip { .. } => {
            bail!("flag --storage: '{s}' is not a storage type")
        }
    }
}

fn print_rows(rows: &[Row]) -> Result<()> {
    outln!(
        "{:<13} {:>10} {:>6}  {:>22}  {:>22}  {:>10}  {:>8}",
        "bits",
        "rate/1e9",
        "flips",
        "PPL ratio med [min,max]",
        "mean KL med [min,max]",
        "p99 KL",
        "top-1"
    );
    for r in rows {
        outln!(
            "{:<13} {:>10} {:>6}  {:>8.4} [{:.3},{:.3}]  {:>8.2e} [{:.1e},{:.1e}]  {:>10.2e}  {:>8.4}",
            r.bits.name(),
            r.rate,
            r.flips,
            r.ppl_ratio.median,
            r.ppl_ratio.min,
            r.ppl_ratio.max,
            r.kl_mean.median,
            r.kl_mean.min,
            r.kl_mean.max,
            r.kl_p99.median,
            r.top1.median
        );
    }
    Ok(())
}

pub(super) fn sweep(project: &Project, action: SweepAction) -> Result<u8> {
    let SweepAction::Corrupt {
        model,
        rates,
        bits,
        region,
        seeds,
        storage,
        chunks,
        out,
    } = action;
    let spec = SweepSpec {
        bits,
        region,
        rates: parse_rates(&rates)?,
        seeds,
    };
    let storage = storage_type(storage.as_deref())?;
    let (base, _) = super::quant::resolve(project, &model)?;
    let parent = match storage {
        Some(d) => {
            crate::transform::convert(&base.weights, d)
                .with_context(|| format!("{model} {}", d.name()))?
                .0
        }
        None => base.weights.clone(),
    };
    let slice =
        crate::run::EvalSlice::load(&project.root, &project.path(crate::project::EVAL_FILE))?;
    let reference = Reference::new(&parent, base.tokenizer.as_ref(), &slice, chunks)?;
    let total = spec.bits.len() as u64 * spec.rates.len() as u64 * spec.seeds;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} points, {elapsed} ({eta} left) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let points = run(&parent, &reference, &spec, |p| {
        bar.set_message(format!("{} at {}", p.bits, p.rate));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let rows = summarize(&points);
    let name = base.model.clone()
        + &storage
            .map(|d| format!("-{}", d.name()))
            .unwrap_or_default();
    let dir = out.unwrap_or_else(|| project.out_dir().join("sweeps").join(&name));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: create", dir.display()))?;
    crate::fsutil::atomic_write(&dir.join("points.csv"), points_csv(&points).as_bytes())?;
    crate::fsutil::atomic_write(&dir.join("summary.csv"), rows_csv(&rows).as_bytes())?;
    let what = format!("{name}: seeded flips in region {region}, {seeds} seed(s) per point");
    for (file, metric) in [
        ("ppl_ratio.svg", Metric::PplIncrease),
        ("kl_mean.svg", Metric::KlMean),
    ] {
        if let Some(text) = svg(&what, &rows, metric) {
            crate::fsutil::atomic_write(&dir.join(file), text.as_bytes())?;
        }
    }
    outln!("{name}: clean perplexity {:.4} over {} scored positions ({} window(s) of configs/eval.toml's slice)", reference.ppl, reference.positions(), chunks);
    print_rows(&rows)?;
    outln!(
        "wrote {} (points.csv, summary.csv, ppl_ratio.svg, kl_mean.svg)",
        dir.display()
    );
    Ok(EXIT_HOLDS)
}
