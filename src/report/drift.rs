//! The drift matrix: rows are models, columns storage types, cells the mean KL divergence,
//! same-top-1 rate and perplexity ratio of that variant against its parent, gathered from
//! the evidence of every `quant_drift` case of a run (each statistic from whichever case
//! measured it, as its bound or alongside it).

use super::record::Report;
use crate::outcome::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Column order: most bits first, as `variant::DType` lists them.
const COLUMNS: [&str; 12] = [
    "f16", "bf16", "q8_0", "q6_k", "q5_1", "q5_0", "q5_k", "q4_1", "q4_0", "q4_k", "q3_k", "q2_k",
];

/// llama.cpp's published Llama-3-8B figures (tools/perplexity/README.md, wikitext-2, vs
/// FP16): mean KLD, same top p (printed for four types only), and PPL(Q)/PPL(FP16) from
/// its PPL column. K-quant rows are llama.cpp's default mixes (Q4_K_M, Q3_K_M), not the
/// pure files the harness writes. A reference, never measured here.
pub(super) const LLAMA_CPP_L3_8B: [(&str, f64, Option<f64>, f64); 9] = [
    ("q8_0", 0.001355, Some(0.97674), 1.000180),
    ("q6_k", 0.005452, Some(0.96031), 1.003244),
    ("q5_1", 0.018045, None, 1.016797),
    ("q5_0", 0.022239, None, 1.020866),
    ("q4_1", 0.071683, None, 1.072127),
    ("q4_0", 0.071940, None, 1.074920),
    ("q4_k", 0.031273, Some(0.91901), 1.027908),
    ("q3_k", 0.101913, None, 1.105137),
    ("q2_k", 0.445132, Some(0.71138), 1.564466),
];

/// One model × storage type: what the run measured of it.
#[derive(Default, Clone, Copy)]
pub(super) struct Cell {
    /// Mean KL divergence from the parent, nats.
    pub kl: Option<f64>,
    /// Same top-1 rate.
    pub top1: Option<f64>,
    /// Perplexity ratio to the parent.
    pub ppl: Option<f64>,
}

/// The drift matrix's data: models (rows), storage types (columns, most bits first) and
/// the measured cells.
pub(super) struct DriftTable<'a> {
    pub models: Vec<&'a str>,
    pub columns: Vec<&'static str>,
    pub cells: BTreeMap<(&'a str, &'a str), Cell>,
}

pub(super) fn fmt_cell(c: &Cell) -> String {
    let kl = c.kl.map_or("—".into(), |v| format!("{v:.2e}"));
    let top1 = c.top1.map_or("—".into(), |v| format!("{:.1}%", 100.0 * v));
    let ppl = c.ppl.map_or("—".into(), |v| format!("{v:.4}"));
    format!("{kl} / {top1} / {ppl}")
}

/// The drift data of a run, or `None` when it judged no `quant_drift` case.
pub(super) fn drift_table(report: &Report) -> Option<DriftTable<'_>> {
    let mut cells: BTreeMap<(&str, &str), Cell> = BTreeMap::new();
    // Quantization drift on the CPU only: a variant's drift on another runtime (or the
    // base's, `base@cuda`) would share its cell; those cases are in the case list.
    for c in report
        .cases
        .iter()
        .filter(|c| c.kind == "quant_drift" && c.runtime == crate::runtime::Runtime::CPU.label())
    {
        let (Outcome::Pass(ev) | Outcome::Fail(ev)) = &c.outcome else {
            continue;
        };
        let cell = cells
            .entry((c.model.as_str(), c.variant.as_str()))
            .or_default();
        let mut put = |name: &str, v: f64| match name {
            "kl_mean" => cell.kl = Some(v),
            "top1_agreement" => cell.top1 = Some(v),
            "ppl_ratio" => cell.ppl = Some(v),
            _ => {}
        };
        put(ev.statistic.name(), ev.observed);
        for (name, v) in &ev.also {
            put(name, *v);
        }
    }
    if cells.is_empty() {
        return None;
    }
    let columns: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|col| cells.keys().any(|(_, v)| v == col))
        .collect();
    let mut models: Vec<&str> = cells.keys().map(|(m, _)| *m).collect();
    models.dedup();
    Some(DriftTable {
        models,
        columns,
        cells,
    })
}

