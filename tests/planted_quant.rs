//! Planted faults for the quantization and format claim kinds: each kind fails (or skips,
//! never passes vacuously) when its fault is there, and passes without it.

mod common;

use candle_core::quantized::gguf_file::Value;
use common::{
    claim, judge_all, labels, register_gguf, registered, registered_on, setup, tiny_weights,
};
use groundtruth::inspect::{findings, inspect};
use groundtruth::model::{save_gguf, RopeLayout};
use groundtruth::outcome::{Outcome, SkipReason};
use groundtruth::tokenizer::ByteTokenizer;
use std::path::Path;

const Q8: &str = "statistic = \"kl_mean\", op = \"<=\", value = 0.01";

/// Rewrites one fixture file through `edit` and its SHA-256 in the manifest, as a
/// regenerated (but wrong) fixture would look.
fn edit_fixture(root: &Path, file: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let dir = root.join("tests/fixtures/quant-ref");
    let path = dir.join(file);
    let old = common::sha256_file(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let manifest = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(&old, &common::sha256_hex(&bytes));
    std::fs::write(manifest, text).unwrap();
}

#[test]
fn a_wrong_scale_in_one_block_fails_reference_agreement() {
    let s = setup();
    let ra = registered_on("RA-1", &["tiny-seeded"], Some(&["q8_0", "q4_1"]));
    assert_eq!(labels(&judge_all(&s.root, &ra, |_| {})), ["pass", "pass"]);
    // Q8_0 blocks are 34 bytes, the f16 scale first: double block 3's scale.
    edit_fixture(&s.root, "tiny-seeded.q8_0", |b| {
        let d = half::f16::from_le_bytes([b[3 * 34], b[3 * 34 + 1]]);
        b[3 * 34..3 * 34 + 2].copy_from_slice(&half::f16::from_f32(2.0 * d.to_f32()).to_le_bytes());
    });
    let recs = judge_all(&s.root, &ra, |_| {});
    assert_eq!(labels(&recs), ["fail", "pass"]);
    let ev = recs[0].outcome.evidence().unwrap();
    assert_eq!(ev.observed, 1.0);
    assert!(
        ev.also
            .contains(&("blocks_differing[tiny-seeded]".to_string(), 1.0)),
        "{:?}",
        ev.also
    );
    assert!(
        ev.numerical_path.contains("tiny-seeded block 3"),
        "{}",
        ev.numerical_path
    );
}

#[test]
fn a_stale_fixture_input_is_an_error_not_a_verdict() {
    let s = setup();
    edit_fixture(&s.root, "tiny-seeded.f32", |b| b[5] ^= 1);
    let recs = judge_all(
        &s.root,
        &registered_on("RA-1", &["tiny-seeded"], Some(&["q8_0"])),
        |_| {},
    );
    let Outcome::Error { message } = &recs[0].outcome else {
        panic!("{:?}", recs[0].outcome)
    };
    assert!(
        message.contains("manifest.json")
            && message.contains("input differs from the model's rows at value 1"),
        "{message}"
    );
}

#[test]
fn quant_order_fails_on_a_reversed_chain_and_skips_when_the_head_is_broken() {
    let s = setup();
    let order = |variants: &str, stat: &str| claim("O", "quant_order", variants, stat, "");
    let head = |v: &str, bound: &str| claim("H", "quant_drift", &format!("\"{v}\""), bound, "");
    let kl = "statistic = \"kl_order_violations\", op = \"==\", value = 0";
    // More bits listed last: Q4_0 (fine by its own bound) "drifts more" than Q8_0.
    let recs = judge_all(
        &s.root,
        &[head("q4_0", Q8), order("\"q4_0\", \"q8_0\"", kl)].concat(),
        |_| {},
    );
    assert_eq!(labels(&recs), ["pass", "fail"]);
    assert_eq!(recs[1].outcome.evidence().unwrap().observed, 1.0);
    // The right order passes; with the head failing its own bound the order is not judged.
    assert_eq!(
        labels(&judge_all(
            &s.root,
            &[head("q8_0", Q8), order("\"q8_0\", \"q4_0\"", kl)].concat(),
            |_| {}
        )),
        ["pass", "pass"]
    );
    let broken = head(
        "q8_0",
        "statistic = \"kl_mean\", op = \"<=\", value = 1e-12",
    );
    let recs = judge_all(
        &s.root,
        &[
            broken,
            order(
                "\"q8_0\", \"q4_0\"",
                "statistic = \"top1_mismatch_excess\", op = \"<=\", value = 1",
            ),
        ]
        .concat(),
        |_| {},
    );
    assert_eq!(labels(&recs), ["fail", "skip"]);
    let Outcome::Skip(SkipReason::PreconditionFailed { what }) = &recs[1].outcome else {
        panic!("{:?}", recs[1].outcome)
    };
    assert!(what.contains("q8_0, the chain's head, fails H"), "{what}");
    // A model whose parent is established (EP-7 holds on tiny-seeded's export, registered
    // under a new name) but whose chain head no quant_drift claim covers: not judged.
    let export = write_tiny(&s.root, "orphan", &tiny_weights(), vec![]);
    let register = |reg: &mut Vec<groundtruth::registry::ModelEntry>| {
        register_gguf(
            reg,
            "orphan",
            &export,
            Some("oracles/tiny-seeded-gguf/llamacpp-f32.json"),
        )
    };
    let toml = [
        registered_on("EP-7", &["orphan"], None),
        common::claim_on("orphan", "O", "quant_order", "\"q8_0\", \"q4_0\"", kl, ""),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, register);
    assert_eq!(recs[0].outcome.label(), "pass", "{:?}", recs[0].outcome);
    assert!(
        matches!(&recs[1].outcome, Outcome::Skip(SkipReason::PreconditionNotEstablished { what }) if what.contains("no quant_drift claim")),
        "{:?}",
        recs[1].outcome
    );
}

#[test]
fn damage_fails_the_perplexity_and_free_running_statistics() {
    let s = setup();
    let toml = [
        claim(
            "P",
            "corruption_detect",
            "\"scale-norm\"",
            "statistic = \"ppl_ratio\", op = \"<=\", value = 1.001",
            "",
        ),
        claim(
            "F",
            "corruption_detect",
            "\"flip-exp\"",
            "statistic = \"first_divergence_mean\", op = \">=\", value = 24",
            "",
        ),
        claim(
            "Q",
            "quant_drift",
            "\"q8_0\"",
            "statistic = \"first_divergence_mean\", op = \">=\", value = 24",
            "",
        ),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, |_| {});
    assert_eq!(labels(&recs), ["fail", "fail", "pass"], "{recs:#?}");
}

/// Writes tiny-seeded as a GGUF with extra metadata, returning its path.
fn write_tiny(
    root: &Path,
    name: &str,
    weights: &groundtruth::model::Weights,
    extra: Vec<(String, Value)>,
) -> std::path::PathBuf {
    let path = root.join(format!("{name}.gguf"));
    let mut meta = ByteTokenizer::gguf_metadata();
    meta.extend(extra);
    save_gguf(&path, weights, &meta).unwrap();
    path
}

#[test]
fn structure_claims_fail_on_what_a_broken_converter_writes() {
    let s = setup();
    let w = tiny_weights();
    let ok = write_tiny(&s.root, "ok", &w, vec![]);
    let claims_says_q8 = write_tiny(
        &s.root,
        "claims-q8",
        &w,
        vec![("general.file_type".into(), Value::U32(7))],
    );
    let zeroed =
        groundtruth::transform::corrupt(&w, groundtruth::variant::Corruption::ZeroTensor, 0, &[])
            .unwrap()
            .0;
    let dead = write_tiny(&s.root, "dead", &zeroed, vec![]);
    let mut extra_token = ByteTokenizer::gguf_metadata();
    if let Some((_, Value::Array(t))) = extra_token
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
    {
        t.push(Value::String("<extra>".into()));
    }
    let path = s.root.join("vocab.gguf");
    save_gguf(
        &path,
        &w,
        &extra_token
            .into_iter()
            .map(|(k, v)| {
                if k == "tokenizer.ggml.token_type" {
                    (k, Value::Array(vec![Value::I32(1); 257]))
                } else {
                    (k, v)
                }
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    // The registered structure claims on what a broken converter writes (and on a good
    // file, which passes them); ST-12 is the registered negative claim about bf16.
    let st = |id: &str, model: &str, variant: &str| registered_on(id, &[model], Some(&[variant]));
    let toml = [
        st("ST-2", "ok", "base"),
        st("ST-2", "claims-q8", "base"),
        st("ST-3", "dead", "base"),
        st("ST-1", "vocab", "base"),
        registered("ST-12"),
        st("ST-4", "ok", "q8_0"),
    ]
    .concat();
    let recs = judge_all(&s.root, &toml, |reg| {
        for (name, p) in [
            ("ok", &ok),
            ("claims-q8", &claims_says_q8),
            ("dead", &dead),
            ("vocab", &path),
        ] {
            register_gguf(reg, name, p, None);
        }
    });
    assert_eq!(
        labels(&recs),
        ["pass", "fail", "fail", "fail", "pass", "pass"],
        "{recs:#?}"
    );
    assert!(
        recs[1]
            .outcome
            .evidence()
            .unwrap()
            .numerical_path
            .contains("declared q8_0"),
        "{:?}",
        recs[1].outcome
    );
    assert!(
        recs[2]
            .outcome
            .evidence()
            .unwrap()
            .numerical_path
            .contains("every value is zero"),
        "{:?}",
        recs[2].outcome
    );
    assert!(
        recs[3]
            .outcome
            .evidence()
            .unwrap()
            .numerical_path
            .contains("257 entries"),
        "{:?}",
        recs[3].outcome
    );
}

/// Renames `from` to `to` (same length) in a GGUF's header.
fn rename_tensor(src: &Path, dst: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut b = std::fs::read(src).unwrap();
    let at = b
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap();
    b[at..at + to.len()].copy_from_slice(to.as_bytes());
    std::fs::write(dst, b).unwrap();
}

#[test]
fn a_renamed_or_changed_tensor_is_a_layout_and_round_trip_mismatch() {
    let s = setup();
    let ok = write_tiny(&s.root, "ok", &tiny_weights(), vec![]);
    let renamed = s.root.join("renamed.gguf");
    rename_tensor(&ok, &renamed, "blk.0.attn_q.weight", "blk.0.attn_x.weight");
    let changed = s.root.join("changed.gguf");
    let mut b = std::fs::read(&ok).unwrap();
    let n = b.len();
    b[n - 4] ^= 0x40;
    std::fs::write(&changed, b).unwrap();
    let (a, r, c) = (
        inspect(&ok).unwrap(),
        inspect(&renamed).unwrap(),
        inspect(&changed).unwrap(),
    );
    assert!(
        findings::layout_mismatches(&a, &a).is_empty()
            && findings::tensor_mismatches(&a, &a).is_empty()
    );
    assert_eq!(findings::layout_mismatches(&a, &r).len(), 1);
    assert_eq!(
        findings::tensor_mismatches(&a, &r).len(),
        2,
        "one missing, one new"
    );
    assert!(findings::layout_mismatches(&a, &c).is_empty());
    assert_eq!(
        findings::tensor_mismatches(&a, &c),
        ["blk.1.ffn_down.weight: stored bytes differ"]
    );
}

#[test]
fn an_export_without_the_qk_permutation_fails_against_llama_cpp() {
    let s = setup();
    let w = tiny_weights();
    // Rows left in HF order but labelled as llama.cpp's: save_gguf then permutes nothing.
    let mut unpermuted = w.clone();
    unpermuted.rope = RopeLayout::Interleaved;
    let bad = write_tiny(&s.root, "noperm", &unpermuted, vec![]);
    // The random model's attention is nearly uniform (q·k ~ 1e-3), so RoPE's layout moves
    // its log-probabilities by only ~5e-3: EP-4's 0.01 cannot see this fault on tiny-seeded.
    // EP-7 (registered for it) holds every f32 GGUF of the model to 2e-3: the export passes,
    // the file without the permutation fails.
    let ep4 = registered_on("EP-4", &["noperm"], None);
    let ep7 = registered_on("EP-7", &["tiny-seeded-gguf", "noperm"], None);
    let register = |reg: &mut Vec<groundtruth::registry::ModelEntry>| {
        register_gguf(
            reg,
            "noperm",
            &bad,
            Some("oracles/tiny-seeded-gguf/llamacpp-f32.json"),
        )
    };
    let recs = judge_all(&s.root, &ep7, register);
    assert_eq!(labels(&recs), ["pass", "fail"], "{recs:#?}");
    // EP-4 is exact-match: it refuses any file but the oracle's rather than judging it.
    let recs = judge_all(&s.root, &ep4, register);
    assert!(
        matches!(&recs[0].outcome, Outcome::Error { message } if message.contains("is not its oracle's model.sha256")),
        "{:?}",
        recs[0].outcome
    );
}

#[test]
fn the_export_oracle_names_exactly_the_bytes_the_export_writes() {
    // Exact-match claims skip (not fail) on a file that is not the oracle's: without this
    // test a change to the export format would silently turn EP-2..EP-4 into skips.
    let s = setup();
    let recs = judge_all(&s.root, &registered("EP-3"), |_| {});
    assert!(
        matches!(recs[0].outcome, Outcome::Pass(_)),
        "the export no longer writes the bytes oracles/tiny-seeded-gguf/llamacpp-f32.json was made from: rerun ci/gen-export-oracle.sh\n{:?}",
        recs[0].outcome
    );
}
