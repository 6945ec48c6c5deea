//! Inputs a test needs that a checkout may lack (the fetched SmolLM2 file, the corpus).
//!
//! Std only: the integration tests include it through `tests/common` and the unit tests
//! through `src/testutil.rs`, so both return early the same way. Locally a missing input
//! skips the test with a line saying so; under `CI` (set and not `0`/`false`, as CI
//! services set it) it fails the test: a test that returned early checked nothing, and CI
//! must not go green on it.

use std::path::{Path, PathBuf};

/// `path` when it exists. Otherwise `None` after printing why the test returns early, or,
/// under `CI`, a panic naming the file and `fetch` (the command that provides it).
pub fn need_file(path: &Path, fetch: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "{} not found and CI is set: a test that returns early checks nothing; run {fetch}",
        path.display()
    );
    eprintln!(
        "SKIP: {} not found (run {fetch}); this test checked nothing",
        path.display()
    );
    None
}
