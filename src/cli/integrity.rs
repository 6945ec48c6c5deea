//! `corrupt`, `manifest`, `verify` and `health`: damaging a model file on purpose, and
//! catching damage without a reference.

use super::commands::model_path;
use crate::integrity::{health_check_file, manifest, verify};
use crate::plan::{EXIT_FALSIFIED, EXIT_HOLDS};
use crate::stored::StoredFile;
use crate::transform::flip::{write_corrupted, BitClass, Region, Severity, Target};
use anyhow::{bail, Result};
use std::path::Path;

/// What `groundtruth corrupt` was asked to do.
pub(super) struct CorruptArgs<'a> {
    pub model: &'a str,
    pub out: &'a Path,
    pub seed: u64,
    pub count: Option<u64>,
    pub rate: Option<&'a str>,
    pub bits: BitClass,
    pub region: Region,
    pub tensors: Option<&'a str>,
}

pub(super) fn corrupt(a: &CorruptArgs) -> Result<u8> {
    let severity = match (a.count, a.rate) {
        (Some(n), None) => Severity::parse(&format!("count={n}")),
        (None, Some(r)) => Severity::parse(&format!("rate={r}")),
        _ => bail!("give exactly one of --count N and --rate R"),
    }
    .map_err(anyhow::Error::msg)?;
    let input = model_path(a.model)?;
    if input.is_dir() && a.out.is_file() {
        bail!(
            "{}: is a file; a model folder is corrupted into a folder",
            a.out.display()
        );
    }
    if !input.is_dir() && a.out.is_dir() {
        bail!("{}: is a folder; give the file to write", a.out.display());
    }
    let mut target = Target::class(a.bits, a.region);
    target.tensors = a.tensors.map(str::to_string);
    let (list, damaged) = write_corrupted(&input, a.out, &target, severity, a.seed)?;
    let sha = list
        .output
        .as_ref()
        .map(|o| o.sha256.as_str())
        .unwrap_or_default();
    outln!("wrote {} (sha256 {sha})", damaged.display());
    outln!("{}", list.summary());
    outln!(
        "flip list: {}",
        crate::transform::flip::flips_path(&damaged).display()
    );
    for line in list.describe().iter().take(10) {
        outln!("  {line}");
    }
    if list.flips.len() > 10 {
        outln!("  … {} more in the flip list", list.flips.len() - 10);
    }
    Ok(EXIT_HOLDS)
}

pub(super) fn write_manifest(model: &str, out: &Path) -> Result<u8> {
    let m = manifest(&model_path(model)?)?;
    let json = serde_json::to_string_pretty(&m)?;
    crate::fsutil::atomic_write(out, json.as_bytes())?;
    let tensors: usize = m.files.iter().map(|f| f.tensors.len()).sum();
    outln!(
        "wrote {} ({} file(s), {tensors} tensor(s))",
        out.display(),
        m.files.len()
    );
    Ok(EXIT_HOLDS)
}

pub(super) fn verify_model(model: &str, manifest_path: &Path, json: bool) -> Result<u8> {
    super::commands::given_file(
        manifest_path,
        "manifest",
        "a manifest that `groundtruth manifest` wrote",
    )?;
    let m = crate::integrity::read_manifest(manifest_path)?;
    let v = verify(&model_path(model)?, &m)?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "intact": v.intact(), "changes": v.changes, "unlisted": v.unlisted })
            )?
        );
    } else {
        for c in &v.changes {
            outln!("changed: {c}");
        }
        for u in &v.unlisted {
            outln!("not in the manifest (not judged): {u}");
        }
        match v.intact() {
            true => {
                outln!("intact: every file and tensor the manifest lists has its recorded SHA-256")
            }
            false => outln!(
                "{} change(s); tensors changed: {}",
                v.changes.len(),
                v.changed_tensors().join(", ")
            ),
        }
    }
    Ok(if v.intact() {
        EXIT_HOLDS
    } else {
        EXIT_FALSIFIED
    })
}

pub(super) fn health(model: &str, json: bool) -> Result<u8> {
    let file = StoredFile::read(&StoredFile::model_file(&model_path(model)?)?)?;
    let flagged = health_check_file(&file)?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "healthy": flagged.is_empty(), "tensors": file.tensors.len(), "flagged": flagged })
            )?
        );
    } else {
        for h in &flagged {
            outln!("{}: {}", h.tensor, h.finding);
        }
        outln!(
            "{} of {} tensor(s) flagged ({})",
            flagged.len(),
            file.tensors.len(),
            file.path.display()
        );
    }
    Ok(if flagged.is_empty() {
        EXIT_HOLDS
    } else {
        EXIT_FALSIFIED
    })
}
