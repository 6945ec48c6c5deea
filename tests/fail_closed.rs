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
        claim(
            "P",
            "oracle_parity",
            "\"base\"",
            "statistic = \"top1_agreement\", op = \">=\", value = 1",
            "",
        ),
        claim(
            "G",
            "greedy_parity",
            "\"base\"",
            "statistic = \"greedy_match\", op = \">=\", value = 1",
            "",
        ),
        claim(
            "Q",
            "quant_drift",
            "\"q8_0\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 1e-2",
            "",
        ),
    ]
    .concat();
    // The clean registry holds every case (greedy parity has one per prompt); one changed
    // seed makes every one an error.
    let clean = judge_all(&s.root, &toml, |_| {});
    assert!(
        clean.len() > 3 && labels(&clean).iter().all(|l| *l == "pass"),
        "{:?}",
        labels(&clean)
    );
    let recs = judge_all(&s.root, &toml, |reg| {
        let m = reg.iter_mut().find(|m| m.name == "tiny-seeded").unwrap();
        m.seeded.as_mut().unwrap().seed += 1;
    });
    assert_eq!(recs.len(), clean.len());
    for r in &recs {
        let m = message(&r.outcome);
        match r.claim_id.as_str() {
            "Q" => assert!(
                m.contains("parent check P") && m.contains("is not its oracle's model.sha256"),
                "{m}"
            ),
            _ => assert!(
                m.contains("is not its oracle's model.sha256"),
                "{}: {m}",
                r.name
            ),
        }
    }
}

#[test]
fn forbidding_skips_turns_a_missing_model_into_an_error() {
    let s = setup();
    let toml = claim(
        "M",
        "determinism",
        "\"base\"",
        "statistic = \"bit_mismatches\", op = \"==\", value = 0",
        "",
    );
    assert_eq!(labels(&judge_all(&s.root, &toml, unfetched)), ["skip"]);
    let recs = judge_all_under(FORBID, &s.root, &toml, unfetched);
    let m = message(&recs[0].outcome);
    assert!(
        m.contains("GROUNDTRUTH_FORBID_SKIP") && m.contains("no-such-model.gguf"),
        "{m}"
    );
}

#[test]
fn forbidding_skips_spares_only_no_device() {
    let no_device = Outcome::Skip(SkipReason::NoDevice {
        device: "CUDA device".into(),
    });
    assert_eq!(FORBID.enforce(no_device.clone()), no_device);
    for r in [
        SkipReason::ModelMissing {
            path: "m.gguf".into(),
            fetch: "ci/fetch-models.sh".into(),
        },
        SkipReason::PreconditionFailed {
            what: "parent fails P".into(),
        },
        SkipReason::NotTheOracleFile {
            subject_sha256: "a".into(),
            oracle_sha256: "b".into(),
        },
    ] {
        assert_eq!(
            FORBID.enforce(Outcome::Skip(r.clone())).label(),
            "error",
            "{r}"
        );
        assert_eq!(
            SkipPolicy::Registered { forbid: false }
                .enforce(Outcome::Skip(r.clone()))
                .label(),
            "skip",
            "{r}"
        );
        assert_eq!(
            SkipPolicy::UserCheckpoint
                .enforce(Outcome::Skip(r.clone()))
                .label(),
            "skip",
            "{r}"
        );
    }
}

#[test]
fn forbidding_skips_turns_a_failed_precondition_into_an_error() {
    let s = setup();
    // The parent's own parity claim is skipped (model missing): its dependant cannot pass
    // on that, and under the policy neither case may skip.
    let toml = [
        claim(
            "P",
            "oracle_parity",
            "\"base\"",
            "statistic = \"top1_agreement\", op = \">=\", value = 1",
            "",
        ),
        claim(
            "Q",
            "quant_drift",
            "\"q8_0\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 1e-2",
            "",
        ),
    ]
    .concat();
    assert_eq!(
        labels(&judge_all(&s.root, &toml, unfetched)),
        ["skip", "skip"]
    );
    assert_eq!(
        labels(&judge_all_under(FORBID, &s.root, &toml, unfetched)),
        ["error", "error"]
    );
}

fn run(root: &std::path::Path, args: &[&str], forbid: bool) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_groundtruth"));
    c.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("GROUNDTRUTH_OUT");
    match forbid {
        true => c.env(groundtruth::judge::FORBID_SKIP_VAR, "1"),
        false => c.env_remove(groundtruth::judge::FORBID_SKIP_VAR),
    };
    c.output().unwrap()
}

fn all_output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A suite `planted` of one claim (`toml`) in a scratch project.
fn planted_suite(toml: &str) -> common::Setup {
    let s = setup();
    std::fs::write(s.root.join("claims/zz_planted.toml"), toml).unwrap();
    std::fs::write(
        s.root.join("suites/planted.toml"),
        "description = \"planted\"\nclaims = [\"PL-1\"]\n",
    )
    .unwrap();
    s
}

#[test]
fn groundtruth_run_with_a_missing_model_exits_3_and_under_forbid_skip_2() {
    let s = planted_suite(&common::claim_on(
        "unfetched",
        "PL-1",
        "determinism",
        "\"base\"",
        "statistic = \"bit_mismatches\", op = \"==\", value = 0",
        "",
    ));
    let models = s.root.join("configs/models.toml");
    let mut text = std::fs::read_to_string(&models).unwrap();
    text.push_str(&format!("\n[[model]]\nname = \"unfetched\"\ndescription = \"never fetched\"\ngguf = {{ file = \"no-such-model.gguf\", sha256 = \"{}\", fetch = \"ci/fetch-models.sh\" }}\n", "0".repeat(64)));
    std::fs::write(&models, text).unwrap();
    let o = run(&s.root, &["run", "--suite", "planted"], false);
    assert_eq!(o.status.code(), Some(3), "{}", all_output(&o));
    let o = run(&s.root, &["run", "--suite", "planted"], true);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(
        all_output(&o).contains("GROUNDTRUTH_FORBID_SKIP"),
        "{}",
        all_output(&o)
    );
}

#[test]
fn a_missing_corpus_is_exit_2_with_or_without_forbid_skip() {
    let s = planted_suite(&common::claim_on(
        "tiny_1m",
        "PL-1",
        "train_sanity",
        "\"base\"",
        "statistic = \"loss_gap_nats\", op = \"<=\", value = 0.05",
        "check = \"init_loss\"",
    ));
    // No corpus where configs/recipes.toml names it.
    std::fs::remove_file(s.root.join("data/tinyshakespeare.txt")).unwrap();
    for forbid in [false, true] {
        let o = run(&s.root, &["run", "--suite", "planted"], forbid);
        assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
        assert!(
            all_output(&o).contains("tinyshakespeare.txt: no such file"),
            "{}",
            all_output(&o)
        );
    }
}

#[test]
fn a_registered_folder_whose_file_changed_is_an_error() {
    let s = planted_suite(&common::claim_on(
        "tiny_1m",
        "PL-1",
        "oracle_parity",
        "\"base\"",
        "statistic = \"top1_agreement\", op = \">=\", value = 1",
        "",
    ));
    assert_eq!(
        run(&s.root, &["run", "--suite", "planted"], false)
            .status
            .code(),
        Some(0)
    );
    // One weight byte changed (the last byte of the file: inside the tensor data).
    let st = s.root.join("models/tiny_1m/model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&st, bytes).unwrap();
    let o = run(&s.root, &["run", "--suite", "planted"], false);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(
        all_output(&o).contains("configs/models.toml registers for 'tiny_1m'"),
        "{}",
        all_output(&o)
    );
}
