//! Suites (`suites/*.toml`): named selections of claims by id or kind.

use super::kind::ClaimKind;
use super::load::ClaimError;
use super::spec::ClaimSpec;
use serde::Deserialize;
use std::path::Path;

/// A suite as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// What the suite is for and how long it takes: required, so that every suite file
    /// says so to the person choosing one; the harness itself never reads it.
    #[serde(rename = "description")]
    _description: String,
    /// Claims selected by id.
    #[serde(default)]
    pub claims: Vec<String>,
    /// Claims selected by kind.
    #[serde(default)]
    pub kinds: Vec<ClaimKind>,
    /// Ids removed from the selection.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Reads `suites/<name>.toml`.
pub fn load(suites_dir: &Path, name: &str) -> Result<Suite, ClaimError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ClaimError::invalid(
            &suites_dir.join(name),
            1,
            format!("suite name '{name}' is not a plain name"),
        ));
    }
    let file = suites_dir.join(format!("{name}.toml"));
    if !file.is_file() && suites_dir.is_dir() {
        let mut names: Vec<String> = crate::fsutil::toml_files(suites_dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
            .collect();
        // By name, not by file name: `a-b.toml` sorts before `a.toml`.
        names.sort();
        return Err(ClaimError::invalid(
            &file,
            1,
            format!("no suite '{name}' (the suites are {})", names.join(", ")),
        ));
    }
    Ok(crate::input::read_toml(&file)?.0)
}

/// The claims a suite selects, in registration order. An id that names no claim is an error.
pub fn select(
    suite: &Suite,
    suite_file: &Path,
    all: &[ClaimSpec],
) -> Result<Vec<ClaimSpec>, ClaimError> {
    for id in suite.claims.iter().chain(&suite.exclude) {
        if !all.iter().any(|r| &r.id == id) {
            return Err(ClaimError::invalid(
                suite_file,
                1,
                format!("claim id '{id}' is not registered in claims/"),
            ));
        }
    }
    Ok(all
        .iter()
        .filter(|r| suite.claims.contains(&r.id) || suite.kinds.contains(&r.kind.claim_kind()))
        .filter(|r| !suite.exclude.contains(&r.id))
        .filter(|r| r.retired.is_none())
        .cloned()
        .collect())
}
