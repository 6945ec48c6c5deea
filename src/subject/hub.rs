//! Fetching a registered model's original from the Hugging Face hub (users online only:
//! tests load local files, and this machine's CI cannot reach the hub).

use super::registry::ModelEntry;
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};
use std::path::{Path, PathBuf};


/// Downloads the entry's pinned hub files (repo at the pinned revision) into `cache` and
/// returns their local paths (a GGUF file, or the files of a folder), ready for
/// `groundtruth check --model`.
pub fn fetch(entry: &ModelEntry, cache: &Path) -> Result<Vec<PathBuf>, String> {
    let hub = entry.hub.as_ref().ok_or_else(|| format!("model '{}' has no [hub] source in configs/models.toml", entry.name))?;
    let api = ApiBuilder::new().with_cache_dir(cache.to_path_buf()).with_progress(true).build().map_err(|e| format!("hub client: {e}"))?;
    let repo = api.repo(Repo::with_revision(hub.repo.clone(), RepoType::Model, hub.revision.clone()));
    if hub.files.is_empty() {
        return Err(format!("model '{}': [hub] lists no files", entry.name));
    }
    hub.files.iter().map(|file| repo.get(file).map_err(|e| format!("{}@{}: {file}: {e}", hub.repo, hub.revision))).collect()
}
