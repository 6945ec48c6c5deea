//! Every claim kind and every outcome path, shown on planted faults: a claim that must
//! fail fails (with a ticket), a missing model skips with its reason, a broken parent
//! skips its dependants, an exact-match claim on a registered variant is an error. Planted
//! faults are judged by the registered claims meant to catch them (`registered`,
//! `registered_on`), which the clean model passes in `good_input_passes_every_kind`.

mod common;

use common::{claim, judge_all, labels, register_gguf, registered, registered_on, setup};
use groundtruth::oracle::{self, Oracle};
use groundtruth::outcome::{Outcome, SkipReason};
use groundtruth::report::{ticket_markdown, Environment};
use std::path::Path;

const TINY_ORACLE: &str = "oracles/tiny-seeded/f32.json";

fn edit_oracle(root: &Path, f: impl FnOnce(&mut Oracle)) {
    let p = root.join(TINY_ORACLE);
    let mut o = oracle::read(&p).unwrap();
    f(&mut o);
    oracle::write(&p, &o).unwrap();
}

#[test]
fn good_input_passes_every_kind() {
    let s = setup();
    // The registered claims the planted faults below are judged by, on the clean model.
    let toml = [
        registered("TP-1"),
        registered("GP-3"),
        registered("OP-2"),
        registered("OP-7"),
        registered_on("CK-17", &["tiny-seeded"], Some(&["q8_0"])),
        registered("QD-1"),
        registered("CD-1"),
        registered("CS-1"),
        registered_on("DT-1", &["tiny-seeded"], Some(&["base"])),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, |_| {});
    for r in &recs {
        assert_eq!(r.outcome.label(), "pass", "{}: {:?}", r.name, r.outcome);
    }
    assert_eq!(recs.len(), 15 + 15 + 1 + 1 + 1 + 1 + 5 + 1 + 1);
}

#[test]
fn planted_tokenizer_fault_fails() {
    let s = setup();
    edit_oracle(&s.root, |o| o.cases[0].prompt_tokens[2] += 1);
    let recs = judge_all(&s.root, &registered("TP-1"), |_| {});
    let fails: Vec<_> = recs
        .iter()
        .filter(|r| r.outcome.label() == "fail")
        .collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].outcome.evidence().unwrap().observed, 1.0);
}

