//! Judging registered metric numbers (`claims/metrics/*.toml`, schema in
//! [`crate::claim::number`]): [`judge`] says whether a number still holds on its records,
//! [`evidence`] states that judgement as the claims harness's evidence (one `metric_repro`
//! case per number), [`ticket`] is `groundtruth reproduce`'s ticket. The harness and
//! `reproduce` both call [`judge`]; there is no second copy of the rule.

use std::path::Path;

use serde::Serialize;

use crate::claim::{Expect, Op};
use crate::metrics::{indicators, GenerationRecord, MetricsConfig, MetricsReport};
use crate::outcome::Evidence;
use crate::rng::SeededRng;
use crate::stats::{bootstrap, Interval, Statistic};

pub use crate::claim::number::{
    parse_registered, registered_files, Form, GenerateSource, IntervalBound, RegisteredNumber,
    Source,
};

/// What judging one number found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judged {
    /// The number's id.
    pub id: String,
    /// Whether it behaved as registered (held, or for `expect = "fail"` was refuted).
    pub passed: bool,
    /// The registration in words (`0.4667 ± 5%`, `> 0.2 on the interval`, …).
    pub registered: String,
    /// The observed value (of the difference, for the versus form).
    pub observed: f64,
    /// Its bootstrap interval.
    pub ci: [f64; 2],
    /// Records in the group (the versus form: in the claim's variant).
    pub n: usize,
    /// One line: why it passed or failed.
    pub verdict: String,
}

/// Judges `num` on `report` (computed from `records` under `cfg`). `Err` when the group is
/// not in the records: a number about nothing is an error, never a pass.
pub fn judge(
    num: &RegisteredNumber,
    records: &[GenerationRecord],
    report: &MetricsReport,
    cfg: &MetricsConfig,
) -> Result<Judged, String> {
    let source = num.source()?.describe();
    let group = |variant: &str| {
        report.group(&num.model, variant).ok_or_else(|| {
            format!(
                "number '{}': no records of {}/{variant} in {source}",
                num.id, num.model
            )
        })
    };
    let g = group(&num.variant)?;
    let form = num.form()?;
    let (observed, ci, supported, refuted) = match form {
        Form::Value { value, tolerance } => {
            let r = num.metric.of(g);
            let ok = (r.value - value).abs() <= tolerance * value.abs();
            (r.value, r.ci, ok, !ok)
        }
        Form::Bound(b) => {
            let r = num.metric.of(g);
            let (s, f) = on_interval(b, r.ci);
            (r.value, r.ci, s, f)
        }
        Form::Versus { other, bound } => {
            group(other)?;
            let (value, ci) = difference(num, other, records, cfg);
            let (s, f) = on_interval(bound, ci);
            (value, ci, s, f)
        }
    };
    let passed = match num.expect {
        Expect::Hold => supported,
        Expect::Fail => refuted,
    };
    let verdict = match (num.expect, passed, supported || refuted) {
        (Expect::Hold, true, _) => "holds".to_string(),
        (Expect::Hold, false, true) => "falsified".to_string(),
        (Expect::Hold, false, false) => {
            "not supported: the interval straddles the bound".to_string()
        }
        (Expect::Fail, true, _) => "registered negative claim: violated as predicted".to_string(),
        (Expect::Fail, false, true) => {
            "registered negative claim stopped holding: the bound now holds".to_string()
        }
        (Expect::Fail, false, false) => {
            "registered negative claim not supported: the interval straddles the bound".to_string()
        }
    };
    Ok(Judged {
        id: num.id.clone(),
        passed,
        registered: num.criterion(),
        observed,
        ci,
        n: g.n,
        verdict,
    })
}

/// (the whole interval satisfies the bound, the whole interval violates it).
fn on_interval(b: IntervalBound, ci: [f64; 2]) -> (bool, bool) {
    match b.op {
        Op::Lt | Op::Le => (b.op.holds(ci[1], b.value), !b.op.holds(ci[0], b.value)),
        Op::Gt | Op::Ge => (b.op.holds(ci[0], b.value), !b.op.holds(ci[1], b.value)),
        // Refused at load (`form`); judged as neither side if it ever got here.
        Op::Eq => (false, false),
    }
}

