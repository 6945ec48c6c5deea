//! The CI side of an installed `groundtruth`: oracles made through a stand-in Python,
//! JUnit and GitHub job summaries, and tickets filed once through a stand-in `gh`.

mod common;

use common::installed::{gt, one_line_error, out, planted_claim, repo, script, text, tiny};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A stand-in Python: answers the package probe from `$FAKE_PACKAGES` ("-" for missing),
/// and as the oracle script copies `$FAKE_ORACLE` to its `--out`.
fn fake_python(dir: &Path) -> PathBuf {
    let py = dir.join("python");
    script(
        &py,
        "#!/bin/sh\nif [ \"$1\" = -c ]; then for p in $FAKE_PACKAGES; do echo \"$p\"; done; exit 0; fi\n\
         echo \"$@\" > \"$FAKE_LOG\"\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --out ]; then cp \"$FAKE_ORACLE\" \"$2\"; fi; shift; done\n",
    );
    py
}

#[test]
fn oracle_says_what_to_install_and_keeps_only_an_oracle_that_meets_the_contract() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gguf = cwd.path().join("tiny.gguf");
    tiny(cwd.path(), cache.path(), "export", &gguf);
    let py = fake_python(cwd.path());
    let log = cwd.path().join("args.txt");
    let oracle = |packages: &str, made: &Path, dest: &str| {
        out(gt(
            cwd.path(),
            cache.path(),
            &[
                "oracle",
                "--runtime",
                "llama.cpp",
                "--model",
                "tiny.gguf",
                "--out",
                dest,
                "--python",
                py.to_str().unwrap(),
            ],
        )
        .env("FAKE_PACKAGES", packages)
        .env("FAKE_ORACLE", made)
        .env("FAKE_LOG", &log))
    };
    let good = repo().join("oracles/tiny-seeded-gguf/llamacpp-f32.json");
    let e = one_line_error(&oracle("- 2.4.6 -", &good, "o.json"));
    assert!(
        e.contains("llama-cpp-python==0.3.36")
            && e.contains("(missing llama-cpp-python==0.3.36, gguf==0.19.0)")
            && e.contains("pip install -r")
            && e.contains("requirements-oracle-llamacpp.txt")
            && e.contains("GROUNDTRUTH_PYTHON"),
        "{e}"
    );
    assert!(!cwd.path().join("o.json").exists());
    // Packages present: the script runs with the built-in script, prompt set and eval slice,
    // and its output (here the committed llama.cpp oracle of this very file) is kept.
    let o = oracle("0.3.36 2.4.6 0.19.0", &good, "o.json");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(cwd.path().join("o.json")).unwrap(),
        std::fs::read(&good).unwrap()
    );
    let args = std::fs::read_to_string(&log).unwrap();
    assert!(
        args.contains("ci/oracle_llamacpp.py --model tiny.gguf --prompts")
            && args.contains("configs/eval.toml")
            && args.contains("--weights f32"),
        "{args}"
    );
    // An oracle of another file, or one that breaks the contract, never reaches --out.
    let other = repo().join("oracles/tiny-seeded/f32.json");
    let e = one_line_error(&oracle("0.3.36 2.4.6 0.19.0", &other, "p.json"));
    assert!(
        e.contains("not usable") && (e.contains("model.sha256") || e.contains("runtime.name")),
        "{e}"
    );
    let broken = cwd.path().join("broken.json");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&good)
            .unwrap()
            .replacen("\"top_k\": 10", "\"top_k\": \"10\"", 1),
    )
    .unwrap();
    let e = one_line_error(&oracle("0.3.36 2.4.6 0.19.0", &broken, "p.json"));
    assert!(e.contains("top_k"), "{e}");
    let left: Vec<_> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".p.json") || n == "p.json")
        .collect();
    assert!(left.is_empty(), "partial output left: {left:?}");
}

