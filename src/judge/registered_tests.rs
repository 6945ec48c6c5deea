//! Each form of registered number passes on records that bear it out and fails on records
//! that do not (value off by more than its tolerance, an interval that straddles the bound,
//! a negative claim that stopped holding), and malformed registrations are refused.

use std::path::Path;

use super::registered::*;
use crate::metrics::{parse_records, report, Decoding, GenerationRecord, MetricsConfig};

const TRACE_OK: &str =
    "<|begin_of_thought|>x<|end_of_thought|><|begin_of_solution|>\\boxed{5}<|end_of_solution|>";
const TRACE_WRONG: &str =
    "<|begin_of_thought|>x<|end_of_thought|><|begin_of_solution|>\\boxed{6}<|end_of_solution|>";

/// `n` records of `variant`: `ok` well-formed and correct, the rest well-formed and wrong.
fn group(variant: &str, n: usize, ok: usize) -> Vec<GenerationRecord> {
    group_ids(variant, variant, n, ok)
}

/// [`group`] with prompts `{prefix}-NNN` (equal prefixes: the same problems under two variants).
fn group_ids(prefix: &str, variant: &str, n: usize, ok: usize) -> Vec<GenerationRecord> {
    (0..n)
        .map(|i| GenerationRecord {
            id: format!("{variant}-{i:03}"),
            model: "m".into(),
            variant: variant.into(),
            prompt: format!("{prefix}-{i:03}"),
            completion: if i < ok { TRACE_OK } else { TRACE_WRONG }.into(),
            reference_answer: "5".into(),
            token_entropies: None,
            top1_probs: None,
            decoding: Decoding::greedy(None),
        })
        .collect()
}

fn number(form: &str, expect: &str) -> RegisteredNumber {
    let text = format!(
        "[[number]]\nid = \"T-1\"\nstatement = \"s\"\nrecords = \"r.jsonl\"\nmodel = \"m\"\nvariant = \"a\"\nmetric = \"sc_rate\"\n{form}\nrationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\nexpect = \"{expect}\"\n"
    );
    parse_registered(&text, Path::new("n.toml"))
        .unwrap()
        .remove(0)
}

fn judged(records: &[GenerationRecord], form: &str, expect: &str) -> Judged {
    let cfg = MetricsConfig::default();
    let rep = report(records, "x", &cfg);
    judge(&number(form, expect), records, &rep, &cfg).unwrap()
}

#[test]
fn a_value_reproduces_within_its_tolerance_and_fails_beyond_it() {
    let r = group("a", 40, 30); // SC = 0.75
    assert!(judged(&r, "value = 0.75\ntolerance = 0.0", "hold").passed);
    assert!(judged(&r, "value = 0.77\ntolerance = 0.05", "hold").passed);
    let off = judged(&r, "value = 0.8\ntolerance = 0.05", "hold");
    assert!(
        !off.passed && off.verdict == "falsified" && off.observed == 0.75,
        "{off:?}"
    );
    // Exact means exact: one ulp away is off.
    assert!(!judged(&r, "value = 0.7500000000000001\ntolerance = 0.0", "hold").passed);
}

#[test]
fn a_bound_needs_the_whole_interval() {
    let r = group("a", 200, 180); // SC = 0.9, interval about [0.86, 0.94]
    assert!(judged(&r, "bound = { op = \">\", value = 0.8 }", "hold").passed);
    let straddle = judged(&r, "bound = { op = \">\", value = 0.9 }", "hold");
    assert!(
        !straddle.passed && straddle.verdict.contains("straddles"),
        "{straddle:?}"
    );
    // Registered negative: "SC stays below 0.8" predicted violated, and it is.
    let neg = judged(&r, "bound = { op = \"<\", value = 0.8 }", "fail");
    assert!(
        neg.passed && neg.verdict.contains("violated as predicted"),
        "{neg:?}"
    );
    // A negative claim whose bound now holds fails loudly.
    let stopped = judged(&r, "bound = { op = \"<\", value = 0.99 }", "fail");
    assert!(
        !stopped.passed && stopped.verdict.contains("stopped holding"),
        "{stopped:?}"
    );
    assert!(!judged(&r, "bound = { op = \"<\", value = 0.9 }", "fail").passed);
}

