//! Where things live: the project root, its folders, the output folder and the model cache.

use std::path::{Path, PathBuf};

/// The prompt set claims use unless they name another.
pub const DEFAULT_PROMPTS: &str = "configs/prompts.toml";
/// The fixed evaluation slices (perplexity text, context, chunks).
pub const EVAL_FILE: &str = "configs/eval.toml";
/// The model registry.
pub const MODELS_FILE: &str = "configs/models.toml";

/// A groundtruth project checkout.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding `claims/`, `suites/`, `configs/`, `oracles/`.
    pub root: PathBuf,
}

impl Project {
    /// A project rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Project {
        Project { root: root.into() }
    }

    /// The checkout this crate was built from (tests use it).
    pub fn from_manifest() -> Project {
        Project::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// A path relative to the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// `claims/`.
    pub fn claims_dir(&self) -> PathBuf {
        self.path("claims")
    }

    /// `suites/`.
    pub fn suites_dir(&self) -> PathBuf {
        self.path("suites")
    }

    /// Output folder: `$GROUNDTRUTH_OUT` or `target/groundtruth`.
    pub fn out_dir(&self) -> PathBuf {
        std::env::var_os("GROUNDTRUTH_OUT").map(PathBuf::from).unwrap_or_else(|| self.path("target/groundtruth"))
    }

    /// Path shown in reports: relative to the root when inside it.
    pub fn display(&self, p: &Path) -> String {
        p.strip_prefix(&self.root).unwrap_or(p).display().to_string()
    }
}

/// The model cache, outside the repository: `$GROUNDTRUTH_MODELS` or `~/.cache/groundtruth/models`.
pub fn models_cache() -> PathBuf {
    if let Some(p) = std::env::var_os("GROUNDTRUTH_MODELS") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/groundtruth/models")
}
