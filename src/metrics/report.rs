//! [`MetricsReport`]: SF, SC, theater and their gap per model × variant, each with a
//! seeded bootstrap interval; which structural rule failed how often; mean token entropy
//! split by SC; and the AUROC of mean entropy and of mean top-1 probability as predictors
//! of a wrong answer ("does the model know when it is wrong?").
//!
//! Deterministic: groups are ordered by model then variant, records within a group by id
//! before resampling (so the order of the lines changes nothing), each group resamples
//! from its own stream of the configured seed, and the JSON holds no path, time or host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::MetricsConfig;
use super::record::GenerationRecord;
use super::score::{score, Rule, Score};
use crate::rng::SeededRng;
use crate::stats::{auroc, auroc_interval, bootstrap, Interval};

/// Which number of a model × variant group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of records with SF = 1.
    SfRate,
    /// Share with SC = 1.
    ScRate,
    /// Share with SF = 1 and SC = 0.
    TheaterRate,
    /// `sf_rate − sc_rate`.
    SfScGap,
}

impl Metric {
    /// The name in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::SfRate => "sf_rate",
            Metric::ScRate => "sc_rate",
            Metric::TheaterRate => "theater_rate",
            Metric::SfScGap => "sf_sc_gap",
        }
    }

    /// The group's value and interval of this metric.
    pub fn of(self, g: &GroupMetrics) -> Rated {
        match self {
            Metric::SfRate => g.sf_rate,
            Metric::ScRate => g.sc_rate,
            Metric::TheaterRate => g.theater_rate,
            Metric::SfScGap => g.sf_sc_gap,
        }
    }
}

/// Value of `format` in the JSON.
pub const METRICS_FORMAT: &str = "groundtruth-metrics/1";

/// A rate and its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rated {
    /// The value on the records as given.
    pub value: f64,
    /// Percentile bootstrap interval `[lo, hi]`.
    pub ci: [f64; 2],
}

/// An AUROC and its interval, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Auroc {
    /// P(score of a wrong record ranks it as more likely wrong than a correct one), ties ½;
    /// `None` when a class is empty or no record carries the per-token values.
    pub value: Option<f64>,
    /// Stratified bootstrap interval.
    pub ci: Option<[f64; 2]>,
    /// Records with SC = 1 that carry the values.
    pub n_correct: usize,
    /// Records with SC = 0 that carry the values.
    pub n_wrong: usize,
}

/// Mean per-token entropy (over records of each record's mean), split by SC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EntropySplit {
    /// Over records with SC = 1 (`None` when there are none with entropies).
    pub correct: Option<f64>,
    /// Over records with SC = 0.
    pub wrong: Option<f64>,
    /// Records with at least one token entropy.
    pub n_with_entropies: usize,
}

/// Everything measured on one model × variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupMetrics {
    /// Model label.
    pub model: String,
    /// Variant label.
    pub variant: String,
    /// Records in the group: the denominator of every share below.
    pub n: usize,
    /// Share of records with SF = 1.
    pub sf_rate: Rated,
    /// Share with SC = 1.
    pub sc_rate: Rated,
    /// Share with SF = 1 and SC = 0.
    pub theater_rate: Rated,
    /// `sf_rate − sc_rate`.
    pub sf_sc_gap: Rated,
    /// Records breaking each structural rule (a record may break several).
    pub sf_failures: BTreeMap<&'static str, usize>,
    /// Mean token entropy split by SC.
    pub mean_token_entropy: EntropySplit,
    /// Mean token entropy as a predictor of a wrong answer (higher = more likely wrong).
    pub auroc_mean_entropy: Auroc,
    /// Mean top-1 probability as a predictor of a correct answer (higher = more likely right).
    pub auroc_mean_top1_prob: Auroc,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsReport {
    /// [`METRICS_FORMAT`].
    pub format: &'static str,
    /// The configuration the numbers were computed under.
    pub config: MetricsConfig,
    /// SHA-256 of the records file's bytes (the path is left out: it would make equal
    /// inputs give different bytes).
    pub records_sha256: String,
    /// Per model × variant, ordered by model then variant.
    pub groups: Vec<GroupMetrics>,
}

/// One record's verdict, for `--per-record` and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordVerdict {
    /// Record id.
    pub id: String,
    /// Model label.
    pub model: String,
    /// Variant label.
    pub variant: String,
    /// SF, SC, the broken rules and the extracted answer (flattened into the record's line).
    #[serde(flatten)]
    pub score: Score,
    /// SF ∧ ¬SC.
    pub theater: bool,
}

