//! `groundtruth` as installed: run from folders outside any checkout (the built-in
//! project), from inside a project found by walking up to its `groundtruth.toml`, with
//! hub references resolved from a pre-populated Hugging Face cache (never the network),
//! oracles made through a stand-in Python, tickets filed through a stand-in `gh`, JUnit
//! and job summaries. Every missing file is one line that names it and how to point at it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary run in `cwd` with its own cache folder and none of the variables a
/// developer's shell might set.
fn gt(cwd: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_groundtruth"));
    c.current_dir(cwd).args(args).env("XDG_CACHE_HOME", cache);
    for v in ["GROUNDTRUTH_OUT", "GROUNDTRUTH_PYTHON", "GROUNDTRUTH_GH", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "GITHUB_STEP_SUMMARY"] {
        c.env_remove(v);
    }
    c
}

fn out(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 2 and exactly one line on stderr, which is returned.
fn one_line_error(o: &Output) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stdout {}\nstderr {err}", text(&o.stdout));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(err.matches("os error").count(), err.contains("os error") as usize, "said twice: {err}");
    err
}

#[test]
fn outside_any_project_the_built_in_one_runs_smoke_and_check_and_writes_under_the_working_folder() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = out(&mut gt(cwd.path(), cache.path(), &["run", "--suite", "smoke"]));
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    for f in ["report.json", "summary.md", "report.html"] {
        assert!(cwd.path().join("target/groundtruth").join(f).is_file(), "{f}");
    }
    let unpacked: Vec<_> = std::fs::read_dir(cache.path().join("groundtruth")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(unpacked.len() == 1 && unpacked[0].starts_with("builtin-"), "{unpacked:?}");
    // `check` judges with the built-in check claims: the tiny model against its committed oracle.
    let folder = cwd.path().join("tiny");
    let m = out(&mut gt(cwd.path(), cache.path(), &["materialize", "--model", "tiny-seeded", "--out", folder.to_str().unwrap()]));
    assert!(m.status.success(), "{}", text(&m.stderr));
    let oracle = repo().join("oracles/tiny-seeded/f32.json");
    let c = out(&mut gt(cwd.path(), cache.path(), &["check", "--model", "tiny", "--oracle", oracle.to_str().unwrap()]));
    assert_eq!(c.status.code(), Some(0), "{}{}", text(&c.stdout), text(&c.stderr));
    assert!(text(&c.stdout).contains("verdict: pass"), "{}", text(&c.stdout));
}

#[test]
fn a_missing_file_is_one_line_naming_it_and_how_to_point_at_it() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let oracle = repo().join("oracles/tiny-seeded/f32.json");
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["check", "--model", "my.gguf", "--oracle", oracle.to_str().unwrap()])));
    assert!(e.contains("my.gguf: no such file or folder") && e.contains("--model"), "{e}");
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["check", "--model", "my.gguf", "--oracle", "o.json"])));
    assert!(e.contains("o.json: no such file") && e.contains("--oracle"), "{e}");
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["run", "--suite", "nightly"])));
    assert!(e.contains("suites/nightly.toml") && e.contains("ci, full, gpu, smoke"), "{e}");
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["ticket"])));
    assert!(e.contains("target/groundtruth/report.json: no such file") && e.contains("--report"), "{e}");
    // A --root without the project's files says so once, with what to do.
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["--root", ".", "run", "--suite", "smoke"])));
    assert!(e.contains("claims") && e.contains("--root") && e.contains("groundtruth init"), "{e}");
    let e = one_line_error(&out(&mut gt(cwd.path(), cache.path(), &["--root", "elsewhere", "run"])));
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
        "[[claim]]\nid = \"PL-1\"\nkind = \"quant_drift\"\nstatement = \"planted: Q2_K is as good as f32\"\n\
         subjects = { models = [\"tiny-seeded\"], variants = [\"q2_k\"] }\nbound = { statistic = \"kl_max\", op = \"<=\", value = 1e-9 }\n\
         rationale = \"planted to fail\"\nregistered = \"2026-11-28\"\n",
    )
    .unwrap();
    std::fs::write(project.join("suites/planted.toml"), "description = \"planted\"\nclaims = [\"PL-1\", \"QD-1\"]\n").unwrap();
    let deep = project.join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    let o = out(&mut gt(&deep, cache.path(), &["run", "--suite", "planted"]));
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(project.join("target/groundtruth/tickets/quant_drift__tiny-seeded__q2_k__all__PL-1.md").is_file());
    assert!(!deep.join("target").exists(), "outputs go to the project root");
    // The rerun line a ticket gives works as printed.
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(project.join("target/groundtruth/report.json")).unwrap()).unwrap();
    let rerun = report["cases"].as_array().unwrap().iter().find(|c| c["claim_id"] == "PL-1").unwrap()["reproduce"].as_str().unwrap().to_string();
    assert_eq!(rerun, "groundtruth run --suite planted --exact 'quant_drift/tiny-seeded/q2_k/all/PL-1'");
    let o = out(&mut gt(&deep, cache.path(), &["run", "--suite", "planted", "--exact", "quant_drift/tiny-seeded/q2_k/all/PL-1"]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // A malformed marker is bad input naming it.
    std::fs::write(project.join("groundtruth.toml"), "format = 1\n").unwrap();
    let e = one_line_error(&out(&mut gt(&deep, cache.path(), &["run", "--suite", "planted"])));
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
        let blob = dir.join("blobs").join(format!("{:x}", name.len() * 7919 + commit.len()) + name);
        std::fs::copy(src, &blob).unwrap();
        std::os::unix::fs::symlink(&blob, snap.join(name)).unwrap();
    }
}

