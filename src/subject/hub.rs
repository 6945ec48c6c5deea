//! Hugging Face hub models: `hf://ORG/REPO[@REV][/FILE]` references resolved in the
//! standard Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`: `models--ORG--REPO/{refs,snapshots,blobs}`, shared with
//! Python's `huggingface_hub`), and a registered model's pinned original.
//!
//! A cached file is used without touching the network; an uncached one is downloaded by
//! hf-hub into the same cache, unless `HF_HUB_OFFLINE` is set, which is then an error
//! naming the path looked for. Tests use a pre-populated cache, never the network.

use super::registry::ModelEntry;
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

/// The scheme of a hub reference.
pub const SCHEME: &str = "hf://";

/// The files a model folder needs (`groundtruth check`, `ppl`, the transformers oracle).
pub const FOLDER_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// Fetched along with a folder when the repo has them (transformers reads them).
const FOLDER_OPTIONAL: [&str; 3] = [
    "tokenizer_config.json",
    "generation_config.json",
    "special_tokens_map.json",
];

/// A parsed `hf://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// `ORG/REPO`.
    pub repo: String,
    /// Branch, tag or commit; `main` when not given.
    pub revision: String,
    /// A file in the repo; `None` for the repo folder (a Hugging Face model folder).
    pub file: Option<String>,
}

/// Why a hub reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Not of the form `hf://ORG/REPO[@REV][/FILE]`.
    #[error("{reference}: {msg} (expected hf://ORG/REPO[@REVISION][/FILE])")]
    Malformed {
        /// The reference as given.
        reference: String,
        msg: String,
    },
    /// Not cached, and downloading is not allowed.
    #[error("{reference}: not in the Hugging Face cache (looked for {}) and HF_HUB_OFFLINE is set; unset it to download, or set HF_HUB_CACHE or HF_HOME to the cache that holds it", looked.display())]
    NotCached {
        /// The reference as given.
        reference: String,
        /// The path it would have in the cache.
        looked: PathBuf,
    },
    /// The download failed.
    #[error("{reference}: download failed: {msg}")]
    Download {
        /// The reference as given.
        reference: String,
        /// What hf-hub said.
        msg: String,
    },
    /// The registry names no hub source for the model.
    #[error("model '{0}' has no [hub] source in configs/models.toml")]
    NoSource(String),
    /// The model's hub source lists no file.
    #[error("model '{0}': [hub] lists no files")]
    NoFiles(String),
}

/// Where hub files are cached, and whether the network may be used.
#[derive(Debug, Clone)]
pub struct HubEnv {
    /// The cache root (the folder holding `models--ORG--REPO`).
    pub cache: PathBuf,
    /// `HF_HUB_OFFLINE` is set: never download.
    pub offline: bool,
}

impl HubEnv {
    /// From the environment, as `huggingface_hub` reads it.
    pub fn from_env() -> HubEnv {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let cache = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
            .unwrap_or_else(|| {
                var("HOME")
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".cache/huggingface/hub")
            });
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        HubEnv { cache, offline }
    }
}

/// Whether `s` is a hub reference rather than a local path.
pub fn is_hub_ref(s: &str) -> bool {
    s.starts_with(SCHEME)
}

/// Parses `hf://ORG/REPO[@REV][/FILE]`.
pub fn parse(reference: &str) -> Result<HubRef, HubError> {
    let bad = |msg: &str| HubError::Malformed {
        reference: reference.into(),
        msg: msg.into(),
    };
    let rest = reference
        .strip_prefix(SCHEME)
        .ok_or_else(|| bad("does not start with hf://"))?;
    let mut parts = rest.splitn(3, '/');
    let org = parts.next().unwrap_or_default();
    let name_rev = parts.next().ok_or_else(|| bad("no repository name"))?;
    let file = parts
        .next()
        .filter(|f| !f.is_empty() && *f != "/")
        .map(|f| f.trim_end_matches('/').to_string());
    let (name, revision) = match name_rev.split_once('@') {
        Some((n, r)) => (n, r),
        None => (name_rev, "main"),
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s != "."
            && s != ".."
    };
    if !plain(org) || !plain(name) {
        return Err(bad("organisation and repository must be plain names"));
    }
    if !plain(revision) {
        return Err(bad(
            "the revision must be a plain branch, tag or commit name",
        ));
    }
    if let Some(f) = &file {
        if f.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(bad("the file must be a plain path inside the repository"));
        }
    }
    Ok(HubRef {
        repo: format!("{org}/{name}"),
        revision: revision.into(),
        file,
    })
}

impl HubRef {
    /// `models--ORG--REPO` under the cache.
    fn repo_dir(&self, env: &HubEnv) -> PathBuf {
        env.cache
            .join(format!("models--{}", self.repo.replace('/', "--")))
    }

    /// The cached snapshot folder of the revision: a commit names its snapshot directly,
    /// a branch or tag through `refs/<rev>`.
    fn snapshot(&self, env: &HubEnv) -> PathBuf {
        let dir = self.repo_dir(env);
        let is_commit =
            self.revision.len() == 40 && self.revision.chars().all(|c| c.is_ascii_hexdigit());
        let commit = match is_commit {
            true => self.revision.clone(),
            false => crate::fsutil::read_text(&dir.join("refs").join(&self.revision))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| format!("<commit of refs/{}>", self.revision)),
        };
        dir.join("snapshots").join(commit)
    }

    fn wanted(&self) -> Vec<&str> {
        match &self.file {
            Some(f) => vec![f.as_str()],
            None => FOLDER_FILES.to_vec(),
        }
    }
}

