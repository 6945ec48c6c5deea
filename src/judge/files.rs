//! The GGUF file of a subject, written once per run and inspected once: what `structure`
//! and `round_trip` claims look at.

use super::{Judge, JudgeError, Stop};
use crate::fsutil::FileHash;
use crate::inspect::{inspect, Inspection};
use crate::run::Runtime;
use crate::subject::{export_weights, stored_gguf};
use crate::variant::Variant;
use std::path::PathBuf;
use std::sync::Arc;

/// A subject as a GGUF file.
pub(crate) struct VariantFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its hash, for the report.
    pub hash: FileHash,
    /// What it holds.
    pub insp: Inspection,
    /// Fallbacks taken when it was written.
    pub notes: Vec<String>,
}

impl Judge {
    /// The stored file itself for the base of a GGUF-backed model; otherwise the variant
    /// exported under `<out>/gguf/<model>/<variant>.gguf`.
    pub(crate) fn variant_file(
        &self,
        model: &str,
        variant: Variant,
    ) -> Result<Arc<VariantFile>, Stop> {
        let base = self.base(model)?;
        let entry = self.entry(model)?;
        let stored = stored_gguf(&self.project, entry).filter(|_| variant == Variant::Base);
        // Otherwise the subject's weights, already converted (drift claims share them).
        let subject = match stored {
            Some(_) => None,
            None => Some(self.subject(model, variant, Runtime::CPU_F32)?),
        };
        let key = (model.to_string(), variant);
        self.files
            .get_or(&key, || {
                let (path, notes) = match (stored, &subject) {
                    (Some(p), _) => (p, vec![]),
                    (None, Some(subject)) => {
                        let p = self
                            .project
                            .out_dir()
                            .join("gguf")
                            .join(model)
                            .join(format!("{variant}.gguf"));
                        export_weights(&base, variant, &subject.weights, &p)
                            .map_err(|e| JudgeError::failed("", e))?;
                        (p, subject.notes.clone())
                    }
                    (None, None) => {
                        return Err(JudgeError::Rule(format!(
                            "{model} {variant}: no file and no subject"
                        )))
                    }
                };
                let insp = inspect(&path).map_err(|e| JudgeError::failed("", e))?;
                let hash = FileHash {
                    path: self.project.display(&path),
                    sha256: insp.sha256.clone(),
                };
                Ok(Arc::new(VariantFile {
                    path,
                    hash,
                    insp,
                    notes,
                }))
            })
            .map_err(Stop::Error)
    }
}
