//! The degradation study's outputs: a Markdown table of SF, SC, theater and their gap per
//! rung × variant, and two SVG plots (SF and SC against scale; SF and SC against the
//! variant: quantization and corruption). Plain text and SVG with fixed formatting, so the
//! same report gives the same bytes.

use super::report::{GroupMetrics, Rated};

/// One rung × variant of the study.
#[derive(Debug, Clone)]
pub struct StudyCell<'a> {
    /// Ladder rung.
    pub rung: &'a str,
    /// Its parameter count after SFT.
    pub params: usize,
    /// The variant's name as given (`--variants`).
    pub variant: &'a str,
    /// The metrics of its records.
    pub metrics: &'a GroupMetrics,
}

fn rated(r: &Rated) -> String {
    format!("{:.3} [{:.3}, {:.3}]", r.value, r.ci[0], r.ci[1])
}

/// The table (Markdown), one row per cell in the order given.
pub fn study_table(cells: &[StudyCell]) -> String {
    let mut s = String::from("| rung | parameters | variant | n | SF | SC | theater | SF − SC | AUROC(entropy) |\n|---|---|---|---|---|---|---|---|---|\n");
    for c in cells {
        let g = c.metrics;
        let auroc = g
            .auroc_mean_entropy
            .value
            .map_or("-".to_string(), |v| format!("{v:.3}"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {auroc} |\n",
            c.rung,
            c.params,
            c.variant,
            g.n,
            rated(&g.sf_rate),
            rated(&g.sc_rate),
            rated(&g.theater_rate),
            rated(&g.sf_sc_gap)
        ));
    }
    s
}

const W: f64 = 640.0;
const H: f64 = 360.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// SF and SC colours.
const SERIES: [(&str, &str); 2] = [("SF", "#1f77b4"), ("SC", "#d62728")];

fn y_of(v: f64) -> f64 {
    TOP + (1.0 - v.clamp(0.0, 1.0)) * (H - TOP - BOTTOM)
}

/// Frame, title and the rate axis (0, 0.5, 1).
fn frame(title: &str) -> String {
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n");
    s.push_str(&format!(
        "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        W / 2.0,
        escape(title)
    ));
    for v in [0.0, 0.5, 1.0] {
        let y = y_of(v);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n",
            W - RIGHT
        ));
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text>\n",
            LEFT - 6.0,
            y + 4.0
        ));
    }
    for (i, (name, colour)) in SERIES.iter().enumerate() {
        let x = W - RIGHT - 120.0 + 60.0 * i as f64;
        s.push_str(&format!("<rect x=\"{x:.1}\" y=\"28\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"37\">{name}</text>\n", x + 14.0));
    }
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A point with its interval as a whisker.
fn point(x: f64, r: &Rated, colour: &str) -> String {
    format!(
        "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\"/><circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/>\n",
        y_of(r.ci[0]),
        y_of(r.ci[1]),
        y_of(r.value)
    )
}

/// SF and SC of `variant` against parameter count (log scale), one point per rung.
pub fn svg_vs_scale(cells: &[StudyCell], variant: &str) -> String {
    let mut pts: Vec<&StudyCell> = cells.iter().filter(|c| c.variant == variant).collect();
    pts.sort_by_key(|c| c.params);
    let mut s = frame(&format!(
        "SF and SC against scale ({variant}; 95% intervals)"
    ));
    let logs: Vec<f64> = pts
        .iter()
        .map(|c| (c.params.max(1) as f64).log10())
        .collect();
    let (lo, hi) = logs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x_of = |l: f64| LEFT + 30.0 + (l - lo) / span * (W - LEFT - RIGHT - 60.0);
    for (k, (_, colour)) in SERIES.iter().enumerate() {
        let rate = |c: &StudyCell| {
            if k == 0 {
                c.metrics.sf_rate
            } else {
                c.metrics.sc_rate
            }
        };
        let path: Vec<String> = pts
            .iter()
            .zip(&logs)
            .map(|(c, &l)| format!("{:.1},{:.1}", x_of(l), y_of(rate(c).value)))
            .collect();
        s.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\"/>\n",
            path.join(" ")
        ));
        for (c, &l) in pts.iter().zip(&logs) {
            s.push_str(&point(x_of(l), &rate(c), colour));
        }
    }
    for (c, &l) in pts.iter().zip(&logs) {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} ({:.2}M)</text>\n",
            x_of(l),
            H - BOTTOM + 20.0,
            escape(c.rung),
            c.params as f64 / 1e6
        ));
    }
    s + "</svg>\n"
}

/// SF and SC per variant (x), one panel column per rung in the order given.
pub fn svg_vs_variant(cells: &[StudyCell]) -> String {
    let mut s = frame("SF and SC against quantization and corruption (95% intervals)");
    let step = (W - LEFT - RIGHT) / cells.len().max(1) as f64;
    for (i, c) in cells.iter().enumerate() {
        let x = LEFT + step * (i as f64 + 0.5);
        s.push_str(&point(x - 6.0, &c.metrics.sf_rate, SERIES[0].1));
        s.push_str(&point(x + 6.0, &c.metrics.sc_rate, SERIES[1].1));
        s.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            H - BOTTOM + 20.0,
            escape(c.variant)
        ));
        s.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666\">{}</text>\n",
            H - BOTTOM + 36.0,
            escape(c.rung)
        ));
    }
    s + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{parse_records, report, MetricsConfig};

    #[test]
    fn table_and_plots_show_every_cell_and_are_deterministic() {
        let p = crate::project::Project::from_manifest()
            .root
            .join("tests/fixtures/metrics/handmade.jsonl");
        let records = parse_records(&std::fs::read(&p).unwrap(), &p).unwrap();
        let rep = report(&records, "x", &MetricsConfig::default());
        let cells: Vec<StudyCell> = [
            ("hand", "base", 1000),
            ("hand", "q4_0", 1000),
            ("other", "base", 10_000),
        ]
        .iter()
        .map(|&(rung, variant, params)| StudyCell {
            rung,
            params,
            variant,
            metrics: rep.group(rung, variant).unwrap(),
        })
        .collect();
        let t = study_table(&cells);
        assert_eq!(t.lines().count(), 5, "{t}");
        assert!(t.contains("| hand | 1000 | base | 15 | 0.467 ["), "{t}");
        let scale = svg_vs_scale(&cells, "base");
        // Two rungs of the base variant: two points per series, each with its whisker.
        assert_eq!(scale.matches("<circle").count(), 4, "{scale}");
        assert!(scale.contains("hand (0.00M)") && scale.contains("other (0.01M)"));
        let by_variant = svg_vs_variant(&cells);
        assert_eq!(by_variant.matches("<circle").count(), 6);
        assert_eq!(scale, svg_vs_scale(&cells, "base"));
    }
}
