//! `quantize`, `export` and `inspect`: converting a model and looking inside the result.

use super::ExportFormat;
use crate::plan::{EXIT_FALSIFIED, EXIT_HOLDS};
use crate::project::{Project, MODELS_FILE};
use crate::subject::registry::{self, GgufSource, ModelEntry};
use crate::subject::{export_variant, load_base, Base};
use crate::transform::{group_fallbacks, tensor_errors, Fallback};
use crate::variant::Variant;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// A registered model by name, or a GGUF file given by path (registered on the fly under
/// its file stem, with its own hash).
pub(super) fn resolve(project: &Project, model: &str) -> Result<(Base, Vec<ModelEntry>)> {
    let mut reg = registry::load(&project.path(MODELS_FILE))?;
    let entry = match reg.iter().find(|m| m.name == model) {
        Some(e) => e.clone(),
        None if model.ends_with(".gguf") => {
            let path = std::fs::canonicalize(model).with_context(|| {
                format!("{model}: not a registered model, and the file cannot be opened")
            })?;
            let sha256 = crate::fsutil::sha256_file(&path)?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| model.to_string());
            let e = ModelEntry {
                name,
                description: format!("{} (given on the command line)", path.display()),
                oracle: None,
                seeded: None,
                gguf: Some(GgufSource {
                    file: path.display().to_string(),
                    sha256: Some(sha256),
                    fetch: None,
                }),
                folder: None,
                export: None,
                trained: None,
                hub: None,
            };
            reg.push(e.clone());
            e
        }
        None => bail!("model '{model}' is not in configs/models.toml (nor a path to a .gguf file)"),
    };
    let base = load_base(project, &reg, &entry)?;
    Ok((base, reg))
}

fn refuse_existing_dir(out: &Path) -> Result<()> {
    if out.is_dir() {
        bail!(
            "{}: is a folder; give the GGUF file to write",
            out.display()
        );
    }
    Ok(())
}

pub(super) fn quantize(project: &Project, model: &str, to: &str, out: &Path) -> Result<u8> {
    let variant = Variant::parse(to)
        .map_err(anyhow::Error::msg)
        .with_context(|| "flag --to")?;
    if !variant.is_dtype_change() {
        bail!("flag --to: '{to}' is not a storage type (f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0, q6_k, q5_k, q4_k, q3_k, q2_k)");
    }
    refuse_existing_dir(out)?;
    let (base, _) = resolve(project, model)?;
    let (weights, fallbacks) = export_variant(&base, variant, out)?;
    outln!(
        "wrote {} (sha256 {})",
        out.display(),
        crate::fsutil::sha256_file(out)?
    );
    outln!(
        "{} {} → {to}, {} tensors",
        base.model,
        base.weights_type,
        weights.tensors.len()
    );
    print_fallbacks(
        &fallbacks,
        weights
            .tensors
            .values()
            .filter(|w| w.shape().len() == 2)
            .count(),
    )?;
    outln!(
        "\nper-tensor error (true RMSE of the dequantized values against the {} parent; relative = RMSE / RMS of the parent; \
         bound = llama.cpp test-quantize-fns' threshold carried to this tensor's scale):",
        base.weights_type
    );
    for e in tensor_errors(&base.weights, &weights)? {
        let flag = if e.rmse <= e.bound {
            ""
        } else {
            "  ABOVE BOUND"
        };
        outln!(
            "  {:48} {:5} rmse {:.3e} (bound {:.3e})  relative {:.3e}  max |Δ| {:.3e}{flag}",
            e.tensor,
            e.dtype,
            e.rmse,
            e.bound,
            e.relative,
            e.max_abs
        );
    }
    Ok(EXIT_HOLDS)
}

fn print_fallbacks(fallbacks: &[Fallback], matrices: usize) -> Result<()> {
    if fallbacks.is_empty() {
        outln!("every one of the {matrices} matrices took the requested type");
        return Ok(());
    }
    outln!("{} of {matrices} matrices fell back (rows not a whole number of blocks; llama.cpp's fallbacks):", fallbacks.len());
    for (key, names) in group_fallbacks(fallbacks) {
        outln!("  {key}: {} ({})", names.len(), names.join(", "));
    }
    Ok(())
}

pub(super) fn export(
    project: &Project,
    model: &str,
    to: ExportFormat,
    out: &Path,
    variant: &str,
) -> Result<u8> {
    let variant = Variant::parse(variant)
        .map_err(anyhow::Error::msg)
        .with_context(|| "flag --variant")?;
    let (base, _) = resolve(project, model)?;
    let crate::transform::Applied {
        weights,
        notes,
        flips,
    } = crate::transform::apply(&base.weights, &variant, &[])
        .with_context(|| format!("{} {variant}", base.model))?;
    let written = match to {
        ExportFormat::Gguf => {
            refuse_existing_dir(out)?;
            crate::subject::export_weights(&base, variant, &weights, out)?;
            outln!(
                "wrote {} (sha256 {})",
                out.display(),
                crate::fsutil::sha256_file(out)?
            );
            out.to_path_buf()
        }
        ExportFormat::Safetensors => {
            // Only the byte vocabulary has a tokenizer.json form here (the safetensors file
            // alone would be a folder no loader accepts).
            if !base.export_meta.as_ref().is_ok_and(|m| is_byte_vocab(m)) {
                bail!("{}: only a byte-level vocabulary can be written as tokenizer.json; export it to gguf instead", base.model);
            }
            let meta = BTreeMap::from([
                (
                    "groundtruth.exported_from".to_string(),
                    base.file_sha256.clone(),
                ),
                ("groundtruth.variant".to_string(), variant.to_string()),
            ]);
            // Assembled in a temporary folder and renamed whole: a failure (a full disk)
            // leaves no folder with weights but no tokenizer.json.
            let tokenizer = crate::tokenizer::ByteTokenizer::hf_tokenizer_json();
            super::commands::write_hf_folder(out, |tmp| {
                crate::model::save_hf_folder(tmp, &weights, Some(&tokenizer), &meta)
            })?
        }
    };
    for n in notes {
        outln!("  {n}");
    }
    if let Some(list) = flips {
        // The flips name tensors as the model holds them in memory (Hugging Face names).
        let path = crate::transform::flip::flips_path(&written);
        crate::fsutil::atomic_write(&path, serde_json::to_string_pretty(&list)?.as_bytes())?;
        outln!("flip list: {}", path.display());
    }
    Ok(EXIT_HOLDS)
}

fn is_byte_vocab(meta: &[(String, candle_core::quantized::gguf_file::Value)]) -> bool {
    let ours = crate::tokenizer::ByteTokenizer::gguf_metadata();
    let get = |m: &[(String, candle_core::quantized::gguf_file::Value)], k: &str| {
        m.iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| format!("{v:?}"))
    };
    ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"]
        .iter()
        .all(|k| get(meta, k) == get(&ours, k))
}

pub(super) fn inspect(file: &Path, json: bool) -> Result<u8> {
    let insp = crate::inspect::inspect(file)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&insp)?);
    } else {
        out!("{}", insp.render());
    }
    let bad = crate::inspect::findings::bad_tensors(&insp);
    for b in &bad {
        errln!("groundtruth: {}: {b}", file.display());
    }
    if let Some(why) = &insp.reader_failure {
        anyhow::bail!(
            "{}: gguf-rs's reading could not be compared with candle's: {why}",
            file.display()
        );
    }
    Ok(if bad.is_empty() && insp.reader_disagreements.is_empty() {
        EXIT_HOLDS
    } else {
        EXIT_FALSIFIED
    })
}
