//! `groundtruth` as installed: run from folders outside any checkout (the built-in
//! project), from inside a project found by walking up to its `groundtruth.toml`, and with
//! hub references resolved from a pre-populated Hugging Face cache (never the network).
//! Every missing file is one line that names it and how to point at it.

mod common;

use common::installed::{gt, one_line_error, out, planted_claim, repo, text, tiny};
use std::path::{Path, PathBuf};
use std::process::Output;

#[test]
fn outside_any_project_the_built_in_one_runs_smoke_and_check_and_writes_under_the_working_folder() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = out(&mut gt(
        cwd.path(),
        cache.path(),
        &["run", "--suite", "smoke"],
    ));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    for f in ["report.json", "summary.md", "report.html"] {
        assert!(
            cwd.path().join("target/groundtruth").join(f).is_file(),
            "{f}"
        );
    }
    let unpacked: Vec<_> = std::fs::read_dir(cache.path().join("groundtruth"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        unpacked.len() == 1 && unpacked[0].starts_with("builtin-"),
        "{unpacked:?}"
    );
    // `check` judges with the built-in check claims: the tiny model against its committed oracle.
    let folder = cwd.path().join("tiny");
    tiny(cwd.path(), cache.path(), "materialize", &folder);
    let oracle = repo().join("oracles/tiny-seeded/f32.json");
    let c = out(&mut gt(
        cwd.path(),
        cache.path(),
        &[
            "check",
            "--model",
            "tiny",
            "--oracle",
            oracle.to_str().unwrap(),
            "--out",
            "gt",
        ],
    ));
    assert_eq!(
        c.status.code(),
        Some(0),
        "{}{}",
        text(&c.stdout),
        text(&c.stderr)
    );
    assert!(
        text(&c.stdout).contains("verdict: pass"),
        "{}",
        text(&c.stdout)
    );
    // --out: what `groundtruth ticket --report gt/report.json` reads, and the page.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("gt/report.json")).unwrap()).unwrap();
    assert_eq!(report["suite"], "check");
    assert!(
        cwd.path().join("gt/report.html").is_file() && cwd.path().join("gt/summary.md").is_file()
    );
}

#[test]
fn a_missing_file_is_one_line_naming_it_and_how_to_point_at_it() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let oracle = repo().join("oracles/tiny-seeded/f32.json");
    let e = one_line_error(&out(&mut gt(
        cwd.path(),
        cache.path(),
        &[
            "check",
            "--model",
            "my.gguf",
            "--oracle",
            oracle.to_str().unwrap(),
        ],
    )));
    assert!(
        e.contains("my.gguf: no such file or folder") && e.contains("--model"),
        "{e}"
    );
    let e = one_line_error(&out(&mut gt(
        cwd.path(),
        cache.path(),
        &["check", "--model", "my.gguf", "--oracle", "o.json"],
    )));
    assert!(
        e.contains("o.json: no such file") && e.contains("--oracle"),
        "{e}"
    );
    let e = one_line_error(&out(&mut gt(
        cwd.path(),
        cache.path(),
        &["run", "--suite", "nightly"],
    )));
    assert!(
        e.contains("suites/nightly.toml") && e.contains("ci, full, gpu, smoke"),
        "{e}"
    );
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["ticket"])));
    assert!(
        e.contains("target/groundtruth/report.json: no such file") && e.contains("--report"),
        "{e}"
    );
    // A --root without the project's files says so once, with what to do.
    let e = one_line_error(&out(&mut gt(
        cwd.path(),
        cache.path(),
        &["--root", ".", "run", "--suite", "smoke"],
    )));
    assert!(
        e.contains("claims") && e.contains("--root") && e.contains("groundtruth init"),
        "{e}"
    );
    let e = one_line_error(&out(&mut gt(
        cwd.path(),
        cache.path(),
        &["--root", "elsewhere", "run"],
    )));
    assert!(e.contains("--root elsewhere: no such folder"), "{e}");
}

