//! `reference_agreement`: candle's quantized bytes against llama.cpp's reference
//! quantizers (gguf-py's `gguf.quants`), block by block, on the committed fixtures of
//! `tests/fixtures/quant-ref/` (made by `ci/gen_quant_fixtures.py`).
//!
//! A case (model, type) compares the synthetic sets and the set sampled from that
//! model. A model set's input is first checked against the model's own rows as the
//! harness loads them, so the fixture cannot silently go stale.

use super::{Context, Judge, JudgeError, Stop};
use crate::claim::Case;
use crate::fsutil::sha256_hex;
use crate::fsutil::FileHash;
use crate::outcome::Outcome;
use crate::transform::ggml_dtype;
use crate::variant::Variant;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Where the fixtures live, relative to the project root.
pub const FIXTURE_DIR: &str = "tests/fixtures/quant-ref";
const FORMAT: &str = "groundtruth-quant-ref/1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    generator: BTreeMap<String, String>,
    block: usize,
    sets: Vec<FixtureSet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureSet {
    name: String,
    model: Option<String>,
    #[allow(dead_code)]
    source: String,
    rows: Vec<RowSpec>,
    n_values: usize,
    input: FixtureFile,
    outputs: BTreeMap<String, FixtureFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowSpec {
    tensor: String,
    rows: Vec<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    file: String,
    sha256: String,
}

fn read_checked(dir: &Path, f: &FixtureFile) -> Result<Vec<u8>, Stop> {
    let path = dir.join(&f.file);
    let bytes = crate::fsutil::read_bounded(&path, crate::fsutil::MAX_TEXT_BYTES).or_stop()?;
    if sha256_hex(&bytes) != f.sha256 {
        return Err(Stop::rule(format!(
            "{}: sha256 differs from manifest.json's (regenerate with ci/gen_quant_fixtures.py)",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Indices of the blocks whose bytes differ between `ours` and `theirs` (`block_bytes` each).
pub fn differing_blocks(ours: &[u8], theirs: &[u8], block_bytes: usize) -> Vec<usize> {
    let n = ours.len().max(theirs.len()).div_ceil(block_bytes.max(1));
    (0..n)
        .filter(|&i| ours.chunks(block_bytes).nth(i) != theirs.chunks(block_bytes).nth(i))
        .collect()
}

/// The fixtures' manifest, refused unless it is this format for blocks of `block` values.
fn read_manifest(manifest_path: &Path, block: usize) -> Result<Manifest, Stop> {
    let m: Manifest =
        crate::input::read_json(manifest_path, crate::fsutil::MAX_TEXT_BYTES).or_stop()?;
    if m.format != FORMAT || m.block != block {
        return Err(Stop::rule(format!(
            "{}: format '{}' block {} (expected {FORMAT}, block {block})",
            manifest_path.display(),
            m.format,
            m.block,
        )));
    }
    Ok(m)
}

/// The synthetic sets and those sampled from `model`; at least one must be from `model`,
/// or the case would judge the synthetic sets alone.
fn sets_for<'m>(
    m: &'m Manifest,
    model: &str,
    manifest_path: &Path,
) -> Result<Vec<&'m FixtureSet>, Stop> {
    let sets: Vec<&FixtureSet> = m
        .sets
        .iter()
        .filter(|s| s.model.as_deref().is_none_or(|x| x == model))
        .collect();
    if !sets.iter().any(|s| s.model.as_deref() == Some(model)) {
        return Err(Stop::rule(format!(
            "{}: no set sampled from model '{model}' (regenerate with ci/gen_quant_fixtures.py)",
            manifest_path.display(),
        )));
    }
    Ok(sets)
}

impl Judge {
    pub(super) fn reference_agreement(
        &self,
        case: &Case,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let Variant::Convert(dtype) = case.variant else {
            return Err(Stop::rule(format!(
                "{} has no reference quantizer",
                case.variant
            )));
        };
        let ty = ggml_dtype(dtype);
        let tname = dtype.name();
        let dir = self.project.path(FIXTURE_DIR);
        let manifest_path = dir.join("manifest.json");
        files.push(self.hash_file(&manifest_path)?);
        let m = read_manifest(&manifest_path, ty.block_size())?;
        let sets = sets_for(&m, &case.model, &manifest_path)?;
        let block_bytes = ty.type_size();
        let (mut differ, mut blocks) = (0usize, 0usize);
        let mut also = Vec::new();
        let mut first_bad = Vec::new();
        for s in sets {
            let (d, n_blocks) = self.compare_set(case, &dir, &manifest_path, &m, s, dtype)?;
            also.push((format!("blocks_differing[{}]", s.name), d.len() as f64));
            first_bad.extend(d.iter().take(3).map(|b| format!("{} block {b}", s.name)));
            differ += d.len();
            blocks += n_blocks;
        }
        let mut ev = self.evidence_for(case, differ as f64, blocks, "");
        ev.also = also;
        ev.numerical_path = format!(
            "{} QTensor::quantize vs gguf-py {} (gguf.quants, a port of ggml's quantize_row_{tname}_ref), {blocks} blocks of {} bytes{}",
            env!("GROUNDTRUTH_DEP_VERSIONS").split(", ").next().unwrap_or("candle"),
            m.generator.get("gguf").map(String::as_str).unwrap_or("?"),
            block_bytes,
            if first_bad.is_empty() { String::new() } else { format!("; first differing: {}", first_bad.join(", ")) }
        );
        Ok(Outcome::judge(ev))
    }

    /// One fixture set quantized by candle and compared with the reference's bytes: the
    /// indices of the differing blocks and the number of blocks.
    fn compare_set(
        &self,
        case: &Case,
        dir: &Path,
        manifest_path: &Path,
        m: &Manifest,
        s: &FixtureSet,
        dtype: crate::variant::DType,
    ) -> Result<(Vec<usize>, usize), Stop> {
        let ty = ggml_dtype(dtype);
        let tname = dtype.name();
        let bad = |msg: String| {
            Stop::rule(format!(
                "{}: set '{}': {msg}",
                manifest_path.display(),
                s.name
            ))
        };
        let input = read_checked(dir, &s.input)?;
        let values: Vec<f32> = input
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if values.len() != s.n_values || !values.len().is_multiple_of(m.block) {
            return Err(bad(format!(
                "{} values, manifest says {} (a whole number of {}-value blocks)",
                values.len(),
                s.n_values,
                m.block
            )));
        }
        if s.model.is_some() {
            self.check_rows(&case.model, &s.rows, &values)
                .map_err(|e| match e {
                    Stop::Error(e) => Stop::Error(JudgeError::failed(
                        format!("{}: set '{}'", manifest_path.display(), s.name),
                        e,
                    )),
                    Stop::Skip(r) => Stop::Skip(r),
                })?;
        }
        let out = s
            .outputs
            .get(tname)
            .ok_or_else(|| bad(format!("no {tname} output")))?;
        let theirs = read_checked(dir, out)?;
        let blocks = values.len() / m.block;
        let t = Tensor::from_vec(values, (blocks, m.block), &Device::Cpu)?;
        let ours = QTensor::quantize(&t, ty)?.data()?.into_owned();
        Ok((differing_blocks(&ours, &theirs, ty.type_size()), blocks))
    }

    /// The fixture's input must be exactly the model's rows as the harness loads them.
    fn check_rows(&self, model: &str, rows: &[RowSpec], values: &[f32]) -> Result<(), Stop> {
        let base = self.base(model)?;
        let mut ours = Vec::with_capacity(values.len());
        for spec in rows {
            let t = base
                .weights
                .get(&spec.tensor)
                .or_stop()?
                .to_f32_tensor(&Device::Cpu)
                .or_stop()?;
            for &r in &spec.rows {
                let row = t
                    .get(r)
                    .and_then(|x| x.to_vec1::<f32>())
                    .map_err(|e| Stop::rule(format!("{} row {r}: {e}", spec.tensor)))?;
                ours.extend(row);
            }
        }
        let same = ours.len() == values.len()
            && ours
                .iter()
                .zip(values)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            let at = ours
                .iter()
                .zip(values)
                .position(|(a, b)| a.to_bits() != b.to_bits())
                .unwrap_or(ours.len().min(values.len()));
            return Err(Stop::rule(format!("input differs from the model's rows at value {at} ({} values here, {} in the fixture): regenerate with ci/gen_quant_fixtures.py", ours.len(), values.len())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_blocks_counts_each_block_once() {
        let a = [1u8, 2, 3, 4, 5, 6];
        assert_eq!(differing_blocks(&a, &a, 2), Vec::<usize>::new());
        assert_eq!(differing_blocks(&a, &[1, 2, 0, 4, 5, 0], 2), vec![1, 2]);
        assert_eq!(
            differing_blocks(&a, &a[..4], 2),
            vec![2],
            "a missing block differs"
        );
    }
}
