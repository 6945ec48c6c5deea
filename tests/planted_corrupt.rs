//! The corruption-bound claims (claims/corruption_bounds.toml) on planted faults: each
//! passes on the variants it was registered for and fails when the damage is not what
//! its class says (a "harmless" class that secretly includes an exponent bit, a block
//! scale flip that secretly stays in the low mantissa). The flip list rides in the evidence.

mod common;

use common::{judge_all, registered, registered_on, setup};

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