/// The local path of a hub reference: the cached file (or snapshot folder), downloaded
/// first when missing and the network is allowed.
pub fn resolve(reference: &str, env: &HubEnv) -> Result<PathBuf, HubError> {
    let r = parse(reference)?;
    let snapshot = r.snapshot(env);
    let missing: Vec<&str> = r
        .wanted()
        .into_iter()
        .filter(|f| !snapshot.join(f).is_file())
        .collect();
    let target = |snap: &Path| {
        r.file
            .as_ref()
            .map(|f| snap.join(f))
            .unwrap_or_else(|| snap.to_path_buf())
    };
    if missing.is_empty() {
        return Ok(target(&snapshot));
    }
    if env.offline {
        return Err(HubError::NotCached {
            reference: reference.into(),
            looked: snapshot.join(missing[0]),
        });
    }
    let download = |msg: String| HubError::Download {
        reference: reference.into(),
        msg,
    };
    let api = ApiBuilder::from_cache(Cache::new(env.cache.clone()))
        .with_progress(true)
        .build()
        .map_err(|e| download(format!("hub client: {e}")))?;
    let repo = api.repo(Repo::with_revision(
        r.repo.clone(),
        RepoType::Model,
        r.revision.clone(),
    ));
    let mut first = None;
    for f in r.wanted() {
        let p = repo.get(f).map_err(|e| download(format!("{f}: {e}")))?;
        first.get_or_insert(p);
    }
    if r.file.is_none() {
        for f in FOLDER_OPTIONAL {
            // Optional files: a repo without them is still a model folder.
            let _ = repo.get(f);
        }
    }
    let got = first.ok_or_else(|| download("nothing to fetch".into()))?;
    // hf-hub returns `snapshots/<commit>/<file>`: the folder is that file's parent.
    Ok(match &r.file {
        Some(_) => got,
        None => got.parent().map(Path::to_path_buf).unwrap_or(got),
    })
}

/// Downloads the entry's pinned hub files (repo at the pinned revision) into the standard
/// Hugging Face cache and returns their local paths (a GGUF file, or the files of a
/// folder), ready for `groundtruth check --model`.
pub fn fetch(entry: &ModelEntry, env: &HubEnv) -> Result<Vec<PathBuf>, HubError> {
    let hub = entry
        .hub
        .as_ref()
        .ok_or_else(|| HubError::NoSource(entry.name.clone()))?;
    if hub.files.is_empty() {
        return Err(HubError::NoFiles(entry.name.clone()));
    }
    hub.files
        .iter()
        .map(|file| {
            resolve(
                &format!("{SCHEME}{}@{}/{file}", hub.repo, hub.revision),
                env,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_strictly() {
        let r = parse("hf://HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
        assert_eq!(
            r,
            HubRef {
                repo: "HuggingFaceTB/SmolLM2-135M-Instruct".into(),
                revision: "main".into(),
                file: None
            }
        );
        let r = parse("hf://a/b@v1.0/sub/m.gguf").unwrap();
        assert_eq!(
            (r.revision.as_str(), r.file.as_deref()),
            ("v1.0", Some("sub/m.gguf"))
        );
        for bad in [
            "hf://a",
            "hf://a/",
            "hf:///b",
            "hf://a/b@",
            "hf://a/b/../x",
            "hf://a/b@x/./y",
            "hf://a b/c",
            "s3://a/b",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(bad) && e.contains("hf://ORG/REPO"),
                "{bad}: {e}"
            );
        }
    }

    /// A cache laid out as huggingface_hub writes it: blobs, a snapshot of links, a ref.
    fn cache_with(dir: &Path, commit: &str) -> HubEnv {
        let repo = dir.join("models--org--tiny");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        std::fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();
        for f in FOLDER_FILES.iter().chain(["m.gguf"].iter()) {
            std::fs::write(repo.join("blobs").join(format!("blob-{f}")), f.as_bytes()).unwrap();
            std::os::unix::fs::symlink(
                format!("../../blobs/blob-{f}"),
                repo.join("snapshots").join(commit).join(f),
            )
            .unwrap();
        }
        HubEnv {
            cache: dir.to_path_buf(),
            offline: true,
        }
    }

    #[test]
    fn cached_files_and_folders_resolve_offline_and_a_miss_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let env = cache_with(dir.path(), commit);
        let snap = dir.path().join("models--org--tiny/snapshots").join(commit);
        assert_eq!(
            resolve("hf://org/tiny/m.gguf", &env).unwrap(),
            snap.join("m.gguf")
        );
        assert_eq!(
            std::fs::read(resolve("hf://org/tiny/m.gguf", &env).unwrap()).unwrap(),
            b"m.gguf"
        );
        assert_eq!(resolve("hf://org/tiny", &env).unwrap(), snap);
        assert_eq!(
            resolve(&format!("hf://org/tiny@{commit}/m.gguf"), &env).unwrap(),
            snap.join("m.gguf")
        );
        let e = resolve("hf://org/tiny/other.gguf", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HF_HUB_OFFLINE")
                && e.contains(&snap.join("other.gguf").display().to_string()),
            "{e}"
        );
        let e = resolve("hf://org/tiny@v2/m.gguf", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("refs/v2"), "{e}");
        std::fs::remove_file(snap.join("tokenizer.json")).unwrap();
        let e = resolve("hf://org/tiny", &env).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer.json"),
            "a folder needs every file: {e}"
        );
    }
}
