//! Skips never stand in for evidence: a registered model that is not its oracle's file is
//! an error, and under `GROUNDTRUTH_FORBID_SKIP` every skip but "no device" is one too.

mod common;

use common::{claim, judge_all, judge_all_under, labels, setup, unfetched};
use groundtruth::judge::SkipPolicy;
use groundtruth::outcome::{Outcome, SkipReason};

const FORBID: SkipPolicy = SkipPolicy::Registered { forbid: true };

fn message(o: &Outcome) -> &str {
    match o {
        Outcome::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_registered_model_whose_seed_changed_is_an_error_not_a_skip() {
    let s = setup();
    let toml = [
        claim("P", "oracle_parity", "\"base\"", "statistic = \"top1_agreement\", op = \">=\", value = 1", ""),
        claim("G", "greedy_parity", "\"base\"", "statistic = \"greedy_match\", op = \">=\", value = 1", ""),
        claim("Q", "quant_drift", "\"q8_0\"", "statistic = \"kl_mean\", op = \"<=\", value = 1e-2", ""),
    ]
    .concat();
    // The clean registry holds all three; one changed seed makes every one an error.
    assert_eq!(labels(&judge_all(&s.root, &toml, |_| {})), ["pass", "pass", "pass"]);
    let recs = judge_all(&s.root, &toml, |reg| {
        let m = reg.iter_mut().find(|m| m.name == "tiny-seeded").unwrap();
        m.seeded.as_mut().unwrap().seed += 1;
    });
    assert_eq!(labels(&recs), ["error", "error", "error"], "{recs:#?}");
    assert!(message(&recs[0].outcome).contains("is not its oracle's model.sha256"), "{:?}", recs[0].outcome);
    assert!(message(&recs[2].outcome).contains("parent check P"), "{:?}", recs[2].outcome);
}

#[test]
fn forbidding_skips_turns_a_missing_model_into_an_error() {
    let s = setup();
    let toml = claim("M", "determinism", "\"base\"", "statistic = \"bit_mismatches\", op = \"==\", value = 0", "");
    assert_eq!(labels(&judge_all(&s.root, &toml, unfetched)), ["skip"]);
    let recs = judge_all_under(FORBID, &s.root, &toml, unfetched);
    let m = message(&recs[0].outcome);
    assert!(m.contains("GROUNDTRUTH_FORBID_SKIP") && m.contains("no-such-model.gguf"), "{m}");
}

#[test]
fn forbidding_skips_spares_only_no_device() {
    let no_device = Outcome::Skip(SkipReason::NoDevice { device: "CUDA device".into() });
    assert_eq!(FORBID.enforce(no_device.clone()), no_device);
    for r in [
        SkipReason::ModelMissing { path: "m.gguf".into(), fetch: "ci/fetch-models.sh".into() },
        SkipReason::PreconditionFailed { what: "parent fails P".into() },
        SkipReason::NotTheOracleFile { subject_sha256: "a".into(), oracle_sha256: "b".into() },
    ] {
        assert_eq!(FORBID.enforce(Outcome::Skip(r.clone())).label(), "error", "{r}");
        assert_eq!(SkipPolicy::Registered { forbid: false }.enforce(Outcome::Skip(r.clone())).label(), "skip", "{r}");
        assert_eq!(SkipPolicy::UserCheckpoint.enforce(Outcome::Skip(r.clone())).label(), "skip", "{r}");
    }
}

#[test]
fn forbidding_skips_turns_a_failed_precondition_into_an_error() {
    let s = setup();
    // The parent's own parity claim is skipped (model missing): its dependant cannot pass
    // on that, and under the policy neither case may skip.
    let toml = [
        claim("P", "oracle_parity", "\"base\"", "statistic = \"top1_agreement\", op = \">=\", value = 1", ""),
        claim("Q", "quant_drift", "\"q8_0\"", "statistic = \"kl_mean\", op = \"<=\", value = 1e-2", ""),
    ]
    .concat();
    assert_eq!(labels(&judge_all(&s.root, &toml, unfetched)), ["skip", "skip"]);
    assert_eq!(labels(&judge_all_under(FORBID, &s.root, &toml, unfetched)), ["error", "error"]);
}
