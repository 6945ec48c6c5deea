//! `round_trip`: writing a subject, reading it back and writing it again keeps every
//! tensor — GGUF → reimport → GGUF byte for byte, and safetensors ↔ GGUF value for value.

use super::{Context, Judge, Stop};
use crate::claim::{Case, RoundTrip};
use crate::fsutil::FileHash;
use crate::model::{load_gguf, load_hf_folder, save_hf_folder, Weights};
use crate::outcome::Outcome;
use crate::run::Runtime;
use crate::transform::{declared_type, export_gguf, Source};
use candle_core::Device;
use std::collections::BTreeMap;

/// What one round trip found: tensors that differ out of `n`, the path in words, and the
/// per-stage counts.
struct Trip {
    mismatches: usize,
    n: usize,
    path: String,
    also: Vec<(String, f64)>,
}

impl Judge {
    pub(super) fn round_trip(
        &self,
        case: &Case,
        via: RoundTrip,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let base = self.base(&case.model)?;
        let scratch = self
            .project
            .out_dir()
            .join("roundtrip")
            .join(&case.model)
            .join(case.variant.to_string());
        let trip = match via {
            RoundTrip::GgufReimport => self.gguf_reimport(case, &scratch, files)?,
            RoundTrip::SafetensorsGguf => self.safetensors_gguf(case, &base, &scratch, files)?,
        };
        let mut ev = self.evidence_for(case, trip.mismatches as f64, trip.n, &trip.path);
        ev.also = trip.also;
        Ok(Outcome::judge(ev))
    }

    /// The variant's GGUF file loaded and exported again: every tensor's stored bytes must
    /// be the same.
    fn gguf_reimport(
        &self,
        case: &Case,
        scratch: &std::path::Path,
        files: &mut Vec<FileHash>,
    ) -> Result<Trip, Stop> {
        let first = self.variant_file(&case.model, case.variant)?;
        files.push(first.hash.clone());
        let (weights, info) = load_gguf(&first.path).or_stop()?;
        let declared = crate::inspect::findings::file_type(&first.insp).and_then(declared_type);
        let again = scratch.join("reimported.gguf");
        let summary = crate::gguf_guard::validate_gguf(&first.path).or_stop()?;
        let metadata = info.metadata_in_file_order(&summary);
        let order: Vec<String> = summary.tensors.into_iter().map(|t| t.name).collect();
        let source = Source {
            metadata: &metadata,
            tensor_order: Some(&order),
        };
        export_gguf(&again, &case.model, &weights, source, declared).context(again.display())?;
        let second = crate::inspect::inspect(&again).or_stop()?;
        files.push(FileHash {
            path: self.project.display(&again),
            sha256: second.sha256.clone(),
        });
        let differ = crate::inspect::findings::tensor_mismatches(&first.insp, &second);
        let order_same = first
            .insp
            .tensors
            .iter()
            .map(|t| &t.name)
            .eq(second.tensors.iter().map(|t| &t.name));
        let also = vec![
            (
                "whole_file_identical".to_string(),
                (first.insp.sha256 == second.sha256) as u8 as f64,
            ),
            (
                "tensor_order_identical".to_string(),
                order_same as u8 as f64,
            ),
        ];
        let path = format!("{} → load_gguf → export_gguf → {}: per-tensor type, shape and SHA-256 of the stored bytes{}", first.hash.path, self.project.display(&again), quote(&differ));
        Ok(Trip {
            mismatches: differ.len(),
            n: first.insp.tensor_count,
            path,
            also,
        })
    }

    /// The subject written as safetensors (f32), read back, exported to GGUF and read back:
    /// every tensor's values must be the same bit for bit.
    fn safetensors_gguf(
        &self,
        case: &Case,
        base: &crate::subject::Base,
        scratch: &std::path::Path,
        files: &mut Vec<FileHash>,
    ) -> Result<Trip, Stop> {
        let subject = self.subject(&case.model, case.variant, Runtime::CPU_F32)?;
        files.extend(subject.files.iter().cloned());
        let source = base.export_source()?;
        let folder = scratch.join("hf");
        save_hf_folder(&folder, &subject.weights, None, &BTreeMap::new()).or_stop()?;
        let from_st = load_hf_folder(&folder).or_stop()?;
        let gguf = scratch.join("from-safetensors.gguf");
        export_gguf(&gguf, &case.model, &from_st, source, None).or_stop()?;
        let (from_gguf, _) = load_gguf(&gguf).or_stop()?;
        files.push(self.hash_file(&gguf)?);
        let st_differ = value_mismatches(&subject.weights, &from_st).map_err(Stop::rule)?;
        let gguf_differ = value_mismatches(&subject.weights, &from_gguf).map_err(Stop::rule)?;
        let mut differ: Vec<String> = st_differ.iter().chain(&gguf_differ).cloned().collect();
        differ.sort();
        differ.dedup();
        let also = vec![
            (
                "tensors_differing_after_safetensors".to_string(),
                st_differ.len() as f64,
            ),
            (
                "tensors_differing_after_gguf".to_string(),
                gguf_differ.len() as f64,
            ),
        ];
        let path = format!(
            "{} {} → safetensors (f32) → GGUF → load: dequantized values compared bit for bit{}",
            case.model,
            case.variant,
            quote(&differ)
        );
        Ok(Trip {
            mismatches: differ.len(),
            n: subject.weights.tensors.len(),
            path,
            also,
        })
    }
}

/// Names of tensors whose f32 values (dequantized) differ in any bit, or that one side lacks.
fn value_mismatches(a: &Weights, b: &Weights) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in a.tensors.keys().chain(b.tensors.keys()) {
        let (Some(x), Some(y)) = (a.tensors.get(name), b.tensors.get(name)) else {
            out.push(name.clone());
            continue;
        };
        let flat = |w: &crate::model::Weight| {
            w.to_f32_tensor(&Device::Cpu)
                .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
                .map_err(|e| format!("{name}: {e}"))
        };
        let (vx, vy) = (flat(x)?, flat(y)?);
        if x.shape() != y.shape()
            || vx.len() != vy.len()
            || vx.iter().zip(&vy).any(|(p, q)| p.to_bits() != q.to_bits())
        {
            out.push(name.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The first differing tensors, for the evidence.
fn quote(differ: &[String]) -> String {
    match differ.len() {
        0 => String::new(),
        n => format!(
            "; differing ({n}): {}",
            differ
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}