#[test]
fn inside_a_project_its_files_win_from_any_subfolder() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let project = dir.path().join("proj");
    let o = out(&mut gt(dir.path(), cache.path(), &["init", "proj"]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let again = one_line_error(&out(&mut gt(dir.path(), cache.path(), &["init", "proj"])));
    assert!(again.contains("already exists"), "{again}");
    // An edited project: a planted claim and a suite of its own, run from two levels down.
    std::fs::write(
        project.join("claims/zz_planted.toml"),
        planted_claim("PL-1", "q2_k"),
    )
    .unwrap();
    std::fs::write(
        project.join("suites/planted.toml"),
        "description = \"planted\"\nclaims = [\"PL-1\", \"QD-1\"]\n",
    )
    .unwrap();
    let deep = project.join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    let o = out(&mut gt(&deep, cache.path(), &["run", "--suite", "planted"]));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(project
        .join("target/groundtruth/tickets/quant_drift__tiny-seeded__q2_k__all__PL-1.md")
        .is_file());
    assert!(
        !deep.join("target").exists(),
        "outputs go to the project root"
    );
    // The rerun line a ticket gives works as printed.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.join("target/groundtruth/report.json")).unwrap(),
    )
    .unwrap();
    let rerun = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["claim_id"] == "PL-1")
        .unwrap()["reproduce"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        rerun,
        "groundtruth run --suite planted --exact 'quant_drift/tiny-seeded/q2_k/all/PL-1'"
    );
    let o = out(&mut gt(
        &deep,
        cache.path(),
        &[
            "run",
            "--suite",
            "planted",
            "--exact",
            "quant_drift/tiny-seeded/q2_k/all/PL-1",
        ],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // A malformed marker is bad input naming it.
    std::fs::write(project.join("groundtruth.toml"), "format = 1\n").unwrap();
    let e = one_line_error(&out(&mut gt(
        &deep,
        cache.path(),
        &["run", "--suite", "planted"],
    )));
    assert!(e.contains("groundtruth.toml:1"), "{e}");
}

/// A Hugging Face cache as huggingface_hub lays it out: blobs, a snapshot of links to
/// them, and `refs/main` naming the snapshot's commit.
fn hub_cache(cache: &Path, repo_id: &str, commit: &str, files: &[(&str, &Path)]) {
    let dir = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let snap = dir.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    std::fs::create_dir_all(dir.join("refs")).unwrap();
    std::fs::write(dir.join("refs/main"), commit).unwrap();
    for (name, src) in files {
        let blob = dir
            .join("blobs")
            .join(format!("{:x}", name.len() * 7919 + commit.len()) + name);
        std::fs::copy(src, &blob).unwrap();
        std::os::unix::fs::symlink(&blob, snap.join(name)).unwrap();
    }
}

#[test]
fn hub_references_resolve_offline_from_the_cache_and_a_miss_is_one_line() {
    let (cwd, cache, hf) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let folder = cwd.path().join("tiny");
    tiny(cwd.path(), cache.path(), "materialize", &folder);
    let gguf = cwd.path().join("tiny.gguf");
    tiny(cwd.path(), cache.path(), "export", &gguf);
    let commit = "4b8f0e6c3a1d2f5e7a9b0c1d2e3f4a5b6c7d8e9f";
    let files: Vec<(&str, PathBuf)> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| (*f, folder.join(f)))
        .chain([("tiny.gguf", gguf.clone())])
        .collect();
    let refs: Vec<(&str, &Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
    hub_cache(hf.path(), "groundtruth/tiny-seeded", commit, &refs);
    let check = |model: &str, oracle: &str| {
        let oracle = repo().join(oracle);
        out(gt(
            cwd.path(),
            cache.path(),
            &[
                "check",
                "--json",
                "--model",
                model,
                "--oracle",
                oracle.to_str().unwrap(),
            ],
        )
        .env("HF_HUB_CACHE", hf.path())
        .env("HF_HUB_OFFLINE", "1"))
    };
    let verdict = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .map(|v| v["verdict"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|_| text(&o.stderr))
    };
    let o = check(
        "hf://groundtruth/tiny-seeded",
        "oracles/tiny-seeded/f32.json",
    );
    assert_eq!(
        (o.status.code(), verdict(&o)),
        (Some(0), "pass".into()),
        "{}",
        text(&o.stderr)
    );
    let o = check(
        &format!("hf://groundtruth/tiny-seeded@{commit}/tiny.gguf"),
        "oracles/tiny-seeded-gguf/llamacpp-f32.json",
    );
    assert_eq!(
        (o.status.code(), verdict(&o)),
        (Some(0), "pass".into()),
        "{}",
        text(&o.stderr)
    );
    let e = one_line_error(&check(
        "hf://groundtruth/tiny-seeded/other.gguf",
        "oracles/tiny-seeded/f32.json",
    ));
    assert!(
        e.contains("HF_HUB_OFFLINE")
            && e.contains(
                &hf.path()
                    .join("models--groundtruth--tiny-seeded/snapshots")
                    .join(commit)
                    .join("other.gguf")
                    .display()
                    .to_string()
            ),
        "{e}"
    );
}