#[test]
fn planted_greedy_divergence_fails_with_a_ticket() {
    let s = setup();
    edit_oracle(&s.root, |o| {
        let c = &mut o.cases[0];
        // The oracle now "says" position 3 continues with a token outside the subject's
        // top-10, and the subject's own token is out of the oracle's list: no near-tie.
        let alt = (0u32..)
            .find(|id| c.top_logprobs[3].iter().all(|e| e.0 != *id))
            .unwrap();
        let own = c.tokens[3];
        c.tokens[3] = alt;
        c.top_logprobs[3].retain(|e| e.0 != own);
        c.top_logprobs[3].insert(0, (alt, -0.01));
    });
    let recs = judge_all(&s.root, &registered("GP-3"), |_| {});
    let fail = recs.iter().find(|r| r.scope == "capital").unwrap();
    let Outcome::Fail(ev) = &fail.outcome else {
        panic!("{:?}", fail.outcome)
    };
    assert_eq!(ev.comparison.as_ref().unwrap().divergence.position, Some(3));
    let env = Environment {
        groundtruth: "0.1.0".into(),
        crates: "candle-core 0.11.1".into(),
        rustc: "rustc".into(),
        platform: "linux/x86_64".into(),
        cpu: "cpu".into(),
        threads: 2,
    };
    let md = ticket_markdown(fail, &env).unwrap();
    insta::with_settings!({filters => vec![(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"), (r"[0-9a-f]{64}", "[SHA256]"), (r"\d+ threads", "[N] threads"), (r"(teacher_forced_\w+ \| )[-0-9.e]+", "$1[computed]")]}, {
        insta::assert_snapshot!(md);
    });
    assert!(recs
        .iter()
        .filter(|r| r.scope != "capital")
        .all(|r| r.outcome.label() == "pass"));
}

#[test]
fn planted_logprob_shift_fails_oracle_parity_and_skips_dependants() {
    let s = setup();
    edit_oracle(&s.root, |o| {
        for c in &mut o.cases {
            for e in &mut c.top_logprobs {
                for x in e.iter_mut() {
                    x.1 -= 0.01;
                }
            }
        }
    });
    let toml = [registered("OP-2"), registered("QD-1")].concat();
    let recs = judge_all(&s.root, &toml, |_| {});
    assert_eq!(labels(&recs), ["fail", "skip"]);
    let Outcome::Skip(SkipReason::PreconditionFailed { what }) = &recs[1].outcome else {
        panic!("{:?}", recs[1].outcome)
    };
    assert!(what.contains("parent fails OP-2"), "{what}");
}

#[test]
fn exact_match_claims_on_a_registered_variant_are_errors() {
    // A registered model's variant is not the oracle's file: an exact-match claim on it is
    // misregistered, and skipping it would hide that (only `check` skips a user's variant).
    let s = setup();
    let recs = judge_all(
        &s.root,
        &registered_on("OP-1", &["tiny-seeded"], Some(&["q8_0"])),
        |_| {},
    );
    let Outcome::Error { message } = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    assert!(
        message.contains("is not its oracle's model.sha256"),
        "{message}"
    );
}

#[test]
fn drift_from_a_parent_nothing_has_checked_is_not_judged() {
    // Before: a model without any registered parity claim passed its drift claims, though
    // nothing showed its parent was sound. Here tiny-seeded's export, registered under a
    // new name with no claims of its own.
    let s = setup();
    let export = s.root.join("export.gguf");
    let w = common::tiny_weights();
    groundtruth::model::save_gguf(
        &export,
        &w,
        &groundtruth::tokenizer::ByteTokenizer::gguf_metadata(),
    )
    .unwrap();
    let recs = judge_all(&s.root, &registered_on("QD-1", &["orphan"], None), |reg| {
        register_gguf(reg, "orphan", &export, None)
    });
    let Outcome::Skip(SkipReason::PreconditionNotEstablished { what }) = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    assert!(
        what.contains("no oracle_parity claim is registered for orphan"),
        "{what}"
    );
}

#[test]
fn planted_damage_fails_the_registered_claims_the_clean_model_passes() {
    let s = setup();
    let toml = [
        // A flipped exponent bit in an f32 matrix: the same storage type as the oracle's
        // model, so the parity claims of `check` judge it (the clean model passes CK-9 in
        // tests/check.rs). On this random model only top-1 sees it: its logits are so
        // flat that the KL bands (CK-10 to CK-12) stay far below their bounds.
        registered_on("CK-9", &["tiny-seeded"], Some(&["flip-exp"])),
        // Damage below every behavioural floor: CD-1's detection bound cannot see it (CD-2
        // registers exactly that as a negative claim).
        registered_on("CD-1", &["tiny-seeded"], Some(&["flip-mantissa"])),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, |_| {});
    for r in &recs {
        eprintln!(
            "{}: {}",
            r.name,
            r.outcome
                .evidence()
                .map(|e| e.summary())
                .unwrap_or_else(|| format!("{:?}", r.outcome))
        );
    }
    assert_eq!(labels(&recs), ["fail", "fail"], "{recs:#?}");
}

#[test]
fn consistency_can_bound_the_distributions_and_they_catch_activation_rounding() {
    let s = setup();
    let toml = [
        claim(
            "G",
            "consistency",
            "\"base\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 1e-9",
            "compare = \"kv_cache\"",
        ),
        claim(
            "H",
            "consistency",
            "\"base\"",
            "statistic = \"top1_agreement\", op = \">=\", value = 1",
            "compare = \"batch\"",
        ),
        // The planted fault: 8-bit activations on the quantized path, which an exact bound must see.
        claim(
            "C",
            "consistency",
            "\"q4_0\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 1e-12",
            "compare = \"quant_matmul\"",
        ),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, |_| {});
    assert_eq!(labels(&recs), ["pass", "pass", "fail"], "{recs:#?}");
    let ev = recs[2].outcome.evidence().unwrap();
    assert!(ev.observed > 1e-12 && ev.observed < 1e-2, "{ev:?}");
    assert!(
        ev.interval.is_some()
            && ev
                .also
                .iter()
                .any(|(k, v)| k == "max_abs_logit_delta" && *v > 0.0),
        "{ev:?}"
    );
}

#[test]
fn registered_negative_claims_pass_when_violated_and_fail_when_they_hold() {
    let s = setup();
    // CD-2 as registered (a flip of the lowest mantissa bit is not detectable) and the same
    // negative claim made about damage that is detectable, which must then fail.
    let toml = [
        registered("CD-2"),
        claim(
            "N2",
            "corruption_detect",
            "\"scale-norm\"",
            "statistic = \"kl_max\", op = \">=\", value = 1e-6",
            "expect = \"fail\"",
        ),
    ]
    .concat();
    assert_eq!(labels(&judge_all(&s.root, &toml, |_| {})), ["pass", "fail"]);
}

#[test]
fn missing_model_skips_with_the_fetch_command() {
    let s = setup();
    let toml = registered_on("DT-1", &["tiny-seeded"], Some(&["base"]));
    let recs = judge_all(&s.root, &toml, common::unfetched);
    let Outcome::Skip(reason) = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    let text = reason.to_string();
    assert!(
        text.contains("no-such-model.gguf") && text.contains("run ci/fetch-models.sh"),
        "{text}"
    );
}

#[test]
fn a_broken_oracle_is_an_error_naming_file_and_field() {
    let s = setup();
    let p = s.root.join(TINY_ORACLE);
    let text =
        std::fs::read_to_string(&p)
            .unwrap()
            .replacen("\"top_k\": 10", "\"top_k\": \"ten\"", 1);
    std::fs::write(&p, text).unwrap();
    let recs = judge_all(&s.root, &registered("OP-1"), |_| {});
    let Outcome::Error { message } = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    assert!(
        message.contains("f32.json") && message.contains("top_k"),
        "{message}"
    );
}

#[test]
fn ppl_parity_passes_on_the_oracle_and_fails_on_a_shifted_or_differently_scored_one() {
    let op5 = registered("OP-5");
    let good = setup();
    let recs = judge_all(&good.root, &op5, |_| {});
    assert_eq!(labels(&recs), ["pass"], "{recs:#?}");
    let ev = recs[0].outcome.evidence().unwrap();
    assert_eq!(ev.n, 2040);
    // A 1% perplexity gap is what a half-scored or off-by-one context would produce.
    let shifted = setup();
    edit_oracle(&shifted.root, |o| {
        o.perplexity.as_mut().unwrap().ppl *= 1.01
    });
    let recs = judge_all(&shifted.root, &op5, |_| {});
    assert_eq!(labels(&recs), ["fail"], "{recs:#?}");
    // A different scored-token count means a different rule: not comparable, an error.
    let rule = setup();
    edit_oracle(&rule.root, |o| o.perplexity.as_mut().unwrap().n_scored += 1);
    let recs = judge_all(&rule.root, &op5, |_| {});
    let Outcome::Error { message } = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    assert!(message.contains("scored 2040 tokens"), "{message}");
    // An oracle scored with BOS where the tokenizer adds none used another tokenization
    // rule: an error naming it, never a comparison.
    let bos = setup();
    edit_oracle(&bos.root, |o| o.decoding.add_bos = true);
    let recs = judge_all(&bos.root, &op5, |_| {});
    let Outcome::Error { message } = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    assert!(
        message.contains("add_bos true") && message.contains("tokenization rule"),
        "{message}"
    );
    // No perplexity record at all fails closed.
    let none = setup();
    edit_oracle(&none.root, |o| o.perplexity = None);
    let recs = judge_all(&none.root, &op5, |_| {});
    assert_eq!(labels(&recs), ["error"], "{recs:#?}");
}

#[test]
fn a_runtime_case_measures_that_runtime_and_a_missing_gpu_is_a_skip() {
    // `runtimes` makes one case per runtime, judged on it against the CPU's f32. bf16
    // autocast on the CPU must be measured as different from f32 (the planted fault is an
    // exact bound: a runtime case that compared f32 with f32 would pass it), within
    // rounding; a CUDA case without a GPU is a skip naming why, never a pass.
    let s = setup();
    let bf16 = "runtimes = [\"cpu-bf16\"]";
    let toml = [
        claim(
            "R1",
            "quant_drift",
            "\"base\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 0.01",
            bf16,
        ),
        claim(
            "R2",
            "quant_drift",
            "\"base\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 1e-12",
            bf16,
        ),
        claim(
            "R3",
            "quant_drift",
            "\"q8_0\"",
            "statistic = \"kl_mean\", op = \"<=\", value = 0.01",
            "runtimes = [\"cpu\", \"cuda\"]",
        ),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, |_| {});
    let names: Vec<&str> = recs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "quant_drift/tiny-seeded/base/all/R1@cpu-bf16",
            "quant_drift/tiny-seeded/base/all/R2@cpu-bf16",
            "quant_drift/tiny-seeded/q8_0/all/R3",
            "quant_drift/tiny-seeded/q8_0/all/R3@cuda"
        ]
    );
    assert_eq!(recs[0].runtime, "cpu-bf16");
    assert_eq!(labels(&recs)[..3], ["pass", "fail", "pass"], "{recs:#?}");
    let ev = recs[1].outcome.evidence().unwrap();
    assert!(ev.observed > 1e-12 && ev.observed < 0.01, "{ev:?}");
    assert!(
        ev.numerical_path.contains("bf16 autocast") && ev.numerical_path.contains("vs parent"),
        "{}",
        ev.numerical_path
    );
    if groundtruth::run::DeviceSpec::Cuda(0).open().is_err() {
        let Outcome::Skip(r @ SkipReason::NoDevice { .. }) = &recs[3].outcome else {
            panic!("{:?}", recs[3].outcome)
        };
        assert!(r.to_string().starts_with("no GPU device"), "{r}");
    }
}
