//! The `metric_repro` claim kind through the claims harness: each registered number of
//! `claims/metrics/*.toml` is one case of a suite's plan. A number off by more than its
//! tolerance fails with a ticket (registered vs observed, the interval); a registered
//! negative claim whose bound now holds fails; a number about a group its records lack is
//! an error, never a pass; the clean numbers pass.

mod common;

use common::{judge_in_order, setup, Setup};
use groundtruth::outcome::Outcome;
use groundtruth::plan::plan;
use groundtruth::project::Project;
use groundtruth::report::{ticket_markdown, CaseRecord, Environment};

const RECORDS: &str = "tests/fixtures/metrics/handmade.jsonl";

/// A scratch project holding the hand-made records, `numbers` as its only
/// registered-numbers file and a suite `numbers` of every `metric_repro` case.
fn project(numbers: &str) -> Setup {
    let s = setup();
    let src = Project::from_manifest();
    std::fs::create_dir_all(s.root.join("tests/fixtures/metrics")).unwrap();
    std::fs::copy(src.path(RECORDS), s.root.join(RECORDS)).unwrap();
    std::fs::create_dir_all(s.root.join("claims/metrics")).unwrap();
    std::fs::write(s.root.join("claims/metrics/planted.toml"), numbers).unwrap();
    std::fs::write(
        s.root.join("suites/numbers.toml"),
        "description = \"registered numbers\"\nkinds = [\"metric_repro\"]\n",
    )
    .unwrap();
    s
}

fn run(s: &Setup) -> Vec<CaseRecord> {
    judge_in_order(plan(&Project::new(&s.root), "numbers").unwrap())
}

fn case<'a>(recs: &'a [CaseRecord], id: &str) -> &'a CaseRecord {
    recs.iter().find(|r| r.claim_id == id).unwrap()
}

fn handmade() -> String {
    std::fs::read_to_string(Project::from_manifest().path("claims/metrics/handmade.toml")).unwrap()
}

fn number(id: &str, model: &str, form: &str, expect: &str) -> String {
    format!(
        "\n[[number]]\nid = \"{id}\"\nstatement = \"planted\"\nrecords = \"{RECORDS}\"\nmodel = \"{model}\"\nvariant = \"base\"\nmetric = \"sf_rate\"\n{form}\nrationale = \"planted\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\nexpect = \"{expect}\"\n"
    )
}

#[test]
fn the_committed_hand_made_numbers_pass_as_harness_cases() {
    let s = project(&handmade());
    let recs = run(&s);
    assert_eq!(recs.len(), 5);
    for r in &recs {
        assert_eq!(r.outcome.label(), "pass", "{}: {:?}", r.name, r.outcome);
        assert_eq!(r.kind, "metric_repro");
        assert!(
            r.files.iter().any(|f| f.path.ends_with("handmade.jsonl")),
            "{r:?}"
        );
    }
    assert_eq!(case(&recs, "MR-5").name, "metric_repro/hand/q4_0/all/MR-5");
}

#[test]
fn a_planted_number_off_by_more_than_its_tolerance_fails_with_a_ticket() {
    // MR-2 registered 0.85 ± 5%: the observed 0.8 is 0.05 away, beyond 0.0425.
    let text = handmade();
    let planted = text.replacen(
        "value = 0.8\ntolerance = 0.0",
        "value = 0.85\ntolerance = 0.05",
        1,
    );
    assert_ne!(planted, text);
    let s = project(&planted);
    let recs = run(&s);
    let r = case(&recs, "MR-2");
    let Outcome::Fail(ev) = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(ev.statistic.name(), "metric_deviation");
    assert!((ev.observed - 0.05).abs() < 1e-12, "{ev:?}");
    assert!((ev.bound - 0.0425).abs() < 1e-12, "{ev:?}");
    assert!(ev.also.contains(&("sc_rate".to_string(), 0.8)), "{ev:?}");
    assert!(
        ev.also.contains(&("registered value".to_string(), 0.85)),
        "{ev:?}"
    );
    let (lo, hi) = ev.interval.unwrap();
    assert!(lo < 0.8 && 0.8 < hi, "{ev:?}");
    let md = ticket_markdown(r, &Environment::current()).unwrap();
    for want in [
        "metric_repro: claim MR-2 falsified on hand/base",
        "sc_rate = 0.85 ± 5% (relative)",
        "metric_deviation = 0.05",
        "registered value | 0.85",
        "handmade.jsonl",
    ] {
        assert!(md.contains(want), "{want}: {md}");
    }
    // The other numbers still pass.
    let passed = recs.iter().filter(|r| r.outcome.label() == "pass").count();
    assert_eq!(passed, 4);
}

#[test]
fn a_negative_claim_that_stopped_holding_fails_and_a_missing_group_is_an_error() {
    // SF on hand/base is 7/15, interval about [0.2, 0.73]: "SF does NOT stay at or below 0.9"
    // is refuted by the whole interval, so the registered negative claim fails.
    let text = number(
        "PN-1",
        "hand",
        "bound = { op = \"<=\", value = 0.9 }",
        "fail",
    ) + &number("PN-2", "nobody", "value = 0.5\ntolerance = 0.0", "hold")
        + &number(
            "PN-3",
            "hand",
            "bound = { op = \">\", value = 0.1 }",
            "hold",
        );
    let s = project(&text);
    let recs = run(&s);
    let neg = case(&recs, "PN-1");
    assert_eq!(neg.outcome.label(), "fail", "{:?}", neg.outcome);
    let md = ticket_markdown(neg, &Environment::current()).unwrap();
    assert!(md.contains("held but was registered to fail"), "{md}");
    let Outcome::Error { message } = &case(&recs, "PN-2").outcome else {
        panic!("{:?}", case(&recs, "PN-2").outcome)
    };
    assert!(message.contains("no records of nobody/base"), "{message}");
    assert_eq!(case(&recs, "PN-3").outcome.label(), "pass");
}

#[test]
fn metric_repro_is_not_a_claim_table_kind_and_ids_stay_unique() {
    let e = groundtruth::claim::parse_str(
        "[[claim]]\nid = \"X\"\nkind = \"metric_repro\"\nstatement = \"s\"\nsubjects = { models = [\"m\"] }\n\
         bound = { statistic = \"metric_deviation\", op = \"<=\", value = 0.0 }\nrationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\n",
        std::path::Path::new("claims/x.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("claims/x.toml:1:") && e.contains("[[number]] tables"),
        "{e}"
    );
    // A number may not take the id of a registered claim.
    let s = project(&number(
        "QD-1",
        "hand",
        "value = 0.5\ntolerance = 0.0",
        "hold",
    ));
    let e = plan(&Project::new(&s.root), "numbers")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("number 'QD-1' has the id of claim 'QD-1'"),
        "{e}"
    );
}
