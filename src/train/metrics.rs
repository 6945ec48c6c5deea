//! Per-step training metrics, written as `metrics.csv` and drawn as `loss.svg` (train loss
//! per step, validation loss where evaluated, and the two reference levels: `ln(vocab)`,
//! the loss of a uniform guess, and the unigram entropy of the training text).

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRow {
    /// Step (1-based).
    pub step: u64,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss of the step's batch, nats.
    pub train_loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Mean validation loss after the step, where evaluated.
    pub val_loss: Option<f64>,
    /// Tokens seen so far.
    pub tokens: u64,
    /// Seconds the step took (forward, backward, update; evaluation excluded).
    pub seconds: f64,
}

impl MetricsRow {
    /// Training throughput of this step.
    pub fn tokens_per_second(&self, tokens_per_step: u64) -> f64 {
        tokens_per_step as f64 / self.seconds.max(1e-9)
    }
}

/// `metrics.csv`: one line per step, validation loss empty where not evaluated. A step's
/// throughput is its own tokens (the growth of the running count; SFT batches differ in
/// length) over its seconds.
pub fn metrics_csv(rows: &[MetricsRow]) -> String {
    let mut s = String::from(
        "step,lr,train_loss,val_loss,grad_norm,tokens,step_seconds,tokens_per_second\n",
    );
    let mut before = 0;
    for r in rows {
        let tokens_per_step = r.tokens - before;
        before = r.tokens;
        let val = r.val_loss.map(|v| format!("{v:.6}")).unwrap_or_default();
        s.push_str(&format!(
            "{},{:.6e},{:.6},{val},{:.6},{},{:.4},{:.1}\n",
            r.step,
            r.lr,
            r.train_loss,
            r.grad_norm,
            r.tokens,
            r.seconds,
            r.tokens_per_second(tokens_per_step)
        ));
    }
    s
}

/// The plot's loss axis: from 90% of the lowest finite loss or reference line (at least
/// 0) to 105% of the highest finite training loss or `ln_vocab`.
fn loss_range(rows: &[MetricsRow], ln_vocab: f64, unigram: f64) -> (f64, f64) {
    let top = rows
        .iter()
        .map(|r| r.train_loss)
        .chain([ln_vocab])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.05;
    let bottom = rows
        .iter()
        .flat_map(|r| [Some(r.train_loss), r.val_loss])
        .flatten()
        .chain([unigram])
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let bottom = if bottom.is_finite() {
        (bottom * 0.9).max(0.0)
    } else {
        0.0
    };
    (bottom, top)
}

/// `loss.svg`: loss curves with the `ln(vocab)` and unigram-entropy reference lines.
pub fn loss_svg(
    title: &str,
    rows: &[MetricsRow],
    ln_vocab: f64,
    unigram: f64,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 540)).into_drawing_area();
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let last = rows.last().map_or(1, |r| r.step).max(1);
        let (bottom, top) = loss_range(rows, ln_vocab, unigram);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0u64..last, bottom..top.max(bottom + 1e-3))
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss (nats/token)")
            .draw()
            .map_err(|x| e(&x))?;
        let train: Vec<(u64, f64)> = rows.iter().map(|r| (r.step, r.train_loss)).collect();
        chart
            .draw_series(LineSeries::new(train, &BLUE))
            .map_err(|x| e(&x))?
            .label("train (batch)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        let val: Vec<(u64, f64)> = rows
            .iter()
            .filter_map(|r| r.val_loss.map(|v| (r.step, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(val.clone(), &RED))
            .map_err(|x| e(&x))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(|x| e(&x))?;
        for (level, label, color) in [
            (ln_vocab, "ln(vocab)", BLACK),
            (unigram, "unigram entropy (train)", GREEN),
        ] {
            chart
                .draw_series(LineSeries::new(
                    vec![(0, level), (last, level)],
                    color.stroke_width(1),
                ))
                .map_err(|x| e(&x))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(out)
}

/// A finished run's reports in `out`: `metrics.csv`, `loss.svg` (titled `title`, with the
/// uniform `ln_vocab` and unigram `unigram` references) and the summary as pretty JSON in
/// `summary_file`, written last: its presence marks a finished run.
pub fn write_run_reports<S: Serialize>(
    out: &std::path::Path,
    rows: &[MetricsRow],
    title: &str,
    (ln_vocab, unigram): (f64, f64),
    summary_file: &str,
    summary: &S,
) -> Result<(), super::error::TrainError> {
    use super::error::TrainError;
    crate::fsutil::atomic_write(&out.join("metrics.csv"), metrics_csv(rows).as_bytes())?;
    let svg = loss_svg(title, rows, ln_vocab, unigram)
        .map_err(|msg| TrainError::invalid(out.join("loss.svg"), msg))?;
    crate::fsutil::atomic_write(&out.join("loss.svg"), svg.as_bytes())?;
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| TrainError::invalid(out.join(summary_file), e.to_string()))?;
    crate::fsutil::atomic_write(&out.join(summary_file), json.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<MetricsRow> {
        (1..=5)
            .map(|s| MetricsRow {
                step: s,
                lr: 1e-3,
                train_loss: 10.0 - s as f64,
                grad_norm: 1.0,
                val_loss: (s % 2 == 0).then_some(9.0 - s as f64),
                tokens: s * 64,
                seconds: 0.5,
            })
            .collect()
    }

    #[test]
    fn csv_has_a_line_per_step_and_blank_unevaluated_validation() {
        let csv = metrics_csv(&rows());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[1], "1,1.000000e-3,9.000000,,1.000000,64,0.5000,128.0");
        assert!(lines[2].contains(",7.000000,"), "{}", lines[2]);
    }

    #[test]
    fn svg_is_deterministic_and_has_the_curves() {
        let a = loss_svg("t", &rows(), 9.68, 6.1).unwrap();
        assert_eq!(a, loss_svg("t", &rows(), 9.68, 6.1).unwrap());
        assert!(
            a.starts_with("<svg") && a.contains("validation") && a.contains("unigram"),
            "{}",
            &a[..200]
        );
    }
}