/// `metric(variant) − metric(other)` and its percentile interval. When both groups hold
/// the same prompts, each once (the same problems under two variants), the bootstrap is
/// paired: each replicate resamples problems and takes both variants' values of them, so
/// the shared difficulty of a problem cancels. Otherwise each group is resampled on its
/// own stream.
fn difference(
    num: &RegisteredNumber,
    other: &str,
    records: &[GenerationRecord],
    cfg: &MetricsConfig,
) -> (f64, [f64; 2]) {
    let (prompts_a, a) = indicators(records, cfg, &num.model, &num.variant, num.metric);
    let (prompts_b, b) = indicators(records, cfg, &num.model, other, num.metric);
    let paired = prompts_a == prompts_b && prompts_a.windows(2).all(|w| w[0] != w[1]);
    let mean = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
    let value = a.iter().sum::<f64>() / a.len() as f64 - b.iter().sum::<f64>() / b.len() as f64;
    let bs = cfg.bootstrap;
    let mut rng = SeededRng::for_stream(bs.seed, &format!("registered/{}/{}", num.id, num.variant));
    let ci = match paired {
        true => bootstrap(a.len(), bs.resamples, bs.confidence, &mut rng, &mut |idx| {
            mean(&a, idx) - mean(&b, idx)
        }),
        false => {
            let mut rb = SeededRng::for_stream(bs.seed, &format!("registered/{}/{other}", num.id));
            bootstrap(a.len(), bs.resamples, bs.confidence, &mut rng, &mut |idx| {
                let j: Vec<usize> = (0..b.len())
                    .map(|_| (rb.next_u64() % b.len() as u64) as usize)
                    .collect();
                mean(&a, idx) - mean(&b, &j)
            })
        }
    };
    (
        value,
        ci.map_or([value, value], |Interval { lo, hi }| [lo, hi]),
    )
}

/// A Markdown ticket for a number that did not behave as registered.
pub fn ticket(
    num: &RegisteredNumber,
    j: &Judged,
    file: &Path,
    records_sha256: &str,
    cfg: &MetricsConfig,
) -> String {
    let cfg_json = serde_json::to_string(cfg).unwrap_or_default();
    format!(
        "# {id} {verdict}: {model}/{variant} registered {reg}, observed {obs} [{lo}, {hi}]\n\n\
         > {statement}\n\n\
         | | |\n|---|---|\n\
         | registered | {reg} |\n| observed | {obs} |\n| {conf}% bootstrap interval | [{lo}, {hi}] ({reps} resamples, seed {seed}) |\n\
         | records | {records} (sha256 `{sha}`), {n} in the group |\n\
         | registered on | {date}, basis {basis} |\n\n\
         **Rationale (registered):** {rationale}\n\n\
         Metrics configuration: `{cfg_json}`\n\n\
         Reproduce: `groundtruth reproduce --registered {file} --id {id}`\n",
        id = num.id,
        verdict = j.verdict,
        model = num.model,
        variant = num.variant,
        reg = j.registered,
        obs = j.observed,
        lo = j.ci[0],
        hi = j.ci[1],
        statement = num.statement,
        conf = cfg.bootstrap.confidence * 100.0,
        reps = cfg.bootstrap.resamples,
        seed = cfg.bootstrap.seed,
        records = num.source().map_or_else(|e| e, |s| s.describe()),
        sha = records_sha256,
        n = j.n,
        date = num.registered,
        basis = num.basis.describe(),
        rationale = num.rationale,
        file = file.display(),
    )
}

/// `j` (the judgement of `num`) as the claims harness's evidence, stating the same rule as
/// [`RegisteredNumber::bound`]: the value form's `metric_deviation` (|observed − value|)
/// against `tolerance · |value|`, an interval form's deciding end (`interval_low`,
/// `interval_high`) against its line. The point value, the registered value and the whole
/// interval ride along.
pub fn evidence(
    num: &RegisteredNumber,
    j: &Judged,
    numerical_path: String,
) -> Result<Evidence, String> {
    let bound = num.bound()?;
    let observed = match (bound.statistic, num.form()?) {
        (Statistic::MetricDeviation, Form::Value { value, .. }) => (j.observed - value).abs(),
        (Statistic::IntervalLow, Form::Bound(_) | Form::Versus { .. }) => j.ci[0],
        (Statistic::IntervalHigh, Form::Bound(_) | Form::Versus { .. }) => j.ci[1],
        (s, _) => {
            return Err(format!(
                "number '{}': statistic {} does not fit its form",
                num.id,
                s.name()
            ))
        }
    };
    let point = match num.form()? {
        Form::Versus { other, .. } => {
            format!("{m}({}) − {m}({other})", num.variant, m = num.metric.name())
        }
        Form::Value { .. } | Form::Bound(_) => num.metric.name().to_string(),
    };
    let mut also = vec![(point, j.observed)];
    if let Form::Value { value, .. } = num.form()? {
        also.push(("registered value".to_string(), value));
    }
    Ok(Evidence {
        statistic: bound.statistic,
        observed,
        op: bound.op,
        bound: bound.value,
        expect: num.expect,
        n: j.n,
        interval: Some((j.ci[0], j.ci[1])),
        also,
        comparison: None,
        numerical_path,
        flips: None,
    })
}
