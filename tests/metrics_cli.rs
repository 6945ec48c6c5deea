//! `groundtruth metrics` end to end: the report of the hand-made records (every rule hit),
//! byte-identical on a second run and equal to what `--out` holds; a bad line (unknown
//! field, wrong type, duplicate id, invalid UTF-8) is exit 2 with one line naming the file
//! and the line, and nothing is written. `groundtruth reproduce`: the registered numbers
//! hold, a planted one off by more than its tolerance fails with a ticket.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    repo().join("tests/fixtures/metrics/handmade.jsonl")
}

/// `groundtruth --root REPO VERB ARGS…`.
fn gt(verb: &str, args: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_groundtruth"));
    c.arg("--root")
        .arg(repo())
        .arg(verb)
        .env_remove("GROUNDTRUTH_OUT");
    for a in args {
        c.arg(a);
    }
    c.output().unwrap()
}

fn metrics(args: &[&Path]) -> Output {
    gt("metrics", args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn report_of_the_handmade_records_is_deterministic_and_matches_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let args = |o: &Path| -> Vec<PathBuf> {
        vec![
            "--records".into(),
            fixture(),
            "--json".into(),
            "--out".into(),
            o.to_path_buf(),
        ]
    };
    let a = args(&out);
    let o = metrics(&a.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written, o.stdout, "--out holds what --json prints");
    let again = metrics(&a.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(
        again.stdout, o.stdout,
        "same input and seed: byte-identical JSON"
    );
    let v: serde_json::Value = serde_json::from_slice(&written).unwrap();
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["model"] == "hand" && g["variant"] == "base")
        .unwrap();
    for key in ["sf_rate", "sc_rate", "theater_rate", "sf_sc_gap"] {
        let ci = g[key]["ci"].as_array().unwrap();
        assert!(
            ci[0].as_f64().unwrap() <= g[key]["value"].as_f64().unwrap() + 1e-12,
            "{key}"
        );
        assert!(
            ci[1].as_f64().unwrap() >= g[key]["value"].as_f64().unwrap() - 1e-12,
            "{key}"
        );
    }
    assert_eq!(g["n"], 15);
    assert_eq!(g["sf_rate"]["value"].as_f64(), Some(7.0 / 15.0));
    assert_eq!(g["sc_rate"]["value"].as_f64(), Some(12.0 / 15.0));
    assert_eq!(g["theater_rate"]["value"].as_f64(), Some(2.0 / 15.0));
    // The table is the default output.
    let t = metrics(&[Path::new("--records"), &fixture()]);
    assert_eq!(t.status.code(), Some(0), "{}", stderr(&t));
    assert!(String::from_utf8_lossy(&t.stdout).contains("structural failures"));
}

#[test]
fn a_bad_line_is_exit_2_naming_file_and_line_and_nothing_is_written() {
    let good = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let third = |with: String| -> Vec<u8> {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[2] = with;
        (l.join("\n") + "\n").into_bytes()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            third(lines[2].replacen("\"prompt\"", "\"temperature\":0.3,\"prompt\"", 1)),
            "unknown field `temperature`",
        ),
        (
            third(lines[2].replacen("\"reference_answer\":\"2\"", "\"reference_answer\":2", 1)),
            "field 'reference_answer': invalid type",
        ),
        (
            third(lines[0].to_string()),
            "duplicate id 'ok-correct' (first on line 1)",
        ),
        (
            third(lines[2].replacen("\"greedy\"", "\"greedy\",\"top_k\":\"25\"", 1)),
            "field 'decoding.top_k': invalid type",
        ),
        (
            third(lines[2].replacen("1 + 1", "1 \u{1} 1", 1)),
            "control character",
        ),
        (third("{\"id\": \"x\"".into()), "EOF"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (bytes, want)) in cases.iter().enumerate() {
        let rec = dir.path().join(format!("bad{i}.jsonl"));
        std::fs::write(&rec, bytes).unwrap();
        let out = dir.path().join(format!("out{i}.json"));
        let per = dir.path().join(format!("per{i}.jsonl"));
        let o = metrics(&[
            Path::new("--records"),
            &rec,
            Path::new("--out"),
            &out,
            Path::new("--per-record"),
            &per,
            Path::new("--json"),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(
            err.contains(&format!("bad{i}.jsonl:3:")) && err.contains(want),
            "case {i}: {err}"
        );
        assert!(
            o.stdout.is_empty(),
            "case {i}: printed {:?}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            !out.exists() && !per.exists(),
            "case {i}: wrote output for a bad file"
        );
    }
    // Invalid UTF-8 on line 2.
    let mut bytes = good.clone().into_bytes();
    let at = good.find('\n').unwrap() + 10;
    bytes[at] = 0xff;
    let rec = dir.path().join("utf8.jsonl");
    std::fs::write(&rec, bytes).unwrap();
    let o = metrics(&[Path::new("--records"), &rec]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("utf8.jsonl:2: not UTF-8"),
        "{}",
        stderr(&o)
    );
    // A missing file, and an empty one.
    let o = metrics(&[Path::new("--records"), &dir.path().join("none.jsonl")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("none.jsonl"), "{}", stderr(&o));
    std::fs::write(dir.path().join("empty.jsonl"), "").unwrap();
    let o = metrics(&[Path::new("--records"), &dir.path().join("empty.jsonl")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("empty.jsonl:1: no records"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_config_names_the_tags() {
    // Other tags: the fixture's traces no longer have any, so SF is 0 everywhere while SC
    // (searched in the whole completion) stays as it was.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("configs/metrics.toml"))
        .unwrap()
        .replace("<|begin_of_thought|>", "<think>");
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, text).unwrap();
    let o = metrics(&[
        Path::new("--records"),
        &fixture(),
        Path::new("--config"),
        &cfg,
        Path::new("--json"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for g in v["groups"].as_array().unwrap() {
        assert_eq!(g["sf_rate"]["value"].as_f64(), Some(0.0), "{g}");
        assert_eq!(g["theater_rate"]["value"].as_f64(), Some(0.0), "{g}");
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "answer_rule = \"first\"\n").unwrap();
    let o = metrics(&[
        Path::new("--records"),
        &fixture(),
        Path::new("--config"),
        &bad,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml:1:"), "{}", stderr(&o));
}

fn reproduce(args: &[&Path]) -> Output {
    gt("reproduce", args)
}

#[test]
fn the_registered_numbers_reproduce() {
    let o = reproduce(&[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    // MR-10..16 fine-tune tiny_1m (cached per source version) and generate 64 records.
    for id in [
        "MR-1", "MR-2", "MR-3", "MR-4", "MR-5", "MR-10", "MR-11", "MR-12", "MR-14", "MR-15",
        "MR-16",
    ] {
        assert!(out.contains(&format!("ok   {id} ")), "{id}: {out}");
    }
    assert!(
        out.contains("MR-12") && out.contains("registered negative claim: violated as predicted"),
        "{out}"
    );
    assert!(out.contains("MR-13    retired: "), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn a_planted_number_off_by_more_than_its_tolerance_fails_with_a_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("claims/metrics/handmade.toml")).unwrap();
    // MR-2 registered 0.85 ± 5%: the observed 0.8 is 0.05 away, beyond 0.0425.
    let planted = text.replacen(
        "value = 0.8\ntolerance = 0.0",
        "value = 0.85\ntolerance = 0.05",
        1,
    );
    assert_ne!(planted, text);
    let f = dir.path().join("planted.toml");
    std::fs::write(&f, planted).unwrap();
    let tickets = dir.path().join("tickets");
    let o = reproduce(&[
        Path::new("--registered"),
        &f,
        Path::new("--tickets"),
        &tickets,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    assert!(
        out.contains("FAIL MR-2 ") && out.contains("ok   MR-1 "),
        "{out}"
    );
    let t = std::fs::read_to_string(tickets.join("MR-2.md")).unwrap();
    assert!(
        t.starts_with(
            "# MR-2 falsified: hand/base registered sc_rate = 0.85 ± 5% (relative), observed 0.8 ["
        ),
        "{t}"
    );
    assert!(
        t.contains("bootstrap interval") && t.contains("groundtruth reproduce --registered"),
        "{t}"
    );
    assert_eq!(
        std::fs::read_dir(&tickets).unwrap().count(),
        1,
        "a ticket only for the failed number"
    );
    // Within the tolerance it holds (0.82 ± 5%: 0.02 <= 0.041).
    let near = text.replacen(
        "value = 0.8\ntolerance = 0.0",
        "value = 0.82\ntolerance = 0.05",
        1,
    );
    std::fs::write(&f, near).unwrap();
    let o = reproduce(&[
        Path::new("--registered"),
        &f,
        Path::new("--id"),
        Path::new("MR-2"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn a_bad_registration_is_exit_2_and_writes_no_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("claims/metrics/handmade.toml")).unwrap();
    let tickets = dir.path().join("tickets");
    for (i, (bad, want)) in [
        (
            text.replacen("metric = \"sc_rate\"", "metric = \"sc\"", 1),
            "unknown variant",
        ),
        (
            text.replacen("value = 0.8\ntolerance = 0.0", "value = 0.9", 1),
            "relative tolerance",
        ),
        (
            text.replacen(
                "tests/fixtures/metrics/handmade.jsonl",
                "tests/fixtures/metrics/none.jsonl",
                1,
            ),
            "none.jsonl",
        ),
        (
            text.replacen("variant = \"base\"", "variant = \"q8_0\"", 1),
            "no records of hand/q8_0",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let f = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&f, bad).unwrap();
        let o = reproduce(&[
            Path::new("--registered"),
            &f,
            Path::new("--tickets"),
            &tickets,
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(err.contains(want), "case {i}: {err}");
        assert!(!tickets.exists(), "case {i}");
    }
}
