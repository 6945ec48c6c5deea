//! Mutation tests of every reader, on the release binary under `ulimit -v`
//! (`common::hostile::MEMORY_LIMIT_KB`): truncations, flipped header bytes, and counts,
//! lengths and numbers grown to huge values, in a GGUF file, a safetensors folder, an
//! oracle and a claims file. Whatever the damage, the run ends with a documented exit code
//! (0 held, 1 falsified, 2 bad input with one short line, 3 nothing judged), never a panic,
//! an abort, a signal or the OOM killer. (`fuzz/` holds the long-running fuzzers.)

mod common;

use common::hostile::{gt, repo, run_limited, stderr, tiny_folder, tiny_gguf};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

/// Damage done to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep this fraction (in thousandths) of the file.
    Truncate(u32),
    /// Flip one bit of a byte among the first `HEADER` bytes (or the whole of a text).
    Flip { at: usize, bit: u8 },
    /// Overwrite 8 bytes at an 8-aligned offset among the first `HEADER` with a huge
    /// little-endian count or length.
    Grow { at: usize, value: u64 },
    /// Replace a run of ASCII digits (a number, an id, a count) with a huge number.
    Number { nth: usize, text: &'static str },
}

/// How far into a binary file header damage reaches: every count, length and offset of a
/// GGUF or safetensors header of the tiny model lies in its first 8 KiB (the tokenizer's
/// arrays follow).
const HEADER: usize = 8192;

const HUGE: [&str; 5] = [
    "18446744073709551615",
    "4294967296",
    "1000000000000",
    "1e308",
    "99999999999999999999999999",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u32..1000).prop_map(Mutation::Truncate),
        (0usize..HEADER, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (
            0usize..HEADER / 8,
            prop_oneof![
                Just(u64::MAX),
                Just(1u64 << 31),
                Just(1u64 << 40),
                1u64 << 20..1u64 << 62
            ]
        )
            .prop_map(|(i, value)| Mutation::Grow { at: 8 * i, value }),
        (0usize..400, prop::sample::select(HUGE.to_vec()))
            .prop_map(|(nth, text)| Mutation::Number { nth, text }),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match *m {
        Mutation::Truncate(k) => b.truncate(b.len() * k as usize / 1000),
        Mutation::Flip { at, bit } => {
            let i = at % b.len();
            b[i] ^= 1 << bit;
        }
        Mutation::Grow { at, value } => {
            let i = at.min(b.len().saturating_sub(8));
            b[i..i + 8].copy_from_slice(&value.to_le_bytes());
        }
        Mutation::Number { nth, text } => {
            let runs: Vec<(usize, usize)> = digit_runs(&b);
            if let Some(&(s, e)) = runs.get(nth % runs.len().max(1)) {
                b.splice(s..e, text.bytes());
            }
        }
    }
    b
}

fn digit_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// A documented exit code, and for bad input one short line.
fn assert_survived(o: &Output, what: &str) {
    let err = stderr(o);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0..=3)),
        "{what}: status {:?} (a panic, abort or signal), stderr: {}",
        o.status,
        &err[..err.len().min(2000)]
    );
    if code == Some(2) {
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{what}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(err.len() < 2000, "{what}: {} bytes of stderr", err.len());
    }
}

/// The unmutated inputs, built once: a tiny GGUF, a tiny folder, a two-case oracle, a
/// claims project, and a short text to score.
struct Inputs {
    _dir: tempfile::TempDir,
    gguf: Vec<u8>,
    folder: PathBuf,
    oracle: Vec<u8>,
    claims: Vec<u8>,
    text: PathBuf,
}

fn inputs() -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let gguf = std::fs::read(tiny_gguf(dir.path(), "tiny.gguf")).unwrap();
        let folder = tiny_folder(dir.path(), "tiny");
        let mut o: serde_json::Value = serde_json::from_slice(
            &std::fs::read(repo().join("oracles/tiny-seeded/f32.json")).unwrap(),
        )
        .unwrap();
        o["cases"].as_array_mut().unwrap().truncate(2);
        let oracle = serde_json::to_vec_pretty(&o).unwrap();
        let claims = std::fs::read(repo().join("claims/tiny_runtime.toml")).unwrap();
        let text = dir.path().join("text.txt");
        std::fs::write(
            &text,
            "To be, or not to be, that is the question: ".repeat(4),
        )
        .unwrap();
        Inputs {
            _dir: dir,
            gguf,
            folder,
            oracle,
            claims,
            text,
        }
    })
}

fn ppl(out: &Path, model: &Path) -> Output {
    let i = inputs();
    gt(
        out,
        &[
            "ppl".as_ref(),
            "--model".as_ref(),
            model.as_os_str(),
            "--text".as_ref(),
            i.text.as_os_str(),
            "--ctx".as_ref(),
            "32".as_ref(),
            "--chunks".as_ref(),
            "1".as_ref(),
        ],
    )
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// The unmutated inputs run cleanly, so the mutation tests below see the readers work on
/// the bytes they damage rather than fail on something else.
#[test]
fn the_unmutated_inputs_are_accepted() {
    let i = inputs();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let gguf = d.path().join("m.gguf");
    std::fs::write(&gguf, &i.gguf).unwrap();
    for o in [
        ppl(&out, &gguf),
        gt(&out, &["inspect".as_ref(), gguf.as_os_str()]),
        ppl(&out, &i.folder),
    ] {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let oracle = d.path().join("o.json");
    std::fs::write(&oracle, &i.oracle).unwrap();
    let o = gt(
        &out,
        &[
            "check".as_ref(),
            "--model".as_ref(),
            i.folder.as_os_str(),
            "--oracle".as_ref(),
            oracle.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::create_dir_all(d.path().join("claims")).unwrap();
    std::fs::write(d.path().join("claims/c.toml"), &i.claims).unwrap();
    let o = run_limited(d.path(), &out, "", &["claims", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn gguf_reader_survives_damage(m in mutation(), inspect in any::<bool>()) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        std::fs::write(&p, apply(&inputs().gguf, &m)).unwrap();
        let o = if inspect { gt(&d.path().join("out"), &["inspect".as_ref(), p.as_os_str()]) } else { ppl(&d.path().join("out"), &p) };
        assert_survived(&o, &format!("{m:?}"));
    }

    #[test]
    fn safetensors_folder_reader_survives_damage(m in mutation(), file in 0usize..3) {
        let d = tempfile::tempdir().unwrap();
        let folder = d.path().join("f");
        copy_folder(&inputs().folder, &folder);
        let name = ["model.safetensors", "config.json", "tokenizer.json"][file];
        let bytes = std::fs::read(folder.join(name)).unwrap();
        std::fs::write(folder.join(name), apply(&bytes, &m)).unwrap();
        assert_survived(&ppl(&d.path().join("out"), &folder), &format!("{name} {m:?}"));
    }

    #[test]
    fn oracle_reader_survives_damage(m in mutation()) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("o.json");
        std::fs::write(&p, apply(&inputs().oracle, &m)).unwrap();
        let o = gt(&d.path().join("out"), &["check".as_ref(), "--model".as_ref(), inputs().folder.as_os_str(), "--oracle".as_ref(), p.as_os_str()]);
        assert_survived(&o, &format!("{m:?}"));
    }

    #[test]
    fn claims_reader_survives_damage(m in mutation()) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("claims")).unwrap();
        std::fs::write(d.path().join("claims/c.toml"), apply(&inputs().claims, &m)).unwrap();
        let o = run_limited(d.path(), &d.path().join("out"), "", &["claims", "list"]);
        assert_survived(&o, &format!("{m:?}"));
    }
}
