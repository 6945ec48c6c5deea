//! `report.html`: the run on one self-contained static page (no script, no network: a
//! Content-Security-Policy forbids every fetch) — the summary matrix, the drift matrix as
//! a heat map, the run's plots as inline SVG (the quantization sweep, each trained
//! model's loss curves), and every falsified case with its evidence and ticket.

use super::drift::{drift_table, fmt_cell, Cell, LLAMA_CPP_L3_8B};
use super::junit::xml_escape as esc;
use super::matrix::{cell_text, summary_table};
use super::record::{CaseRecord, Report};
use super::ticket::{fingerprint, ticket_file_name, ticket_markdown};
use crate::outcome::{fmt_num, Outcome};
use std::fmt::Write;
use std::path::Path;

/// A plot of the run: a title and an SVG document.
pub struct Plot {
    /// What it shows.
    pub title: String,
    /// The SVG, inlined as it is.
    pub svg: String,
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#eee}td.pass{background:#c8efc8}td.fail{background:#f6b8b8}td.skip{background:#e4e4e4}td.error{background:#f7d79b}\
td.heat{color:#000;white-space:nowrap;font-size:90%}#summary-matrix td{white-space:nowrap}div.wide{overflow-x:auto}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}\
section.failed{border-left:4px solid #c33;padding-left:1em;margin:1.5em 0}.plot svg{max-width:100%;height:auto}code{font-size:90%}";

/// The page.
pub fn report_html(report: &Report, plots: &[Plot]) -> String {
    let (p, f, s, e) = report.counts();
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    let _ = writeln!(
        h,
        "<title>groundtruth — suite {}</title><style>{STYLE}</style></head><body>",
        esc(&report.suite)
    );
    let _ = writeln!(
        h,
        "<h1>groundtruth — suite <code>{}</code></h1>",
        esc(&report.suite)
    );
    let partial = match report.partial {
        true => format!(
            " — <strong>partial</strong>: {} of the plan's {} cases",
            report.cases.len(),
            report.planned
        ),
        false => String::new(),
    };
    let _ = writeln!(h, "<p id=\"counts\">{p} passed, {f} falsified, {s} skipped, {e} errors ({} cases{partial}); seed {}</p>", report.cases.len(), report.seed);
    summary_section(&mut h, report);
    drift_section(&mut h, report);
    if !plots.is_empty() {
        h.push_str("<h2>Plots</h2>\n");
        for plot in plots {
            let _ = writeln!(
                h,
                "<figure class=\"plot\">{}<figcaption>{}</figcaption></figure>",
                strip_xml_declaration(&plot.svg),
                esc(&plot.title)
            );
        }
    }
    failed_section(&mut h, report);
    not_judged_section(&mut h, report);
    let env = &report.environment;
    let _ = writeln!(
        h,
        "<h2>Environment</h2><p>groundtruth {} · {} · {} · {} — {}, {} threads</p>",
        esc(&env.groundtruth),
        esc(&env.crates),
        esc(&env.rustc),
        esc(&env.platform),
        esc(&env.cpu),
        env.threads
    );
    h.push_str("</body></html>\n");
    h
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => "",
    }
}

fn summary_section(h: &mut String, report: &Report) {
    let t = summary_table(report);
    h.push_str("<h2>Summary matrix</h2>\n<p>Cases per model and variant: ✓ pass / ✗ falsified, then skips and errors.</p>\n<div class=\"wide\"><table id=\"summary-matrix\"><tr><th>model</th>");
    for v in &t.variants {
        let _ = write!(h, "<th>{}</th>", esc(v));
    }
    h.push_str("</tr>\n");
    for m in &t.models {
        let _ = write!(h, "<tr><th>{}</th>", esc(m));
        for v in &t.variants {
            match t.cells.get(&(*m, *v)) {
                None => h.push_str("<td></td>"),
                Some(counts) => {
                    let [p, f, _, e] = counts;
                    let class = match (f, e, p) {
                        (1.., _, _) => "fail",
                        (0, 1.., _) => "error",
                        (0, 0, 1..) => "pass",
                        (0, 0, 0) => "skip",
                    };
                    let _ = write!(h, "<td class=\"{class}\">{}</td>", cell_text(counts));
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table></div>\n");
}

/// Heat-map colour of a mean KL divergence: green at 1e-6 nats and below, through yellow,
/// to red at 1 nat and above (log scale).
fn heat(kl: Option<f64>) -> String {
    match kl {
        None => "#e4e4e4".into(),
        Some(v) => {
            let t = ((v.max(1e-12).log10() + 6.0) / 6.0).clamp(0.0, 1.0);
            format!("hsl({:.0},70%,72%)", 120.0 * (1.0 - t))
        }
    }
}

/// A heat-map cell: the mean KL on top, same top-1 and perplexity ratio below (the
/// Markdown cell's three figures, one per line).
fn heat_text(c: &Cell) -> String {
    let text = fmt_cell(c);
    let mut parts = text.split(" / ");
    let kl = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    format!("{}<br><small>{}</small>", esc(kl), esc(&rest.join(" · ")))
}

fn drift_section(h: &mut String, report: &Report) {
    let Some(t) = drift_table(report) else { return };
    h.push_str(
        "<h2>Drift matrix</h2>\n<p>Each variant against its parent on the same runtime path: mean KL divergence (nats) / same top-1 / \
         perplexity ratio; colour: mean KL on a log scale, green ≤ 1e-6, red ≥ 1. The last row is llama.cpp's published Llama-3-8B figures.</p>\n\
         <div class=\"wide\"><table id=\"drift-matrix\"><tr><th>model</th>",
    );
    for c in &t.columns {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    let row = |h: &mut String, name: &str, cell: &dyn Fn(&str) -> Option<Cell>| {
        let _ = write!(h, "<tr><th>{}</th>", esc(name));
        for c in &t.columns {
            match cell(c) {
                Some(cell) => {
                    let _ = write!(
                        h,
                        "<td class=\"heat\" style=\"background:{}\">{}</td>",
                        heat(cell.kl),
                        heat_text(&cell)
                    );
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>\n");
    };
    for m in &t.models {
        row(h, m, &|c| t.cells.get(&(*m, c)).copied());
    }
    row(h, "llama.cpp Llama-3-8B (published)", &|c| {
        LLAMA_CPP_L3_8B
            .iter()
            .find(|(n, ..)| *n == c)
            .map(|(_, kl, top1, ppl)| Cell {
                kl: Some(*kl),
                top1: *top1,
                ppl: Some(*ppl),
            })
    });
    h.push_str("</table></div>\n");
}

fn failed_section(h: &mut String, report: &Report) {
    let failed: Vec<&CaseRecord> = report
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
        .collect();
    let _ = writeln!(h, "<h2>Falsified cases ({})</h2>", failed.len());
    if failed.is_empty() {
        h.push_str("<p>None: every judged claim behaved as registered.</p>\n");
    }
    for c in failed {
        let Outcome::Fail(ev) = &c.outcome else {
            continue;
        };
        let _ = writeln!(
            h,
            "<section class=\"failed\" id=\"{}\"><h3><code>{}</code></h3>",
            esc(&ticket_file_name(&c.name)),
            esc(&c.name)
        );
        let _ = writeln!(
            h,
            "<blockquote>{} <em>({}, {})</em></blockquote>",
            esc(&c.statement),
            esc(&c.claim_id),
            esc(&c.registered_at)
        );
        h.push_str("<table>");
        let mut row = |k: &str, v: String| {
            let _ = write!(h, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
        };
        row("basis", esc(c.basis.describe()));
        row(
            "falsification criterion",
            format!("<code>{}</code>", esc(&c.criterion)),
        );
        row(
            "observed",
            format!("<strong>{}</strong>", esc(&ev.summary())),
        );
        row("numerical path", esc(&ev.numerical_path));
        for (name, v) in &ev.also {
            row(name, esc(&fmt_num(*v)));
        }
        row(
            "fingerprint",
            format!("<code>{}</code>", esc(&fingerprint(c).unwrap_or_default())),
        );
        row("reproduce", format!("<code>{}</code>", esc(&c.reproduce)));
        h.push_str("</table>\n");
        if let Some(md) = ticket_markdown(c, &report.environment) {
            let _ = writeln!(h, "<details open><summary>ticket <code>tickets/{}</code></summary><pre>{}</pre></details>", esc(&ticket_file_name(&c.name)), esc(&md));
        }
        h.push_str("</section>\n");
    }
}

fn not_judged_section(h: &mut String, report: &Report) {
    let rows: Vec<String> = report
        .cases
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Skip(r) => Some(format!(
                "<tr><td class=\"skip\">skip</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&c.name),
                esc(&r.to_string())
            )),
            Outcome::Error { message } => Some(format!(
                "<tr><td class=\"error\">error</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&c.name),
                esc(message)
            )),
            Outcome::Pass(_) | Outcome::Fail(_) => None,
        })
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(h, "<h2>Not judged ({})</h2>\n<table><tr><th></th><th>case</th><th>reason</th></tr>\n{}\n</table>", rows.len(), rows.join("\n"));
    }
}

/// The run's plots: the quantization sweep (mean KL per storage type, per model) when the
/// run measured drift, and the loss curves of the trained models it used (the newest
/// `loss.svg` of each under `out/models/trained/<model>-*`).
pub fn run_plots(out: &Path, report: &Report) -> Vec<Plot> {
    let mut plots = Vec::new();
    if let Some(svg) = sweep_svg(report) {
        plots.push(Plot { title: "Quantization sweep: mean KL divergence from the parent per storage type (log scale)".into(), svg });
    }
    let mut models: Vec<&str> = report.cases.iter().map(|c| c.model.as_str()).collect();
    models.sort();
    models.dedup();
    let trained = out.join("models").join("trained");
    let dirs: Vec<std::path::PathBuf> = std::fs::read_dir(&trained)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    for m in models {
        let newest = dirs
            .iter()
            .filter(|d| {
                d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.strip_prefix(m).is_some_and(|rest| rest.starts_with('-')))
            })
            .filter_map(|d| {
                Some((
                    std::fs::metadata(d.join("loss.svg"))
                        .ok()?
                        .modified()
                        .ok()?,
                    d.join("loss.svg"),
                ))
            })
            .max();
        if let Some(svg) = newest.and_then(|(_, p)| crate::fsutil::read_text(&p).ok()) {
            plots.push(Plot {
                title: format!("Training loss of {m}"),
                svg,
            });
        }
    }
    plots
}

/// Mean KL per storage type (most bits first), one line per model, log y axis.
fn sweep_svg(report: &Report) -> Option<String> {
    use crate::chart::{Series, SeriesChart};
    use plotters::prelude::*;
    let t = drift_table(report)?;
    let series: Vec<(&str, Vec<(usize, f64)>)> = t
        .models
        .iter()
        .map(|m| {
            (
                *m,
                t.columns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        t.cells
                            .get(&(*m, *c))
                            .and_then(|cell| cell.kl)
                            .filter(|v| *v > 0.0)
                            .map(|v| (i, v))
                    })
                    .collect(),
            )
        })
        .filter(|(_, pts): &(&str, Vec<(usize, f64)>)| !pts.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    let all = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 380)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let n = t.columns.len();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo / 3.0..hi * 3.0).log_scale())
            .ok()?;
        let cols = t.columns.clone();
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                cols.get(x.round().max(0.0) as usize)
                    .filter(|_| (x - x.round()).abs() < 1e-6)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            })
            .y_desc("mean KL (nats)")
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .draw()
            .ok()?;
        for (k, (m, pts)) in series.iter().enumerate() {
            chart.line_with_markers(Series {
                name: m,
                points: pts.iter().map(|(i, v)| (*i as f64, *v)).collect(),
                color: Palette99::pick(k).to_rgba(),
                radius: 4,
            })?;
        }
        // plotters' default legend position.
        chart.draw_legend(SeriesLabelPosition::MiddleRight)?;
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::claim::{Expect, Op};
    use crate::outcome::{Evidence, SkipReason};
    use crate::stats::Statistic;

    /// A report with a pass (Q8_0 drift), a falsified greedy parity case and a skip.
    pub(crate) fn sample_report() -> Report {
        let failed = crate::report::ticket::tests::failed_case();
        let mut pass = failed.clone();
        pass.name = "quant_drift/smollm2-135m/q8_0/all/SQ-1".into();
        pass.kind = "quant_drift".into();
        pass.variant = "q8_0".into();
        pass.claim_id = "SQ-1".into();
        pass.outcome = Outcome::Pass(Evidence {
            statistic: Statistic::KlMean,
            observed: 0.0021,
            op: Op::Le,
            bound: 0.01,
            expect: Expect::Hold,
            n: 300,
            interval: None,
            also: vec![("top1_agreement".into(), 0.97)],
            comparison: None,
            numerical_path: "candle f32".into(),
            flips: None,
        });
        let mut skip = pass.clone();
        skip.name = "quant_drift/smollm2-135m/q4_0/all/SQ-2".into();
        skip.variant = "q4_0".into();
        skip.outcome = Outcome::Skip(SkipReason::NoDevice {
            device: "cuda".into(),
        });
        let env = crate::report::Environment {
            groundtruth: "0.1.0".into(),
            crates: "c".into(),
            rustc: "r".into(),
            platform: "p".into(),
            cpu: "cpu".into(),
            threads: 2,
        };
        Report {
            format: crate::report::REPORT_FORMAT.into(),
            suite: "ci".into(),
            seed: 1,
            environment: env,
            run: "t".into(),
            planned: 3,
            partial: false,
            cases: vec![failed, pass, skip],
        }
    }

    #[test]
    fn the_page_holds_both_matrices_the_sweep_and_the_failed_case_and_fetches_nothing() {
        let r = sample_report();
        let dir = tempfile::tempdir().unwrap();
        let plots = run_plots(dir.path(), &r);
        assert_eq!(plots.len(), 1, "the sweep, no trained model");
        let html = report_html(&r, &plots);
        assert!(
            html.contains("<table id=\"summary-matrix\">")
                && html.contains("<td class=\"fail\">0✓ 1✗</td>"),
            "{html}"
        );
        assert!(
            html.contains("<table id=\"drift-matrix\">")
                && html.contains("2.10e-3<br><small>97.0% · —</small>"),
            "{html}"
        );
        assert!(
            html.contains("<svg") && !html.contains("<?xml"),
            "inline SVG"
        );
        assert!(
            html.contains("id=\"greedy_parity__smollm2-135m__base__capital__GP-1.md\""),
            "{html}"
        );
        assert!(
            html.contains("7042 &quot; Paris&quot;"),
            "the ticket's token diff with text: {html}"
        );
        assert!(html.contains("no CUDA") || html.contains("cuda"), "{html}");
        for external in ["src=", "href=", "url(", "@import", "<script"] {
            assert!(
                !html.contains(external),
                "{external} would reach outside the page"
            );
        }
    }

    #[test]
    fn heat_runs_from_green_to_red() {
        assert_eq!(heat(Some(1e-7)), "hsl(120,70%,72%)");
        assert_eq!(heat(Some(1e-3)), "hsl(60,70%,72%)");
        assert_eq!(heat(Some(5.0)), "hsl(0,70%,72%)");
        assert_eq!(heat(None), "#e4e4e4");
    }
}