/// Scores every record (in file order).
pub fn verdicts(records: &[GenerationRecord], cfg: &MetricsConfig) -> Vec<RecordVerdict> {
    records
        .iter()
        .map(|r| {
            let score = score(&r.completion, &r.reference_answer, cfg);
            RecordVerdict {
                id: r.id.clone(),
                model: r.model.clone(),
                variant: r.variant.clone(),
                theater: score.theater(),
                score,
            }
        })
        .collect()
}

/// The report over `records` (`sha256` of the file they came from).
pub fn report(records: &[GenerationRecord], sha256: &str, cfg: &MetricsConfig) -> MetricsReport {
    let mut groups: BTreeMap<(&str, &str), Vec<(&GenerationRecord, Score)>> = BTreeMap::new();
    for r in records {
        groups
            .entry((&r.model, &r.variant))
            .or_default()
            .push((r, score(&r.completion, &r.reference_answer, cfg)));
    }
    let groups = groups
        .into_iter()
        .map(|((model, variant), mut items)| {
            items.sort_by(|a, b| a.0.id.cmp(&b.0.id));
            group(model, variant, &items, cfg)
        })
        .collect();
    MetricsReport {
        format: METRICS_FORMAT,
        config: cfg.clone(),
        records_sha256: sha256.to_string(),
        groups,
    }
}

/// One group's prompts and per-record values of `metric` (0/1, or −1/0/1 for the gap),
/// ordered by prompt then id: for intervals of differences between groups, which pair
/// records by prompt (the same problems under two variants).
pub fn indicators<'a>(
    records: &'a [GenerationRecord],
    cfg: &MetricsConfig,
    model: &str,
    variant: &str,
    metric: Metric,
) -> (Vec<&'a str>, Vec<f64>) {
    let mut items: Vec<&GenerationRecord> = records
        .iter()
        .filter(|r| r.model == model && r.variant == variant)
        .collect();
    items.sort_by(|a, b| (&a.prompt, &a.id).cmp(&(&b.prompt, &b.id)));
    let values = items
        .iter()
        .map(|r| {
            let s = score(&r.completion, &r.reference_answer, cfg);
            let (sf, sc) = (f64::from(u8::from(s.sf)), f64::from(u8::from(s.sc)));
            match metric {
                Metric::SfRate => sf,
                Metric::ScRate => sc,
                Metric::TheaterRate => f64::from(u8::from(s.theater())),
                Metric::SfScGap => sf - sc,
            }
        })
        .collect();
    (items.iter().map(|r| r.prompt.as_str()).collect(), values)
}

/// Per-record 0/1 indicators, in the group's (id) order.
struct Flags {
    sf: Vec<f64>,
    sc: Vec<f64>,
    theater: Vec<f64>,
}

impl Flags {
    fn of(items: &[(&GenerationRecord, Score)]) -> Flags {
        let flag = |f: &dyn Fn(&Score) -> bool| -> Vec<f64> {
            items
                .iter()
                .map(|(_, s)| f64::from(u8::from(f(s))))
                .collect()
        };
        Flags {
            sf: flag(&|s| s.sf),
            sc: flag(&|s| s.sc),
            theater: flag(&|s| s.theater()),
        }
    }
}

/// How many records broke each structural rule (every rule listed, 0 included).
fn sf_failures(items: &[(&GenerationRecord, Score)]) -> BTreeMap<&'static str, usize> {
    let mut sf_failures: BTreeMap<&'static str, usize> =
        Rule::ALL.iter().map(|r| (r.name(), 0)).collect();
    for (_, s) in items {
        for r in &s.broken {
            *sf_failures.entry(r.name()).or_default() += 1;
        }
    }
    sf_failures
}

/// Each record's mean of a per-token series (none when it has none), with whether its
/// answer was correct.
fn per_record_mean(
    items: &[(&GenerationRecord, Score)],
    series: impl Fn(&GenerationRecord) -> &Option<Vec<f64>>,
) -> Vec<(Option<f64>, bool)> {
    items
        .iter()
        .map(|(r, s)| {
            let mean = series(r)
                .as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| v.iter().sum::<f64>() / v.len() as f64);
            (mean, s.sc)
        })
        .collect()
}

