//! Tokenizer tests: the byte tokenizer against its `tokenizer.json`, a synthetic GGUF
//! vocabulary, and SmolLM2's GGUF tokenizer against llama.cpp's own tokenization.

use super::*;
use candle_core::quantized::gguf_file::Value;
use proptest::prelude::*;
use std::collections::HashMap;

const SAMPLES: &[&str] = &[
    "",
    "a",
    "Hello, world!",
    " leading space",
    "trailing space ",
    "tabs\tand\nnewlines\r\n",
    "Café au lait et crème brûlée:",
    "日本の首都は",
    "I love pizza 🍕 because",
    "👨‍👩‍👧‍👦🇫🇷",
    "\u{0}\u{1}\u{7f}\u{80}\u{ff}\u{100}",
    "<|im_start|>user\n",
    "  Indented   text\twith\ttabs\n\n",
];

#[test]
fn byte_tokenizer_is_utf8_bytes() {
    let t = ByteTokenizer;
    for s in SAMPLES {
        let ids = t.encode(s).unwrap();
        assert_eq!(ids, s.bytes().map(u32::from).collect::<Vec<_>>());
        assert_eq!(t.decode(&ids).unwrap(), *s);
    }
    assert_eq!(t.vocab_size(), 256);
    assert!(matches!(
        t.decode(&[65, 256]),
        Err(TokenizerError::IdOutOfRange {
            id: 256,
            pos: 1,
            ..
        })
    ));
}

fn byte_json_tokenizer() -> tokenizers::Tokenizer {
    ByteTokenizer::hf_tokenizer_json()
        .parse()
        .expect("the generated tokenizer.json must load")
}

#[test]
fn byte_tokenizer_json_encodes_exact_bytes() {
    let hf = byte_json_tokenizer();
    assert_eq!(hf.get_vocab_size(true), 256);
    for s in SAMPLES {
        let enc = hf.encode(*s, false).unwrap();
        assert_eq!(
            enc.get_ids(),
            s.bytes().map(u32::from).collect::<Vec<_>>().as_slice(),
            "{s:?}"
        );
        assert_eq!(hf.decode(enc.get_ids(), false).unwrap(), *s, "{s:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn byte_tokenizer_json_agrees_on_any_string(s in any::<String>()) {
        let hf = byte_json_tokenizer();
        let want: Vec<u32> = s.bytes().map(u32::from).collect();
        let enc = hf.encode(s.as_str(), false).unwrap();
        prop_assert_eq!(enc.get_ids(), want.as_slice());
        prop_assert_eq!(ByteTokenizer.decode(&want).unwrap(), s);
    }
}

/// A tiny byte-level vocabulary: the 256 byte characters, two merges, one control token.
fn synthetic_metadata(pre: &str) -> HashMap<String, Value> {
    let chars = super::byte::gpt2_byte_chars();
    let mut tokens: Vec<String> = vec!["<|im_start|>".into()];
    tokens.extend(chars.iter().map(|c| c.to_string()));
    tokens.push("Ġt".into());
    tokens.push("Ġth".into());
    let mut types = vec![3i32];
    types.extend(std::iter::repeat_n(1, tokens.len() - 1));
    let s = |v: &str| Value::String(v.into());
    HashMap::from([
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s(pre)),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(vec![s("Ġ t"), s("Ġt h")]),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(0)),
    ])
}

#[test]
fn gguf_synthetic_vocabulary() {
    let t = GgufTokenizer::from_metadata(&synthetic_metadata("smollm")).unwrap();
    let byte = |b: u8| u32::from(b) + 1;
    // No prefix space: "th" is two bytes, " th" merges; the control token is one id.
    assert_eq!(t.encode("th").unwrap(), vec![byte(b't'), byte(b'h')]);
    assert_eq!(t.encode(" th").unwrap(), vec![258]);
    assert_eq!(t.encode("<|im_start|> th").unwrap(), vec![0, 258]);
    assert_eq!(t.encode("x<|im_start|>").unwrap(), vec![byte(b'x'), 0]);
    assert_eq!(t.vocab_size(), 259);
    assert_eq!((t.bos(), t.eos(), t.add_bos()), (Some(0), Some(0), false));
    for s in SAMPLES {
        assert_eq!(t.decode(&t.encode(s).unwrap()).unwrap(), *s, "{s:?}");
    }
    assert!(matches!(
        t.decode(&[259]),
        Err(TokenizerError::IdOutOfRange { .. })
    ));
}

#[test]
fn gguf_metadata_errors_name_the_key() {
    let err =
        |md: HashMap<String, Value>| GgufTokenizer::from_metadata(&md).unwrap_err().to_string();
    let mut md = synthetic_metadata("smollm");
    md.insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
    assert!(err(md).contains("tokenizer.ggml.model is 'llama'"));
    assert!(err(synthetic_metadata("klingon"))
        .contains("tokenizer.ggml.pre 'klingon' is not supported"));
    let mut md = synthetic_metadata("smollm");
    md.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(10_000));
    assert!(err(md).contains("tokenizer.ggml.eos_token_id = 10000 is outside"));
    let mut md = synthetic_metadata("smollm");
    md.remove("tokenizer.ggml.merges");
    assert!(err(md).contains("tokenizer.ggml.merges is missing"));
    let mut md = synthetic_metadata("smollm");
    md.insert(
        "tokenizer.ggml.merges".into(),
        Value::Array(vec![Value::String("nospace".into())]),
    );
    assert!(err(md).contains("has no space"));
}

