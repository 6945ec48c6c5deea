//! The sweep's plot ([`svg`]): degradation against flip rate, both axes logarithmic, one
//! line per bit class through the median over seeds, and the seeds' min–max as a band.

use super::table::{Row, Spread};
use crate::transform::flip::BitClass;

/// What the y axis shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// |Perplexity ratio − 1|: the relative change (a few flips can lower perplexity by
    /// chance, so the magnitude is drawn; the CSV keeps the sign).
    PplIncrease,
    /// Mean KL divergence from the clean model, nats.
    KlMean,
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Metric::PplIncrease => "|PPL ratio − 1|",
            Metric::KlMean => "mean KL (nats)",
        }
    }

    fn spread(self, r: &Row) -> Spread {
        let s = match self {
            Metric::PplIncrease => r.ppl_ratio,
            Metric::KlMean => r.kl_mean,
        };
        let shift = |v: f64| match self {
            Metric::PplIncrease => (v - 1.0).abs(),
            Metric::KlMean => v,
        };
        let (a, b) = (shift(s.min), shift(s.max));
        // Seeds on both sides of an unchanged perplexity: the band reaches zero change.
        let crosses = self == Metric::PplIncrease && s.min <= 1.0 && s.max >= 1.0;
        Spread {
            median: shift(s.median),
            min: if crosses { 0.0 } else { a.min(b) },
            max: a.max(b),
        }
    }
}

/// Values at or below this are drawn on the floor (a log axis has no zero).
const FLOOR: f64 = 1e-14;
/// Infinite values (a model that emits NaN or infinity) are drawn on the ceiling.
const CEILING: f64 = 1e3;

fn clip(v: f64) -> f64 {
    match v {
        v if v.is_nan() || v >= CEILING => CEILING,
        v if v <= FLOOR => FLOOR,
        v => v,
    }
}

/// The plot as SVG text, or `None` when there is nothing to draw.
pub fn svg(title: &str, rows: &[Row], metric: Metric) -> Option<String> {
    use crate::chart::{Series, SeriesChart};
    use plotters::prelude::*;
    let mut classes: Vec<BitClass> = Vec::new();
    for r in rows {
        if !classes.contains(&r.bits) {
            classes.push(r.bits);
        }
    }
    let rates = rows.iter().map(|r| r.rate as f64);
    let (xlo, xhi) = rates.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if classes.is_empty() || xlo <= 0.0 {
        return None;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 420)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (xlo / 1.5..xhi * 1.5).log_scale(),
                (FLOOR..CEILING * 2.0).log_scale(),
            )
            .ok()?;
        chart
            .configure_mesh()
            .x_desc("flips per billion weights")
            .y_desc(format!(
                "{} (median, seed min–max band; floor {FLOOR:e}, ceiling = non-finite)",
                metric.label()
            ))
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .draw()
            .ok()?;
        for (k, bits) in classes.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let mine: Vec<(f64, Spread)> = rows
                .iter()
                .filter(|r| r.bits == *bits)
                .map(|r| (r.rate as f64, metric.spread(r)))
                .collect();
            let mut band: Vec<(f64, f64)> = mine.iter().map(|(x, s)| (*x, clip(s.max))).collect();
            band.extend(mine.iter().rev().map(|(x, s)| (*x, clip(s.min))));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.15).filled(),
                )))
                .ok()?;
            chart.line_with_markers(Series {
                name: bits.name(),
                points: mine.iter().map(|(x, s)| (*x, clip(s.median))).collect(),
                color,
                radius: 3,
            })?;
        }
        chart.draw_legend(SeriesLabelPosition::UpperLeft)?;
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_has_one_line_per_class_and_clips_infinities() {
        let row = |bits, rate, m: f64| Row {
            bits,
            rate,
            seeds: 2,
            flips: 1,
            ppl_ratio: Spread {
                median: 1.0 + m,
                min: 1.0,
                max: f64::INFINITY,
            },
            kl_mean: Spread {
                median: m,
                min: m / 2.0,
                max: m * 2.0,
            },
            kl_p99: Spread {
                median: m,
                min: m,
                max: m,
            },
            top1: Spread {
                median: 1.0,
                min: 1.0,
                max: 1.0,
            },
        };
        let rows = vec![
            row(BitClass::Sign, 10, 1e-4),
            row(BitClass::Sign, 1000, 1e-2),
            row(BitClass::ExponentMsb, 10, 0.5),
            row(BitClass::ExponentMsb, 1000, 3.0),
        ];
        for m in [Metric::PplIncrease, Metric::KlMean] {
            let s = svg("t", &rows, m).unwrap();
            assert!(
                s.starts_with("<svg") && s.contains("exponent-msb") && s.contains("sign"),
                "{m:?}"
            );
        }
        assert_eq!(svg("t", &[], Metric::KlMean), None);
        assert_eq!(
            (clip(f64::INFINITY), clip(0.0), clip(0.5)),
            (CEILING, FLOOR, 0.5)
        );
    }
}
