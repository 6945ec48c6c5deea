//! The corruption-bound claims (claims/corruption_bounds.toml) on planted faults: each
//! passes on the variants it was registered for and fails when the damage is not what
//! its class says (a "harmless" class that secretly includes an exponent bit, a block
//! scale flip that secretly stays in the low mantissa). The flip list rides in the evidence.

mod common;

use common::{judge_all, registered, registered_on, setup};
use groundtruth::report::{ticket_markdown, Environment};

fn labels_of(recs: &[groundtruth::report::CaseRecord]) -> Vec<(&str, &'static str)> {
    recs.iter()
        .map(|r| (r.name.as_str(), r.outcome.label()))
        .collect()
}

#[test]
fn the_mantissa_low_bound_holds_as_registered_and_fails_on_an_exponent_flip() {
    let s = setup();
    let recs = judge_all(&s.root, &registered("CB-1"), |_| {});
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r.outcome.label(), "pass", "{}: {:?}", r.name, r.outcome);
        let ev = r.outcome.evidence().unwrap();
        let flips = ev
            .flips
            .as_ref()
            .expect("a bit-flip variant's evidence carries its flip list");
        assert_eq!(
            (flips.bits.as_str(), flips.flips.len()),
            ("mantissa-low", 246),
            "{}",
            r.name
        );
        assert!(
            flips.flips.iter().all(|f| f.bit <= 10),
            "{}: a mantissa-low flip above bit 10",
            r.name
        );
    }
    // The planted fault: the same bound on a class that reaches the exponent.
    let planted = registered_on(
        "CB-1",
        &["tiny_1m"],
        Some(&["flip-exp-msb@rate=1e7", "flip-exp@rate=1e7~1"]),
    );
    let recs = judge_all(&s.root, &planted, |_| {});
    assert_eq!(
        labels_of(&recs).iter().map(|(_, l)| *l).collect::<Vec<_>>(),
        ["fail", "fail"],
        "{:?}",
        labels_of(&recs)
    );
    // The ticket lists the flips (246 at this rate: the first 32, then a count).
    let md = ticket_markdown(&recs[0], &Environment::current()).unwrap();
    assert!(
        md.contains("## Flips\n\n246 flip(s) of class exponent-msb in region weights"),
        "{md}"
    );
    assert!(
        md.contains("| 30 |") && md.contains("… and 214 more flip(s), omitted"),
        "{md}"
    );
}

#[test]
fn a_flipped_block_scale_leaves_the_band_and_a_low_mantissa_flip_of_it_does_not() {
    let s = setup();
    let recs = judge_all(&s.root, &registered("CB-2"), |_| {});
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r.outcome.label(), "pass", "{}: {:?}", r.name, r.outcome);
        let ev = r.outcome.evidence().unwrap();
        assert!(
            ev.numerical_path.contains("vs parent q8_0"),
            "judged against the Q8_0 parent, not f32: {}",
            ev.numerical_path
        );
        let f = &ev.flips.as_ref().unwrap().flips[0];
        assert_eq!(
            (f.dtype.as_str(), f.field.as_str(), f.bit, f.new / f.old),
            ("q8_0", "d", 14, 65536.0),
            "{}",
            r.name
        );
    }
    // Planted: the same block scale, flipped in its lowest mantissa bits (≤ 1.6%).
    let planted = registered_on(
        "CB-2",
        &["tiny_1m"],
        Some(&[
            "q8_0+flip-mantissa-low:scales@count=1",
            "q8_0+flip-mantissa-low:scales@count=1~1",
        ]),
    );
    let recs = judge_all(&s.root, &planted, |_| {});
    assert_eq!(
        labels_of(&recs).iter().map(|(_, l)| *l).collect::<Vec<_>>(),
        ["fail", "fail"],
        "{:?}",
        labels_of(&recs)
    );
}

#[test]
fn the_sweep_claims_hold_as_registered_and_fail_on_the_other_class() {
    let s = setup();
    // CB-5: one case over the rate axis, 3 seeds a point, its spread in the evidence.
    let recs = judge_all(&s.root, &registered("CB-5"), |_| {});
    assert_eq!(labels_of(&recs).len(), 1);
    let ev = recs[0].outcome.evidence().unwrap();
    assert_eq!(
        (recs[0].outcome.label(), ev.n),
        ("pass", 9),
        "{:?}",
        recs[0].outcome
    );
    let also = |k: &str| ev.also.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    assert_eq!(also("flips[rate=1e6]"), Some(25.0));
    assert_eq!(also("flips[rate=1e8]"), Some(2458.0));
    assert!(also("kl_mean_median[rate=1e8]").unwrap() > also("kl_mean_median[rate=1e6]").unwrap());
    // CB-6 and CB-7 on their own classes, then each on the other's: the exponent MSB is
    // not harmless (CB-7 fails) and the lower mantissa is not vulnerable (CB-6 fails).
    for (id, own, planted) in [
        ("CB-6", "flip-exp-msb@count=1", "flip-mantissa-low@count=1"),
        ("CB-7", "flip-mantissa-low@count=1", "flip-exp-msb@count=1"),
    ] {
        let recs = judge_all(&s.root, &registered(id), |_| {});
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].outcome.label(),
            "pass",
            "{id}: {:?}",
            recs[0].outcome
        );
        let ev = recs[0].outcome.evidence().unwrap();
        assert_eq!(ev.n, 24, "{id}");
        // Every sampled flip is named with what it changed.
        let named = ev
            .also
            .iter()
            .filter(|(n, _)| n.starts_with("ppl_ratio[seed "))
            .count();
        assert_eq!(named, 24, "{id}");
        assert!(ev.also.iter().any(|(n, _)| n.contains(" bit ")), "{id}");
        let recs = judge_all(
            &s.root,
            &registered_on(id, &["tiny_1m"], Some(&[planted])),
            |_| {},
        );
        assert_eq!(
            recs[0].outcome.label(),
            "fail",
            "{id} on {planted}: {:?}",
            recs[0].outcome
        );
        assert!(!recs[0].name.contains(own), "{}", recs[0].name);
    }
}
