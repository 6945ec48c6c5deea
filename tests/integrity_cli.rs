//! `corrupt`, `manifest`, `verify` and `health` end to end: seeded damage written as a
//! file, caught by the manifest (naming the tensors) and, for magnitude damage, by the
//! health check; bad input is one line and exit 2 with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_groundtruth"))
        .arg("--root")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn tiny_1m() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tiny_1m")
        .display()
        .to_string()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn flips(damaged: &Path) -> serde_json::Value {
    let mut p = damaged.as_os_str().to_owned();
    p.push(".flips.json");
    serde_json::from_slice(&std::fs::read(PathBuf::from(p)).unwrap()).unwrap()
}

#[test]
fn a_corrupted_folder_is_reproducible_caught_by_verify_and_by_health() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for (out, seed) in [(&a, "4"), (&b, "4"), (&c, "5")] {
        let o = bin(&[
            "corrupt",
            "--model",
            &tiny_1m(),
            "--out",
            s(out),
            "--seed",
            seed,
            "--count",
            "2",
            "--bits",
            "exponent-msb",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let bytes = |p: &Path| std::fs::read(p.join("model.safetensors")).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "same seed, same bytes");
    assert_ne!(bytes(&a), bytes(&c), "another seed, other bytes");
    let list = flips(&a.join("model.safetensors"));
    assert_eq!(list["format"], "groundtruth-flips/1");
    let flipped: std::collections::BTreeSet<String> = list["flips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tensor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(list["flips"].as_array().unwrap().len(), 2);

    let manifest = dir.path().join("m.manifest.json");
    let o = bin(&["manifest", "--model", &tiny_1m(), "--out", s(&manifest)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bin(&["verify", "--model", &tiny_1m(), "--manifest", s(&manifest)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bin(&[
        "verify",
        "--model",
        s(&a),
        "--manifest",
        s(&manifest),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let named: std::collections::BTreeSet<String> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap(),
                c["tensor"].as_str().unwrap_or("").to_string(),
            )
        })
        .map(|(k, t)| {
            assert_eq!(k, "tensor");
            t
        })
        .collect();
    assert_eq!(
        named, flipped,
        "verify names exactly the tensors the flips landed in"
    );

    // An exponent-MSB flip makes a weight ≈ 2^128 times larger: absurd next to its median.
    let o = bin(&["health", "--model", s(&a)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for t in &flipped {
        assert!(
            text(&o).contains(t.as_str()),
            "{t} not flagged: {}",
            text(&o)
        );
    }
    let o = bin(&["health", "--model", &tiny_1m()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the clean model is healthy: {}",
        text(&o)
    );
}

#[test]
fn a_flipped_block_scale_in_a_quantized_gguf_is_seen_by_both_checks() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q4_0.gguf");
    let o = bin(&[
        "quantize",
        "--model",
        "tiny-seeded",
        "--to",
        "q4_0",
        "--out",
        s(&q),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = dir.path().join("damaged.gguf");
    let o = bin(&[
        "corrupt",
        "--model",
        s(&q),
        "--out",
        s(&d),
        "--seed",
        "2",
        "--count",
        "1",
        "--bits",
        "exponent-msb",
        "--region",
        "scales",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let f = &flips(&d)["flips"][0];
    assert_eq!(
        (f["field"].as_str(), f["bit"].as_u64(), f["dtype"].as_str()),
        (Some("d"), Some(14), Some("q4_0")),
        "{f}"
    );
    assert_eq!(
        f["new"].as_f64().unwrap() / f["old"].as_f64().unwrap(),
        65536.0
    );
    let m = dir.path().join("q.manifest.json");
    assert_eq!(
        bin(&["manifest", "--model", s(&q), "--out", s(&m)])
            .status
            .code(),
        Some(0)
    );
    let o = bin(&["verify", "--model", s(&d), "--manifest", s(&m)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("tensor {} changed", f["tensor"].as_str().unwrap())),
        "{}",
        text(&o)
    );
    let o = bin(&["health", "--model", s(&d)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a block ×2^16 is absurd: {}",
        text(&o)
    );
    assert_eq!(bin(&["health", "--model", s(&q)]).status.code(), Some(0));
}

/// One line on stderr, exit 2, and `out` not written.
fn refused(args: &[&str], out: &Path, needle: &str) {
    let o = bin(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in: {err}"
    );
    // clap adds its usual "For more information, try '--help'." to a flag it rejects.
    assert_eq!(
        err.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
            .count(),
        1,
        "{err}"
    );
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

#[test]
fn bad_input_is_exit_2_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tiny = tiny_1m();
    refused(
        &[
            "corrupt",
            "--model",
            "nope.gguf",
            "--out",
            s(&out),
            "--seed",
            "1",
            "--count",
            "1",
        ],
        &out,
        "nope.gguf",
    );
    refused(
        &[
            "corrupt",
            "--model",
            &tiny,
            "--out",
            s(&out),
            "--seed",
            "1",
            "--count",
            "0",
        ],
        &out,
        "zero flips",
    );
    refused(
        &[
            "corrupt",
            "--model",
            &tiny,
            "--out",
            s(&out),
            "--seed",
            "1",
            "--rate",
            "1.5",
        ],
        &out,
        "rate=R",
    );
    refused(
        &[
            "corrupt",
            "--model",
            &tiny,
            "--out",
            s(&out),
            "--seed",
            "1",
            "--count",
            "1",
            "--bits",
            "exp",
        ],
        &out,
        "exponent-msb",
    );
    refused(
        &[
            "corrupt",
            "--model",
            &tiny,
            "--out",
            s(&out),
            "--seed",
            "1",
            "--count",
            "1",
            "--region",
            "scales",
        ],
        &out,
        "no eligible bit",
    );
    refused(
        &[
            "corrupt",
            "--model",
            &tiny,
            "--out",
            s(&out),
            "--seed",
            "1",
            "--rate",
            "1",
            "--region",
            "norm",
        ],
        &out,
        "rounds to no flip",
    );
    refused(
        &[
            "corrupt", "--model", &tiny, "--out", &tiny, "--seed", "1", "--count", "1",
        ],
        &out,
        "the output is the input",
    );
    // A truncated GGUF is refused by the bounded parser, naming the file.
    let q = dir.path().join("q.gguf");
    assert_eq!(
        bin(&[
            "quantize",
            "--model",
            "tiny-seeded",
            "--to",
            "q8_0",
            "--out",
            s(&q)
        ])
        .status
        .code(),
        Some(0)
    );
    let bytes = std::fs::read(&q).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &[
            "corrupt",
            "--model",
            s(&cut),
            "--out",
            s(&out),
            "--seed",
            "1",
            "--count",
            "1",
        ],
        &out,
        "cut.gguf",
    );
    refused(
        &["manifest", "--model", s(&cut), "--out", s(&out)],
        &out,
        "cut.gguf",
    );
    refused(&["health", "--model", s(&cut)], &out, "cut.gguf");
    // A manifest that is not one.
    let bad = dir.path().join("bad.manifest.json");
    std::fs::write(
        &bad,
        r#"{"format":"groundtruth-manifest/1","files":[{"path":"x"}]}"#,
    )
    .unwrap();
    refused(
        &["verify", "--model", s(&q), "--manifest", s(&bad)],
        &out,
        "bad.manifest.json",
    );
    refused(
        &[
            "verify",
            "--model",
            s(&q),
            "--manifest",
            s(&dir.path().join("none.json")),
        ],
        &out,
        "none.json",
    );
}

#[test]
fn export_writes_a_corrupted_variant_instead_of_refusing_it() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, damaged) = (dir.path().join("clean.gguf"), dir.path().join("flip.gguf"));
    assert_eq!(
        bin(&["export", "--model", "tiny-seeded", "--out", s(&clean)])
            .status
            .code(),
        Some(0)
    );
    let o = bin(&[
        "export",
        "--model",
        "tiny-seeded",
        "--variant",
        "flip-exp~2",
        "--out",
        s(&damaged),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("flip-exp: model.layers."),
        "the damage is reported: {}",
        text(&o)
    );
    let m = dir.path().join("clean.manifest.json");
    assert_eq!(
        bin(&["manifest", "--model", s(&clean), "--out", s(&m)])
            .status
            .code(),
        Some(0)
    );
    let o = bin(&[
        "verify",
        "--model",
        s(&damaged),
        "--manifest",
        s(&m),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["changes"].as_array().unwrap().len(),
        1,
        "one tensor changed, nothing else: {v}"
    );
    assert_eq!(
        bin(&["health", "--model", s(&damaged)]).status.code(),
        Some(1)
    );
}

#[test]
fn export_composes_a_storage_type_with_flips_in_its_quantized_blocks() {
    // q8_0+flip-exp-msb:scales@count=1~3: quantize, then flip one Q8_0 block scale's
    // exponent MSB. Against the plain q8_0 export exactly one tensor differs, the one the
    // flip list names, and the same variant written twice is the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let (q, a, b) = (
        dir.path().join("q8.gguf"),
        dir.path().join("a.gguf"),
        dir.path().join("b.gguf"),
    );
    let variant = "q8_0+flip-exp-msb:scales@count=1~3";
    assert_eq!(
        bin(&[
            "export",
            "--model",
            "tiny-seeded",
            "--variant",
            "q8_0",
            "--out",
            s(&q)
        ])
        .status
        .code(),
        Some(0)
    );
    for out in [&a, &b] {
        let o = bin(&[
            "export",
            "--model",
            "tiny-seeded",
            "--variant",
            variant,
            "--out",
            s(out),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same seed, same bytes"
    );
    let list = flips(&a);
    let f = &list["flips"][0];
    assert_eq!(
        (
            list["flips"].as_array().unwrap().len(),
            f["dtype"].as_str(),
            f["field"].as_str(),
            f["bit"].as_u64()
        ),
        (1, Some("q8_0"), Some("d"), Some(14)),
        "{list}"
    );
    let m = dir.path().join("q8.manifest.json");
    assert_eq!(
        bin(&["manifest", "--model", s(&q), "--out", s(&m)])
            .status
            .code(),
        Some(0)
    );
    let o = bin(&["verify", "--model", s(&a), "--manifest", s(&m), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v}");
    // The GGUF names the tensor by its llama.cpp name; the flip list by the Hugging Face one.
    let gguf_name = changes[0]["tensor"].as_str().unwrap();
    assert_eq!(
        groundtruth::model::gguf_to_hf(gguf_name).as_deref(),
        f["tensor"].as_str(),
        "{v}"
    );
    let o = bin(&[
        "export",
        "--model",
        "tiny-seeded",
        "--variant",
        "q8_0+flip-exp-msb@count=0",
        "--out",
        s(&dir.path().join("z.gguf")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.path().join("z.gguf").exists());
}