#[test]
fn hub_references_resolve_offline_from_the_cache_and_a_miss_is_one_line() {
    let (cwd, cache, hf) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let folder = cwd.path().join("tiny");
    let m = out(&mut gt(cwd.path(), cache.path(), &["materialize", "--model", "tiny-seeded", "--out", folder.to_str().unwrap()]));
    assert!(m.status.success(), "{}", text(&m.stderr));
    let gguf = cwd.path().join("tiny.gguf");
    let x = out(&mut gt(cwd.path(), cache.path(), &["export", "--model", "tiny-seeded", "--out", gguf.to_str().unwrap()]));
    assert!(x.status.success(), "{}", text(&x.stderr));
    let commit = "4b8f0e6c3a1d2f5e7a9b0c1d2e3f4a5b6c7d8e9f";
    let files: Vec<(&str, PathBuf)> = ["config.json", "model.safetensors", "tokenizer.json"].iter().map(|f| (*f, folder.join(f))).chain([("tiny.gguf", gguf.clone())]).collect();
    let refs: Vec<(&str, &Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
    hub_cache(hf.path(), "groundtruth/tiny-seeded", commit, &refs);
    let check = |model: &str, oracle: &str| {
        let oracle = repo().join(oracle);
        out(gt(cwd.path(), cache.path(), &["check", "--json", "--model", model, "--oracle", oracle.to_str().unwrap()]).env("HF_HUB_CACHE", hf.path()).env("HF_HUB_OFFLINE", "1"))
    };
    let verdict = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).map(|v| v["verdict"].as_str().unwrap_or("").to_string()).unwrap_or_else(|_| text(&o.stderr));
    let o = check("hf://groundtruth/tiny-seeded", "oracles/tiny-seeded/f32.json");
    assert_eq!((o.status.code(), verdict(&o)), (Some(0), "pass".into()), "{}", text(&o.stderr));
    let o = check(&format!("hf://groundtruth/tiny-seeded@{commit}/tiny.gguf"), "oracles/tiny-seeded-gguf/llamacpp-f32.json");
    assert_eq!((o.status.code(), verdict(&o)), (Some(0), "pass".into()), "{}", text(&o.stderr));
    let e = one_line_error(&check("hf://groundtruth/tiny-seeded/other.gguf", "oracles/tiny-seeded/f32.json"));
    assert!(e.contains("HF_HUB_OFFLINE") && e.contains(&hf.path().join("models--groundtruth--tiny-seeded/snapshots").join(commit).join("other.gguf").display().to_string()), "{e}");
}

/// A stand-in Python: answers the package probe from `$FAKE_PACKAGES` ("-" for missing),
/// and as the oracle script copies `$FAKE_ORACLE` to its `--out`.
fn fake_python(dir: &Path) -> PathBuf {
    let py = dir.join("python");
    std::fs::write(
        &py,
        "#!/bin/sh\nif [ \"$1\" = -c ]; then for p in $FAKE_PACKAGES; do echo \"$p\"; done; exit 0; fi\n\
         echo \"$@\" > \"$FAKE_LOG\"\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --out ]; then cp \"$FAKE_ORACLE\" \"$2\"; fi; shift; done\n",
    )
    .unwrap();
    let mut perm = std::fs::metadata(&py).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&py, perm).unwrap();
    py
}

