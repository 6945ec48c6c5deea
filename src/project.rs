//! Where things live: the project root, its folders, the output folder and the model cache.
//!
//! The root is found as cargo finds `Cargo.toml`: `--root DIR` if given, else the nearest
//! folder at or above the working directory that holds `groundtruth.toml`, else the
//! project built into the binary (`crate::builtin`), unpacked into the cache. Inside a
//! checkout the checkout's files are read, so an edited claim takes effect at once.

use crate::fsutil::FsError;
use crate::input::InputError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The prompt set claims use unless they name another.
pub(crate) const DEFAULT_PROMPTS: &str = "configs/prompts.toml";
/// The fixed evaluation slices (perplexity text, context, chunks).
pub(crate) const EVAL_FILE: &str = "configs/eval.toml";
/// The model registry.
pub const MODELS_FILE: &str = "configs/models.toml";
/// The file that marks a project root.
pub(crate) const MARKER: &str = "groundtruth.toml";
/// The `format` a marker file must declare.
pub(crate) const PROJECT_FORMAT: &str = "groundtruth-project/1";

/// How the root was chosen; error messages use it to say how to point elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Named by `--root`.
    Flag,
    /// The nearest folder above the working directory holding this marker file.
    Marker(PathBuf),
    /// The project built into the binary.
    BuiltIn,
    /// Handed over by a library caller (tests, the checkout the crate was built from).
    Given,
}

/// A groundtruth project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding `claims/`, `suites/`, `configs/`, `oracles/`, `data/`.
    pub root: PathBuf,
    /// How `root` was chosen.
    pub origin: Origin,
    /// The folder under which `target/groundtruth` is written.
    out_base: PathBuf,
}

/// Why no project could be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// `--root` names no folder.
    #[error("--root {}: no such folder (point it at a folder holding claims/, suites/, configs/; `groundtruth init DIR` writes one)", .0.display())]
    NoRoot(PathBuf),
    /// The marker file is unreadable or malformed.
    #[error(transparent)]
    Marker(#[from] InputError),
    /// The built-in project could not be unpacked.
    #[error("unpacking the built-in project: {0}")]
    Unpack(#[source] FsError),
    /// The working directory is unknown.
    #[error("the working directory: {0}")]
    Cwd(#[source] std::io::Error),
}

/// `groundtruth.toml`: marks a project root.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerFile {
    format: String,
}

impl Project {
    /// A project rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Project {
        let root = root.into();
        Project {
            out_base: root.clone(),
            root,
            origin: Origin::Given,
        }
    }

    /// The checkout this crate was built from (tests use it).
    pub fn from_manifest() -> Project {
        Project::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The project a command line means: `--root`, else the nearest `groundtruth.toml` at
    /// or above the working directory, else the built-in project (whose outputs go under
    /// the working directory).
    pub fn locate(flag: Option<&Path>) -> Result<Project, ProjectError> {
        if let Some(root) = flag {
            if !root.is_dir() {
                return Err(ProjectError::NoRoot(root.to_path_buf()));
            }
            let marker = root.join(MARKER);
            if marker.is_file() {
                read_marker(&marker)?;
            }
            return Ok(Project {
                origin: Origin::Flag,
                ..Project::new(root)
            });
        }
        let cwd = std::env::current_dir().map_err(ProjectError::Cwd)?;
        if let Some(dir) = cwd.ancestors().find(|d| d.join(MARKER).is_file()) {
            let marker = dir.join(MARKER);
            read_marker(&marker)?;
            return Ok(Project {
                origin: Origin::Marker(marker),
                ..Project::new(dir)
            });
        }
        let root = crate::builtin::unpack().map_err(ProjectError::Unpack)?;
        Ok(Project {
            root,
            origin: Origin::BuiltIn,
            out_base: cwd,
        })
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

    /// Output folder: `$GROUNDTRUTH_OUT`, else `target/groundtruth` under the root (under
    /// the working directory for the built-in project).
    pub fn out_dir(&self) -> PathBuf {
        std::env::var_os("GROUNDTRUTH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.out_base.join("target/groundtruth"))
    }

    /// Path shown in reports: relative to the root when inside it.
    pub fn display(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// What a missing project file means and how to point elsewhere: one clause for an
    /// error message.
    pub fn where_to_look(&self) -> String {
        let root = self.root.display();
        match &self.origin {
            Origin::Flag => format!("the project at {root} was named by --root; point --root at a complete project (`groundtruth init DIR` writes one)"),
            Origin::Marker(m) => format!(
                "the project is {root}, marked by {}; add the file there, or pass --root DIR (`groundtruth init DIR` writes a complete project)",
                m.display()
            ),
            Origin::BuiltIn => format!(
                "no groundtruth.toml at or above the working directory, so the project built into this binary ({root}) was used; \
                 pass --root DIR or run inside a project"
            ),
            Origin::Given => format!("the project at {root}"),
        }
    }
}

fn read_marker(file: &Path) -> Result<(), InputError> {
    let (m, _): (MarkerFile, String) = crate::input::read_toml(file)?;
    if m.format != PROJECT_FORMAT {
        return Err(InputError::invalid(
            file,
            1,
            format!("field 'format': '{}' is not '{PROJECT_FORMAT}'", m.format),
        ));
    }
    Ok(())
}

/// The model cache, outside the repository: `$GROUNDTRUTH_MODELS` or `~/.cache/groundtruth/models`.
pub fn models_cache() -> PathBuf {
    if let Some(p) = std::env::var_os("GROUNDTRUTH_MODELS") {
        return PathBuf::from(p);
    }
    home().join(".cache/groundtruth/models")
}

/// groundtruth's own cache folder (the unpacked built-in project):
/// `$XDG_CACHE_HOME/groundtruth`, else `~/.cache/groundtruth`.
pub(crate) fn cache_home() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x).join("groundtruth"),
        None => home().join(".cache/groundtruth"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_marked_and_its_marker_parses() {
        let p = Project::from_manifest();
        read_marker(&p.path(MARKER)).unwrap();
    }

    #[test]
    fn a_malformed_marker_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join(MARKER);
        std::fs::write(&m, "format = \"groundtruth-project/9\"\n").unwrap();
        let e = read_marker(&m).unwrap_err().to_string();
        assert!(
            e.contains("groundtruth.toml:1") && e.contains("groundtruth-project/1"),
            "{e}"
        );
        std::fs::write(&m, "format = \"groundtruth-project/1\"\nname = 3\n").unwrap();
        assert!(read_marker(&m)
            .unwrap_err()
            .to_string()
            .contains("groundtruth.toml:2"));
        let e = Project::locate(Some(&dir.path().join("nope")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--root ") && e.contains("nope") && e.contains("no such folder"),
            "{e}"
        );
    }
}