/// A scratch project (`groundtruth init`) whose planted suite falsifies two claims.
fn falsified_run(dir: &Path, cache: &Path, extra: &[&str]) -> (PathBuf, Output) {
    let project = dir.join("proj");
    assert!(out(&mut gt(dir, cache, &["init", "proj"])).status.success());
    std::fs::write(
        project.join("claims/zz_planted.toml"),
        planted_claim("PL-1", "q2_k") + &planted_claim("PL-2", "q4_0"),
    )
    .unwrap();
    std::fs::write(
        project.join("suites/planted.toml"),
        "description = \"planted\"\nclaims = [\"PL-1\", \"PL-2\", \"QD-1\"]\n",
    )
    .unwrap();
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
    assert!(out(&mut gt(dir.path(), cache.path(), &["init", "proj"]))
        .status
        .success());
    std::fs::write(
        project.join("suites/two.toml"),
        "description = \"two\"\nclaims = [\"QD-1\", \"CS-4\"]\n",
    )
    .unwrap();
    let o = out(gt(
        &project,
        cache.path(),
        &["run", "--suite", "two", "--junit", "junit.xml"],
    )
    .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let x = std::fs::read_to_string(project.join("junit.xml")).unwrap();
    assert!(
        x.starts_with("<?xml")
            && x.contains("name=\"groundtruth.two\"")
            && x.contains("failures=\"0\""),
        "{x}"
    );
    assert!(
        x.contains("<skipped message=") && x.contains("quant_drift/tiny-seeded/q8_0/all/QD-1"),
        "the GPU claim skips, never passes: {x}"
    );
    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(
        s.starts_with("earlier step\n")
            && s.contains("# groundtruth — suite `two`")
            && s.contains("| tiny-seeded |"),
        "{s}"
    );
}

/// A stand-in `gh` on PATH: logs every call; `issue list` answers with one open issue
/// carrying `$OPEN_FINGERPRINT`; `label list` knows only "groundtruth".
fn fake_gh(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin.join("gh"),
        "#!/bin/sh\necho \"$*\" >> \"$GH_LOG\"\ncase \"$1 $2\" in\n\
         \"issue list\") printf '[{\"number\": 41, \"body\": \"| fingerprint | `%s` |\"}]' \"$OPEN_FINGERPRINT\";;\n\
         \"label list\") echo '[{\"name\": \"groundtruth\"}]';;\n\
         \"issue create\") echo https://github.com/o/r/issues/42;;\nesac\n",
    );
    bin
}

#[test]
fn tickets_are_filed_once_per_fingerprint_through_gh() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (project, _) = falsified_run(dir.path(), cache.path(), &[]);
    let fp = |case: &str| {
        let md =
            std::fs::read_to_string(project.join("target/groundtruth/tickets").join(case)).unwrap();
        let i = md.find("`gt-").unwrap();
        md[i + 1..i + 20].to_string()
    };
    let (fp1, fp2) = (
        fp("quant_drift__tiny-seeded__q2_k__all__PL-1.md"),
        fp("quant_drift__tiny-seeded__q4_0__all__PL-2.md"),
    );
    assert_ne!(fp1, fp2);
    let bin = fake_gh(dir.path());
    let log = dir.path().join("gh.log");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let ticket = |extra: &[&str]| {
        let mut args = vec!["ticket", "--gh", "--repo", "o/r"];
        args.extend_from_slice(extra);
        out(gt(&project, cache.path(), &args)
            .env("PATH", &path)
            .env("GH_LOG", &log)
            .env("OPEN_FINGERPRINT", &fp1))
    };
    // Dry run: reads, prints the commands, creates nothing.
    let o = ticket(&["--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = text(&o.stdout);
    assert!(
        printed.contains(&format!("skip  {fp1}  already open as #41")),
        "{printed}"
    );
    assert!(
        printed.contains("gh label create quant_drift --color")
            && printed.contains(
                "gh issue create --title 'quant_drift: claim PL-2 falsified on tiny-seeded/q4_0'"
            ),
        "{printed}"
    );
    assert!(
        printed.contains("--label groundtruth --label quant_drift --repo o/r"),
        "{printed}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        !calls.contains("create"),
        "a dry run creates nothing: {calls}"
    );
    assert!(
        calls.contains("issue list --state open --label groundtruth --limit 1000 --json number,body --repo o/r"),
        "{calls}"
    );
    // For real: only the new fingerprint is filed, with its body.
    std::fs::remove_file(&log).unwrap();
    let o = ticket(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let creates: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("issue create"))
        .collect();
    assert_eq!(creates.len(), 1, "{calls}");
    assert!(
        creates[0].contains("PL-2") && creates[0].contains("--repo o/r"),
        "{calls}"
    );
    assert!(
        calls
            .lines()
            .any(|l| l.starts_with("label create quant_drift")),
        "{calls}"
    );
    let body = std::fs::read_to_string(
        project
            .join("target/groundtruth/issues")
            .join(format!("{fp2}.md")),
    )
    .unwrap();
    assert!(body.contains(&fp2) && body.contains("PL-2"), "{body}");
    assert!(
        text(&o.stdout).contains(&format!("filed {fp2}  https://github.com/o/r/issues/42")),
        "{}",
        text(&o.stdout)
    );
    // Without gh: one line saying what to install.
    let o = out(gt(&project, cache.path(), &["ticket", "--gh"]).env("PATH", "/nonexistent"));
    let e = one_line_error(&o);
    assert!(
        e.contains("gh: not found") && e.contains("cli.github.com"),
        "{e}"
    );
}