#[test]
fn oracle_says_what_to_install_and_keeps_only_an_oracle_that_meets_the_contract() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gguf = cwd.path().join("tiny.gguf");
    let x = out(&mut gt(cwd.path(), cache.path(), &["export", "--model", "tiny-seeded", "--out", gguf.to_str().unwrap()]));
    assert!(x.status.success(), "{}", text(&x.stderr));
    let py = fake_python(cwd.path());
    let log = cwd.path().join("args.txt");
    let oracle = |packages: &str, made: &Path, dest: &str| {
        out(gt(cwd.path(), cache.path(), &["oracle", "--runtime", "llama.cpp", "--model", "tiny.gguf", "--out", dest, "--python", py.to_str().unwrap()])
            .env("FAKE_PACKAGES", packages)
            .env("FAKE_ORACLE", made)
            .env("FAKE_LOG", &log))
    };
    let good = repo().join("oracles/tiny-seeded-gguf/llamacpp-f32.json");
    let e = one_line_error(&oracle("- 2.4.6 -", &good, "o.json"));
    assert!(e.contains("llama-cpp-python==0.3.36") && e.contains("pip install -r") && e.contains("requirements-oracle-llamacpp.txt") && e.contains("GROUNDTRUTH_PYTHON"), "{e}");
    assert!(!cwd.path().join("o.json").exists());
    // Packages present: the script runs with the built-in script, prompt set and eval slice,
    // and its output (here the committed llama.cpp oracle of this very file) is kept.
    let o = oracle("0.3.36 2.4.6 0.19.0", &good, "o.json");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(cwd.path().join("o.json")).unwrap(), std::fs::read(&good).unwrap());
    let args = std::fs::read_to_string(&log).unwrap();
    assert!(args.contains("ci/oracle_llamacpp.py --model tiny.gguf --prompts") && args.contains("configs/eval.toml") && args.contains("--weights f32"), "{args}");
    // An oracle of another file, or one that breaks the contract, never reaches --out.
    let other = repo().join("oracles/tiny-seeded/f32.json");
    let e = one_line_error(&oracle("0.3.36 2.4.6 0.19.0", &other, "p.json"));
    assert!(e.contains("not usable") && (e.contains("model.sha256") || e.contains("runtime.name")), "{e}");
    let broken = cwd.path().join("broken.json");
    std::fs::write(&broken, std::fs::read_to_string(&good).unwrap().replacen("\"top_k\": 10", "\"top_k\": \"10\"", 1)).unwrap();
    let e = one_line_error(&oracle("0.3.36 2.4.6 0.19.0", &broken, "p.json"));
    assert!(e.contains("top_k"), "{e}");
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.starts_with(".p.json") || n == "p.json").collect();
    assert!(left.is_empty(), "partial output left: {left:?}");
}

/// A scratch project (`groundtruth init`) whose planted suite falsifies two claims.
fn falsified_run(dir: &Path, cache: &Path, extra: &[&str]) -> (PathBuf, Output) {
    let project = dir.join("proj");
    assert!(out(&mut gt(dir, cache, &["init", "proj"])).status.success());
    let claim = |id: &str, variant: &str| {
        format!(
            "[[claim]]\nid = \"{id}\"\nkind = \"quant_drift\"\nstatement = \"planted: {variant} is as good as f32\"\n\
             subjects = {{ models = [\"tiny-seeded\"], variants = [\"{variant}\"] }}\nbound = {{ statistic = \"kl_max\", op = \"<=\", value = 1e-9 }}\n\
             rationale = \"planted to fail\"\nregistered = \"2026-11-28\"\n"
        )
    };
    std::fs::write(project.join("claims/zz_planted.toml"), claim("PL-1", "q2_k") + &claim("PL-2", "q4_0")).unwrap();
    std::fs::write(project.join("suites/planted.toml"), "description = \"planted\"\nclaims = [\"PL-1\", \"PL-2\", \"QD-1\"]\n").unwrap();
    let mut args = vec!["run", "--suite", "planted"];
    args.extend_from_slice(extra);
    let o = out(&mut gt(&project, cache, &args));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    (project, o)
}