#[test]
fn a_comparison_is_judged_on_the_interval_of_the_difference() {
    let mut r = group("a", 200, 150); // SC 0.75
    r.extend(group("b", 200, 190)); // SC 0.95
                                    // a lowers SC against b by 0.2: "lowers by less than 0.3" is supported...
    let ok = judged(
        &r,
        "versus = \"b\"\nbound = { op = \">\", value = -0.3 }",
        "hold",
    );
    assert!(
        ok.passed && (ok.observed + 0.2).abs() < 1e-12 && ok.ci[0] > -0.3 && ok.ci[1] < -0.1,
        "{ok:?}"
    );
    // ..."by less than 0.05" is not, and "by less than 0.2" straddles.
    assert!(
        !judged(
            &r,
            "versus = \"b\"\nbound = { op = \">\", value = -0.05 }",
            "hold"
        )
        .passed
    );
    assert!(
        !judged(
            &r,
            "versus = \"b\"\nbound = { op = \">\", value = -0.2 }",
            "hold"
        )
        .passed
    );
    // A missing group is an error, never a pass.
    let cfg = MetricsConfig::default();
    let only_a = group("a", 10, 5);
    let e = judge(
        &number(
            "versus = \"c\"\nbound = { op = \">\", value = 0.0 }",
            "hold",
        ),
        &only_a,
        &report(&only_a, "x", &cfg),
        &cfg,
    )
    .unwrap_err();
    assert!(e.contains("no records of m/c"), "{e}");
}

#[test]
fn the_same_problems_under_two_variants_are_compared_paired() {
    // b answers exactly as a except 4 of a's 150 correct answers: a − b = 0.02.
    let mut r = group_ids("p", "a", 200, 150);
    r.extend(group_ids("p", "b", 200, 146));
    let j = judged(
        &r,
        "versus = \"b\"\nbound = { op = \">=\", value = -0.05 }",
        "hold",
    );
    assert!(j.passed && (j.observed - 0.02).abs() < 1e-12, "{j:?}");
    // Paired, only the 4 discordant problems vary: the interval is [0, ~0.04], where an
    // independent resampling of two groups of 200 spans about ±0.085.
    assert!(j.ci[0] >= 0.0 && j.ci[1] - j.ci[0] < 0.06, "{j:?}");
    let mut apart = group_ids("p", "a", 200, 150);
    apart.extend(group_ids("q", "b", 200, 146));
    let k = judged(
        &apart,
        "versus = \"b\"\nbound = { op = \">=\", value = -0.05 }",
        "hold",
    );
    assert!(k.ci[1] - k.ci[0] > 0.1 && !k.passed, "{k:?}");
}

#[test]
fn malformed_registrations_are_refused_naming_the_line() {
    let base = "[[number]]\nid = \"T-1\"\nstatement = \"s\"\nrecords = \"r.jsonl\"\nmodel = \"m\"\nvariant = \"a\"\nmetric = \"sc_rate\"\nFORM\nrationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\n";
    for (form, want) in [
        ("value = 0.5", "needs its relative tolerance"),
        ("value = 0.5\ntolerance = -0.1", "tolerance >= 0"),
        (
            "bound = { op = \"==\", value = 0.5 }",
            "no interval reading",
        ),
        (
            "versus = \"a\"\nbound = { op = \">\", value = 0.0 }",
            "own variant",
        ),
        (
            "value = 0.5\ntolerance = 0.0\nbound = { op = \">\", value = 0.0 }",
            "exactly one form",
        ),
        ("versus = \"b\"", "exactly one form"),
        ("value = 0.5\ntolerance = 0.0\nextra = 1", "unknown field"),
    ] {
        let e = parse_registered(&base.replace("FORM", form), Path::new("n.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("n.toml:") && e.contains(want), "{form}: {e}");
    }
    let metric = base
        .replace("metric = \"sc_rate\"", "metric = \"sf\"")
        .replace("FORM", "value = 0.5\ntolerance = 0.0");
    let e = parse_registered(&metric, Path::new("n.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("n.toml:7:") && e.contains("unknown variant"),
        "{e}"
    );
    let two = base
        .replace("FORM", "value = 0.5\ntolerance = 0.0")
        .repeat(2);
    assert!(parse_registered(&two, Path::new("n.toml"))
        .unwrap_err()
        .to_string()
        .contains("duplicate id"));
    let date = base
        .replace("FORM", "value = 0.5\ntolerance = 0.0")
        .replace("2026-11-29", "29.11.2026");
    assert!(parse_registered(&date, Path::new("n.toml"))
        .unwrap_err()
        .to_string()
        .contains("YYYY-MM-DD"));
}

#[test]
fn the_committed_numbers_reproduce_exactly() {
    let root = crate::project::Project::from_manifest().root;
    let cfg = MetricsConfig::default();
    let files = registered_files(&root).unwrap();
    assert!(!files.is_empty());
    let mut judged_any = false;
    for f in files {
        for n in parse_registered(&std::fs::read_to_string(&f).unwrap(), &f).unwrap() {
            let Ok(Source::File(path)) = n.source() else {
                continue;
            };
            let records =
                parse_records(&std::fs::read(root.join(path)).unwrap(), Path::new(path)).unwrap();
            let j = judge(&n, &records, &report(&records, "x", &cfg), &cfg).unwrap();
            assert!(j.passed || n.retired.is_some(), "{j:?}");
            judged_any = true;
        }
    }
    assert!(judged_any, "no committed records file to judge");
}
