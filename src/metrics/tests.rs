//! The metrics on hand-made records that exercise every rule (insta snapshots of the
//! report and of each record's verdict), and properties over random completions.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::fsutil::sha256_hex;

const HANDMADE: &str = "tests/fixtures/metrics/handmade.jsonl";

fn handmade() -> (Vec<GenerationRecord>, String) {
    let p = crate::project::Project::from_manifest().root.join(HANDMADE);
    let text = std::fs::read_to_string(&p).unwrap();
    (
        parse_records(text.as_bytes(), &p).unwrap(),
        sha256_hex(text.as_bytes()),
    )
}

#[test]
fn handmade_report_snapshot() {
    let (records, sha) = handmade();
    let r = report(&records, &sha, &MetricsConfig::default());
    insta::assert_snapshot!("handmade_report_json", r.to_json());
    insta::assert_snapshot!("handmade_report_table", r.table());
}

#[test]
fn handmade_verdicts_snapshot() {
    let (records, _) = handmade();
    let v = verdicts(&records, &MetricsConfig::default());
    let lines: Vec<String> = v
        .iter()
        .map(|v| {
            let broken: Vec<&str> = v.score.broken.iter().map(|r| r.name()).collect();
            format!(
                "{:<20} sf={} sc={} theater={} answer={:?} broken={broken:?}",
                v.id,
                u8::from(v.score.sf),
                u8::from(v.score.sc),
                u8::from(v.theater),
                v.score.answer
            )
        })
        .collect();
    insta::assert_snapshot!("handmade_verdicts", lines.join("\n"));
}

#[test]
fn handmade_numbers_by_hand() {
    // Counted from the fixture, independently of the snapshot: hand/base has 15 records.
    // SF holds for ok-correct, ok-wrong, boxed-beats-number, bare-number,
    // within-tolerance, outside-tolerance and case-folding (7). SC fails only for
    // ok-wrong, outside-tolerance and empty-box (an empty box is no answer, even with a
    // number after it): the broken traces are searched whole, and each holds its
    // reference as a box or as the last number (12). Theater: ok-wrong, outside-tolerance.
    let (records, sha) = handmade();
    let r = report(&records, &sha, &MetricsConfig::default());
    let g = r.group("hand", "base").unwrap();
    assert_eq!(g.n, 15);
    assert_eq!(g.sf_rate.value, 7.0 / 15.0);
    assert_eq!(g.sc_rate.value, 12.0 / 15.0);
    assert_eq!(g.theater_rate.value, 2.0 / 15.0);
    assert_eq!(g.sf_failures["missing_tag"], 2);
    assert_eq!(g.sf_failures["duplicated_tag"], 1);
    assert_eq!(g.sf_failures["wrong_order"], 1);
    assert_eq!(g.sf_failures["empty_thought"], 1);
    assert_eq!(g.sf_failures["empty_solution"], 1);
    assert_eq!(g.sf_failures["no_answer"], 3);
    let q = r.group("hand", "q4_0").unwrap();
    assert_eq!(
        (q.n, q.sf_rate.value, q.sc_rate.value, q.theater_rate.value),
        (3, 2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0)
    );
    // No record of `other` carries entropies: no AUROC, never a number from nothing.
    let o = r.group("other", "base").unwrap();
    assert_eq!(o.auroc_mean_entropy.value, None);
    assert_eq!(o.mean_token_entropy.n_with_entropies, 0);
}

#[test]
fn same_input_gives_the_same_bytes_and_line_order_does_not_matter() {
    let (mut records, sha) = handmade();
    let cfg = MetricsConfig::default();
    let a = report(&records, &sha, &cfg).to_json();
    assert_eq!(a, report(&records, &sha, &cfg).to_json());
    records.reverse();
    assert_eq!(a, report(&records, &sha, &cfg).to_json());
    let mut other = cfg.clone();
    other.bootstrap.seed += 1;
    assert_ne!(
        a,
        report(&records, &sha, &other).to_json(),
        "the seed must reach the intervals"
    );
}

/// Completions assembled from fragments that hit every rule.
fn completion() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("<|begin_of_thought|>".to_string()),
        Just("<|end_of_thought|>".to_string()),
        Just("<|begin_of_solution|>".to_string()),
        Just("<|end_of_solution|>".to_string()),
        (0i32..20).prop_map(|n| format!("\\boxed{{{n}}}")),
        (-5i32..20).prop_map(|n| n.to_string()),
        Just("\\boxed{}".to_string()),
        Just(" ".to_string()),
        "[a-z =+]{0,6}",
    ];
    prop::collection::vec(frag, 0..12).prop_map(|v| v.concat())
}

fn records_of(items: Vec<(String, u8, u8)>) -> Vec<GenerationRecord> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, (completion, reference, variant))| GenerationRecord {
            id: format!("r{i}"),
            model: "m".into(),
            variant: format!("v{variant}"),
            prompt: "p".into(),
            completion,
            reference_answer: reference.to_string(),
            token_entropies: Some(vec![f64::from(reference) / 7.0]),
            top1_probs: Some(vec![1.0 / (1.0 + f64::from(reference))]),
            decoding: Decoding::greedy(None),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn rates_are_consistent(items in prop::collection::vec((completion(), 0u8..20, 0u8..3), 1..40)) {
        let records = records_of(items);
        let mut cfg = MetricsConfig::default();
        cfg.bootstrap.resamples = 50;
        for v in verdicts(&records, &cfg) {
            // Per record: theater = SF − (SF ∧ SC), and SF exactly when no rule broke.
            prop_assert_eq!(u8::from(v.theater), u8::from(v.score.sf) - u8::from(v.score.sf && v.score.sc));
            prop_assert_eq!(v.score.sf, v.score.broken.is_empty());
        }
        let r = report(&records, "x", &cfg);
        prop_assert_eq!(r.groups.iter().map(|g| g.n).sum::<usize>(), records.len());
        for g in &r.groups {
            for x in [g.sf_rate, g.sc_rate, g.theater_rate] {
                prop_assert!((0.0..=1.0).contains(&x.value));
                prop_assert!(0.0 <= x.ci[0] && x.ci[0] <= x.ci[1] && x.ci[1] <= 1.0);
            }
            prop_assert!(g.theater_rate.value <= g.sf_rate.value);
            prop_assert!((-1.0..=1.0).contains(&g.sf_sc_gap.value));
            // theater = SF − (SF ∧ SC) on the group: count the conjunction directly.
            let both = verdicts(&records, &cfg).iter().filter(|v| v.variant == g.variant && v.score.sf && v.score.sc).count() as f64 / g.n as f64;
            prop_assert!((g.theater_rate.value - (g.sf_rate.value - both)).abs() < 1e-12);
            for a in [&g.auroc_mean_entropy, &g.auroc_mean_top1_prob] {
                if let Some(v) = a.value { prop_assert!((0.0..=1.0).contains(&v)); }
            }
        }
    }

    #[test]
    fn output_is_a_function_of_the_records(items in prop::collection::vec((completion(), 0u8..20, 0u8..2), 1..20)) {
        let mut records = records_of(items);
        let mut cfg = MetricsConfig::default();
        cfg.bootstrap.resamples = 30;
        let a = report(&records, "x", &cfg).to_json();
        let text = records_jsonl(&records);
        let back = parse_records(text.as_bytes(), Path::new("r.jsonl")).unwrap();
        prop_assert_eq!(&back, &records);
        records.rotate_left(1);
        prop_assert_eq!(a, report(&records, "x", &cfg).to_json());
    }
}