#[test]
fn junit_and_the_job_summary_carry_the_run() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let project = dir.path().join("proj");
    assert!(out(&mut gt(dir.path(), cache.path(), &["init", "proj"])).status.success());
    std::fs::write(project.join("suites/two.toml"), "description = \"two\"\nclaims = [\"QD-1\", \"CS-4\"]\n").unwrap();
    let o = out(gt(&project, cache.path(), &["run", "--suite", "two", "--junit", "junit.xml"]).env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let x = std::fs::read_to_string(project.join("junit.xml")).unwrap();
    assert!(x.starts_with("<?xml") && x.contains("name=\"groundtruth.two\"") && x.contains("failures=\"0\""), "{x}");
    assert!(x.contains("<skipped message=") && x.contains("quant_drift/tiny-seeded/q8_0/all/QD-1"), "the GPU claim skips, never passes: {x}");
    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(s.starts_with("earlier step\n") && s.contains("# groundtruth — suite `two`") && s.contains("| tiny-seeded |"), "{s}");
}

/// A stand-in `gh` on PATH: logs every call; `issue list` answers with one open issue
/// carrying `$OPEN_FINGERPRINT`; `label list` knows only "groundtruth".
fn fake_gh(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        "#!/bin/sh\necho \"$*\" >> \"$GH_LOG\"\ncase \"$1 $2\" in\n\
         \"issue list\") printf '[{\"number\": 41, \"body\": \"| fingerprint | `%s` |\"}]' \"$OPEN_FINGERPRINT\";;\n\
         \"label list\") echo '[{\"name\": \"groundtruth\"}]';;\n\
         \"issue create\") echo https://github.com/o/r/issues/42;;\nesac\n",
    )
    .unwrap();
    let mut perm = std::fs::metadata(&gh).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&gh, perm).unwrap();
    bin
}

#[test]
fn tickets_are_filed_once_per_fingerprint_through_gh() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (project, _) = falsified_run(dir.path(), cache.path(), &[]);
    let fp = |case: &str| {
        let md = std::fs::read_to_string(project.join("target/groundtruth/tickets").join(case)).unwrap();
        let i = md.find("`gt-").unwrap();
        md[i + 1..i + 20].to_string()
    };
    let (fp1, fp2) = (fp("quant_drift__tiny-seeded__q2_k__all__PL-1.md"), fp("quant_drift__tiny-seeded__q4_0__all__PL-2.md"));
    assert_ne!(fp1, fp2);
    let bin = fake_gh(dir.path());
    let log = dir.path().join("gh.log");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let ticket = |extra: &[&str]| {
        let mut args = vec!["ticket", "--gh", "--repo", "o/r"];
        args.extend_from_slice(extra);
        out(gt(&project, cache.path(), &args).env("PATH", &path).env("GH_LOG", &log).env("OPEN_FINGERPRINT", &fp1))
    };
    // Dry run: reads, prints the commands, creates nothing.
    let o = ticket(&["--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = text(&o.stdout);
    assert!(printed.contains(&format!("skip  {fp1}  already open as #41")), "{printed}");
    assert!(printed.contains("gh label create quant_drift --color") && printed.contains("gh issue create --title 'quant_drift: claim PL-2 falsified on tiny-seeded/q4_0'"), "{printed}");
    assert!(printed.contains("--label groundtruth --label quant_drift --repo o/r"), "{printed}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains("create"), "a dry run creates nothing: {calls}");
    // For real: only the new fingerprint is filed, with its body.
    std::fs::remove_file(&log).unwrap();
    let o = ticket(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let creates: Vec<&str> = calls.lines().filter(|l| l.starts_with("issue create")).collect();
    assert_eq!(creates.len(), 1, "{calls}");
    assert!(creates[0].contains("PL-2") && creates[0].contains("--repo o/r"), "{calls}");
    assert!(calls.lines().any(|l| l.starts_with("label create quant_drift")), "{calls}");
    let body = std::fs::read_to_string(project.join("target/groundtruth/issues").join(format!("{fp2}.md"))).unwrap();
    assert!(body.contains(&fp2) && body.contains("PL-2"), "{body}");
    assert!(text(&o.stdout).contains(&format!("filed {fp2}  https://github.com/o/r/issues/42")), "{}", text(&o.stdout));
    // Without gh: one line saying what to install.
    let o = out(gt(&project, cache.path(), &["ticket", "--gh"]).env("PATH", "/nonexistent"));
    let e = one_line_error(&o);
    assert!(e.contains("gh: not found") && e.contains("cli.github.com"), "{e}");
}
