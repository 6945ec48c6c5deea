//! `report.html` in a real browser: headless Chromium (the Debian package `chromium`)
//! renders the page of a run with a falsified claim; the test screenshots it and asserts
//! that the summary matrix, the drift heat map and the failed case are on the rendered page.
//!
//! Without Chromium the test fails under `CI=true` (so CI cannot pass without looking at
//! the page; `.ci/run` installs it) and is skipped with the reason elsewhere.
//! `GROUNDTRUTH_SCREENSHOT=FILE` keeps the screenshot.

mod common;

use common::installed::planted_claim;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GROUNDTRUTH_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

fn headless(browser: &Path, args: &[&str], page: &Path) -> std::process::Output {
    let mut c = Command::new(browser);
    // No sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
    ])
    .args(args)
    .arg(format!("file://{}", page.display()));
    c.output().unwrap()
}

#[test]
fn the_report_page_renders_the_matrices_and_the_failed_case_in_chromium() {
    let Some(browser) = chromium() else {
        let why = "chromium not found (apt-get install -y chromium, or set GROUNDTRUTH_CHROMIUM)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{why}: under CI=true the page must be rendered, not skipped"
        );
        eprintln!("skipped: {why}");
        return;
    };
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gt = |cwd: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_groundtruth"))
            .current_dir(cwd)
            .args(args)
            .env("XDG_CACHE_HOME", cache.path())
            .env_remove("GROUNDTRUTH_OUT")
            .output()
            .unwrap()
    };
    assert!(gt(dir.path(), &["init", "proj"]).status.success());
    let project = dir.path().join("proj");
    std::fs::write(
        project.join("claims/zz_planted.toml"),
        planted_claim("PL-1", "q2_k"),
    )
    .unwrap();
    std::fs::write(project.join("suites/page.toml"), "description = \"page\"\nclaims = [\"PL-1\", \"QD-1\", \"QD-2\", \"QD-3\", \"TP-1\", \"CS-4\"]\n").unwrap();
    let o = gt(&project, &["run", "--suite", "page"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = project.join("target/groundtruth/report.html");

    let dom = headless(&browser, &["--dump-dom"], &page);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<table id=\"summary-matrix\">") && dom.contains("tiny-seeded"),
        "summary matrix missing from the rendered page"
    );
    assert!(
        dom.contains("<table id=\"drift-matrix\">")
            && dom.contains("class=\"heat\" style=\"background:hsl("),
        "drift heat map missing"
    );
    assert!(dom.contains("<svg"), "the sweep plot is missing");
    assert!(
        dom.contains("id=\"quant_drift__tiny-seeded__q2_k__all__PL-1.md\"")
            && dom.contains("planted: q2_k is as good as f32"),
        "the failed case is missing"
    );
    assert!(
        dom.contains("Falsified cases (1)") && dom.contains("fingerprint"),
        "{dom}"
    );

    let shot = std::env::var_os("GROUNDTRUTH_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    let o = headless(
        &browser,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
        ],
        &page,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "a blank or broken screenshot ({} bytes)",
        png.len()
    );
}