/// The Markdown drift matrix of a run, or `None` when it judged no `quant_drift` case.
pub fn drift_matrix(report: &Report) -> Option<String> {
    let DriftTable {
        models,
        columns,
        cells,
    } = drift_table(report)?;
    let mut out = String::from(
        "## Drift matrix\n\nEach variant against its parent on the same runtime path: mean KL divergence (nats, teacher-forced on the \
         prompt set) / same top-1 / perplexity ratio over the evaluation slice. — where no case of the run measured it. \
         The last row is llama.cpp's published Llama-3-8B figures for comparison (K-quants there are the default _M mixes).\n\n| model |",
    );
    for col in &columns {
        let _ = write!(out, " {col} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for m in &models {
        let _ = write!(out, "| {m} |");
        for col in &columns {
            let text = cells.get(&(*m, *col)).map(fmt_cell).unwrap_or_default();
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out.push_str("| *llama.cpp Llama-3-8B (published)* |");
    for col in &columns {
        let text = LLAMA_CPP_L3_8B
            .iter()
            .find(|(n, ..)| n == col)
            .map(|(_, kl, top1, ppl)| {
                fmt_cell(&Cell {
                    kl: Some(*kl),
                    top1: *top1,
                    ppl: Some(*ppl),
                })
            })
            .unwrap_or_default();
        let _ = write!(out, " {text} |");
    }
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::{Expect, Op};
    use crate::outcome::Evidence;
    use crate::report::{CaseRecord, Environment};
    use crate::stats::Statistic;

    fn case(variant: &str, stat: Statistic, observed: f64, also: Vec<(String, f64)>) -> CaseRecord {
        let ev = Evidence {
            statistic: stat,
            observed,
            op: Op::Le,
            bound: 1.0,
            expect: Expect::Hold,
            n: 10,
            interval: None,
            also,
            comparison: None,
            numerical_path: String::new(),
            flips: None,
        };
        CaseRecord {
            name: format!("quant_drift/m/{variant}/all/X"),
            claim_id: "X".into(),
            kind: "quant_drift".into(),
            statement: String::new(),
            criterion: String::new(),
            registered_at: String::new(),
            basis: crate::claim::Basis::Prior,
            model: "m".into(),
            variant: variant.into(),
            runtime: "cpu".into(),
            scope: "all".into(),
            outcome: Outcome::Pass(ev),
            files: vec![],
            seconds: 0.0,
            reproduce: String::new(),
        }
    }

    #[test]
    fn cells_merge_statistics_from_every_case_of_a_variant() {
        let env = Environment {
            groundtruth: "0".into(),
            crates: String::new(),
            rustc: String::new(),
            platform: String::new(),
            cpu: String::new(),
            threads: 1,
        };
        let mut report = Report {
            format: crate::report::REPORT_FORMAT.into(),
            suite: "t".into(),
            seed: 0,
            environment: env,
            run: "t".into(),
            planned: 0,
            partial: false,
            cases: vec![],
        };
        assert!(drift_matrix(&report).is_none());
        report.cases.push(case(
            "q8_0",
            Statistic::KlMean,
            0.0012,
            vec![("top1_agreement".into(), 0.975)],
        ));
        report
            .cases
            .push(case("q8_0", Statistic::PplRatio, 1.0004, vec![]));
        report
            .cases
            .push(case("q4_0", Statistic::Top1Agreement, 0.5, vec![]));
        insta::assert_snapshot!(drift_matrix(&report).unwrap());
    }
}