/// Loads SmolLM2's GGUF tokenizer, or `None` when the file is not fetched (a failure
/// under CI: see `testutil::need_file`).
fn smollm2() -> Option<GgufTokenizer> {
    let path = crate::testutil::smollm2_gguf()?;
    Some(GgufTokenizer::from_file(&path).expect("SmolLM2 GGUF tokenizer must build"))
}

#[derive(serde::Deserialize)]
struct Fixture {
    generator: String,
    cases: Vec<FixtureCase>,
}

#[derive(serde::Deserialize)]
struct FixtureCase {
    text: String,
    ids: Vec<u32>,
}

#[test]
fn smollm2_matches_llama_cpp_fixture() {
    let Some(t) = smollm2() else { return };
    assert_eq!(t.pre(), "smollm");
    let fx: Fixture =
        serde_json::from_str(include_str!("testdata/llama_cpp_smollm2.json")).unwrap();
    let mut bad = Vec::new();
    for c in &fx.cases {
        let ids = t.encode(&c.text).unwrap();
        if ids != c.ids {
            bad.push(format!("{:?}: ours {ids:?}, llama.cpp {:?}", c.text, c.ids));
        }
        assert_eq!(t.decode(&ids).unwrap(), c.text, "decode(encode(x)) != x");
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ from {}:\n{}",
        bad.len(),
        fx.cases.len(),
        fx.generator,
        bad.join("\n")
    );

    // Saved as tokenizer.json and reloaded, it still tokenizes the same way.
    let dir = tempfile::tempdir().unwrap();
    t.inner()
        .save(dir.path().join("tokenizer.json"), false)
        .unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"eos_token": {"content": "<|im_end|>"}, "bos_token": "<|im_start|>"}"#,
    )
    .unwrap();
    let hf = HfTokenizer::from_folder(dir.path()).unwrap();
    assert_eq!(
        (hf.bos(), hf.eos(), hf.add_bos(), hf.vocab_size()),
        (Some(1), Some(2), false, 49152)
    );
    for c in &fx.cases {
        assert_eq!(
            hf.encode(&c.text).unwrap(),
            c.ids,
            "reloaded tokenizer.json on {:?}",
            c.text
        );
    }
    assert_eq!(
        t.encode("The capital of France is").unwrap(),
        [504, 3575, 282, 4649, 314]
    );
    assert_eq!(
        (t.bos(), t.eos(), t.add_bos(), t.vocab_size()),
        (Some(1), Some(2), false, 49152)
    );
}

#[test]
fn hf_tokenizer_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = HfTokenizer::from_folder(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.path().join("tokenizer.json").display().to_string()),
        "{err}"
    );
    std::fs::write(dir.path().join("tokenizer.json"), "{not json").unwrap();
    let err = HfTokenizer::from_folder(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("load tokenizer ") && err.contains("tokenizer.json"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("tokenizer.json"),
        ByteTokenizer::hf_tokenizer_json(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"eos_token": "<nope>"}"#,
    )
    .unwrap();
    let err = HfTokenizer::from_folder(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer_config.json") && err.contains("eos_token '<nope>'"),
        "{err}"
    );
}

/// Regression (tests/hostile_props.rs found it): tokenizers 0.23 panics on a
/// `tokenizer.json` cut inside its `decoder` object; every cut must be an error.
#[test]
fn a_truncated_tokenizer_json_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let json = ByteTokenizer::hf_tokenizer_json();
    let p = dir.path().join("tokenizer.json");
    for cut in [
        json.find("\"decoder\"").unwrap() + 12,
        0,
        1,
        json.len() / 2,
        json.len() - 1,
    ] {
        std::fs::write(&p, &json.as_bytes()[..cut]).unwrap();
        let err = HfTokenizer::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{cut}: {err}");
    }
    // Regression (cargo fuzz, target safetensors_folder): a decoder string that is not
    // UTF-8, or a lone surrogate, made the library panic the same way.
    let level = json.find("\"ByteLevel\"").unwrap() + 2;
    for bad in [&b"\x8e\x8b"[..], b"\\udfff"] {
        let mut b = json.as_bytes().to_vec();
        b.splice(level..level + 2, bad.iter().copied());
        std::fs::write(&p, &b).unwrap();
        let err = HfTokenizer::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }
}

#[test]
fn gguf_tokenizer_rejects_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"GGUF\x03\0\0\0").unwrap();
    let err = GgufTokenizer::from_file(&path).unwrap_err();
    assert!(matches!(err, TokenizerError::Gguf(_)), "{err}");
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn smollm2_matches_oracle_prompt_tokens() {
    let project = crate::project::Project::from_manifest();
    let file = project.path("oracles/smollm2-135m-instruct/q4_1.json");
    let Some(t) = smollm2() else { return };
    let oracle = crate::oracle::read(&file).unwrap();
    let prompts = crate::prompts::load(&project.path("configs/prompts.toml")).unwrap();
    for case in &oracle.cases {
        assert_eq!(
            t.encode(&case.prompt).unwrap(),
            case.prompt_tokens,
            "oracle case {}",
            case.id
        );
        assert_eq!(
            t.decode(&case.prompt_tokens).unwrap(),
            case.prompt,
            "oracle case {}",
            case.id
        );
    }
    for p in &prompts {
        assert!(
            oracle.case(&p.id).is_some(),
            "prompt {} has no oracle case",
            p.id
        );
    }
}