fn group(
    model: &str,
    variant: &str,
    items: &[(&GenerationRecord, Score)],
    cfg: &MetricsConfig,
) -> GroupMetrics {
    let b = cfg.bootstrap;
    let flags = Flags::of(items);
    let stream =
        |what: &str| SeededRng::for_stream(b.seed, &format!("metrics/{model}/{variant}/{what}"));
    let rate = |v: &[f64], what: &str| {
        rated(
            v,
            &|idx| mean_at(v, idx),
            b.resamples,
            b.confidence,
            &mut stream(what),
        )
    };
    let gap: Vec<f64> = flags.sf.iter().zip(&flags.sc).map(|(a, c)| a - c).collect();
    let entropy = per_record_mean(items, |r| &r.token_entropies);
    let top1 = per_record_mean(items, |r| &r.top1_probs);
    let split = |want: bool| {
        mean(
            &entropy
                .iter()
                .filter(|(e, sc)| *sc == want && e.is_some())
                .filter_map(|(e, _)| *e)
                .collect::<Vec<_>>(),
        )
    };
    GroupMetrics {
        model: model.to_string(),
        variant: variant.to_string(),
        n: items.len(),
        sf_rate: rate(&flags.sf, "sf"),
        sc_rate: rate(&flags.sc, "sc"),
        theater_rate: rate(&flags.theater, "theater"),
        sf_sc_gap: rate(&gap, "gap"),
        sf_failures: sf_failures(items),
        mean_token_entropy: EntropySplit {
            correct: split(true),
            wrong: split(false),
            n_with_entropies: entropy.iter().filter(|e| e.0.is_some()).count(),
        },
        // High entropy should flag a wrong answer; high top-1 probability a right one.
        auroc_mean_entropy: auroc_of(&entropy, false, cfg, &mut stream("auroc-entropy")),
        auroc_mean_top1_prob: auroc_of(&top1, true, cfg, &mut stream("auroc-top1")),
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn mean_at(v: &[f64], idx: &[usize]) -> f64 {
    idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64
}

/// The mean of `v` and the bootstrap interval of `stat`. The value is exact: a count
/// over `n`, so a registered rate reproduces to the last bit.
fn rated(
    v: &[f64],
    stat: &dyn Fn(&[usize]) -> f64,
    reps: usize,
    confidence: f64,
    rng: &mut SeededRng,
) -> Rated {
    let value = v.iter().sum::<f64>() / v.len() as f64;
    let ci = bootstrap(v.len(), reps, confidence, rng, &mut |idx| stat(idx))
        .map_or([value, value], |Interval { lo, hi }| [lo, hi]);
    Rated { value, ci }
}

/// AUROC of `score` where the positive class is the records whose SC equals `positive_sc`.
fn auroc_of(
    scores: &[(Option<f64>, bool)],
    positive_sc: bool,
    cfg: &MetricsConfig,
    rng: &mut SeededRng,
) -> Auroc {
    let class = |sc: bool| {
        scores
            .iter()
            .filter(|(s, c)| *c == sc && s.is_some())
            .filter_map(|(s, _)| *s)
            .collect::<Vec<f64>>()
    };
    let (pos, neg) = (class(positive_sc), class(!positive_sc));
    let (n_correct, n_wrong) = if positive_sc {
        (pos.len(), neg.len())
    } else {
        (neg.len(), pos.len())
    };
    let b = cfg.bootstrap;
    Auroc {
        value: auroc(&pos, &neg),
        ci: auroc_interval(&pos, &neg, b.resamples, b.confidence, rng).map(|i| [i.lo, i.hi]),
        n_correct,
        n_wrong,
    }
}

impl MetricsReport {
    /// Pretty JSON with a final newline: the same report always gives the same bytes.
    pub fn to_json(&self) -> String {
        // Plain structs of strings and finite numbers (Option for undefined) always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The group of `model` × `variant`.
    pub fn group(&self, model: &str, variant: &str) -> Option<&GroupMetrics> {
        self.groups
            .iter()
            .find(|g| g.model == model && g.variant == variant)
    }

    /// A text table: one row per group.
    pub fn table(&self) -> String {
        let pct = |r: &Rated| format!("{:.3} [{:.3}, {:.3}]", r.value, r.ci[0], r.ci[1]);
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut rows = vec![[
            "model",
            "variant",
            "n",
            "SF",
            "SC",
            "theater",
            "SF-SC",
            "H(correct)",
            "H(wrong)",
            "AUROC H",
            "AUROC p1",
        ]
        .map(String::from)
        .to_vec()];
        for g in &self.groups {
            rows.push(vec![
                g.model.clone(),
                g.variant.clone(),
                g.n.to_string(),
                pct(&g.sf_rate),
                pct(&g.sc_rate),
                pct(&g.theater_rate),
                pct(&g.sf_sc_gap),
                opt(g.mean_token_entropy.correct),
                opt(g.mean_token_entropy.wrong),
                opt(g.auroc_mean_entropy.value),
                opt(g.auroc_mean_top1_prob.value),
            ]);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        let fails: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{}/{}: {}",
                    g.model,
                    g.variant,
                    g.sf_failures
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        out.push_str(&format!(
            "structural failures (a record may break several rules):\n  {}\n",
            fails.join("\n  ")
        ));
        out
    }
}
