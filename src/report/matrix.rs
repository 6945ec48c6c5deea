//! The summary matrix: rows are models, columns variants, cells pass/fail counts; then the
//! drift matrix of the run's `quant_drift` evidence.

use super::record::Report;
use crate::outcome::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The summary matrix's data: models (rows), variants (columns, `base` first) and the
/// pass / fail / skip / error counts of each cell that has cases.
pub(super) struct SummaryTable<'a> {
    pub models: Vec<&'a str>,
    pub variants: Vec<&'a str>,
    pub cells: BTreeMap<(&'a str, &'a str), [usize; 4]>,
}

pub(super) fn summary_table(report: &Report) -> SummaryTable<'_> {
    let mut variants: Vec<&str> = report.cases.iter().map(|c| c.variant.as_str()).collect();
    variants.sort_by_key(|v| (*v != "base", *v));
    variants.dedup();
    let mut cells: BTreeMap<(&str, &str), [usize; 4]> = BTreeMap::new();
    for c in &report.cases {
        let cell = cells
            .entry((c.model.as_str(), c.variant.as_str()))
            .or_default();
        let slot = match c.outcome {
            Outcome::Pass(_) => 0,
            Outcome::Fail(_) => 1,
            Outcome::Skip(_) => 2,
            Outcome::Error { .. } => 3,
        };
        cell[slot] += 1;
    }
    let mut models: Vec<&str> = report.cases.iter().map(|c| c.model.as_str()).collect();
    models.sort();
    models.dedup();
    SummaryTable {
        models,
        variants,
        cells,
    }
}

/// A cell's counts as text: `3✓ 1✗`, then skips and errors when there are any.
pub(super) fn cell_text([p, f, s, e]: &[usize; 4]) -> String {
    let mut t = format!("{p}✓ {f}✗");
    if *s > 0 {
        let _ = write!(t, " {s} skip");
    }
    if *e > 0 {
        let _ = write!(t, " {e} error");
    }
    t
}

/// Markdown summary of a run.
pub fn summary_matrix(report: &Report) -> String {
    let SummaryTable {
        models,
        variants,
        cells,
    } = summary_table(report);
    let (p, f, s, e) = report.counts();
    let partial = match report.partial {
        true => format!(
            "**Partial run**: {} of the plan's {} cases; the rest were not run.\n\n",
            report.cases.len(),
            report.planned
        ),
        false => String::new(),
    };
    let mut out = format!(
        "# groundtruth — suite `{}`\n\n{partial}{p} passed, {f} failed, {s} skipped, {e} errors ({} cases)\n\n\
         Cells: ✓ pass / ✗ fail, then skip and error counts when any.\n\n| model |",
        report.suite,
        report.cases.len()
    );
    for v in &variants {
        let _ = write!(out, " {v} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(variants.len()));
    out.push('\n');
    for m in &models {
        let _ = write!(out, "| {m} |");
        for v in &variants {
            let cell = match cells.get(&(*m, *v)) {
                None => "".to_string(),
                Some(counts) => cell_text(counts),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    let skips: Vec<_> = report
        .cases
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Skip(r) => Some(format!("- `{}`: {r}", c.name)),
            Outcome::Error { message } => Some(format!("- `{}`: error: {message}", c.name)),
            Outcome::Pass(_) | Outcome::Fail(_) => None,
        })
        .collect();
    if let Some(drift) = super::drift_matrix(report) {
        out.push('\n');
        out.push_str(&drift);
    }
    if !skips.is_empty() {
        out.push_str("\nNot judged:\n\n");
        out.push_str(&skips.join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ticket::tests::{env, failed_case};
    use super::*;
    use crate::outcome::{Evidence, SkipReason};
    use crate::report::{CaseRecord, REPORT_FORMAT};

    fn case(model: &str, variant: &str, outcome: Outcome) -> CaseRecord {
        CaseRecord {
            name: format!("quant_drift/{model}/{variant}/all/X"),
            model: model.into(),
            variant: variant.into(),
            kind: "quant_drift".into(),
            outcome,
            ..failed_case()
        }
    }

    #[test]
    fn the_summary_matrix_reads_as_it_did() {
        let Outcome::Fail(ev) = failed_case().outcome else {
            unreachable!("the fixture fails")
        };
        let kl = |v: f64| {
            Outcome::Pass(Evidence {
                statistic: crate::stats::Statistic::KlMean,
                observed: v,
                also: vec![("top1_agreement".into(), 0.98), ("ppl_ratio".into(), 1.001)],
                ..ev.clone()
            })
        };
        let cases = vec![
            case("smollm2-135m", "base", Outcome::Pass(ev.clone())),
            case("smollm2-135m", "q8_0", kl(0.0012)),
            case("smollm2-135m", "q4_0", Outcome::Fail(ev.clone())),
            case(
                "tiny_1m",
                "base",
                Outcome::Skip(SkipReason::NoDevice {
                    device: "CUDA device: built without the cuda feature".into(),
                }),
            ),
            case(
                "tiny_1m",
                "q8_0",
                Outcome::Error {
                    message: "configs/eval.toml:3: field 'perplexity.ctx' must be even".into(),
                },
            ),
        ];
        let report = Report {
            format: REPORT_FORMAT.into(),
            suite: "ci".into(),
            seed: 0,
            environment: env(),
            run: "r".into(),
            planned: 7,
            partial: true,
            cases,
        };
        insta::assert_snapshot!(summary_matrix(&report));
    }
}
