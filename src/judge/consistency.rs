//! Two runtime paths of one subject must agree; two builds of one subject must be identical.

use super::drift::distribution_stats;
use super::{Context, Judge, Stop};
use crate::claim::{Case, Paths};
use crate::fsutil::FileHash;
use crate::outcome::Outcome;
use crate::run::{logits, logits_batched, logits_incremental, EvalSeq, Runtime, SeqLogits};
use crate::stats::{max_abs_delta, PathStat};
use crate::subject::{derive, load_base};

impl Judge {
    pub(super) fn consistency(
        &self,
        case: &Case,
        paths: Paths,
        stat: PathStat,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let gpu = self.gpu_for(paths)?;
        let subject = self.subject(&case.model, case.variant, Runtime::CPU_F32)?;
        files.extend(subject.files.iter().cloned());
        let seqs = self.seqs(&case.model)?;
        let full = all_logits(&subject.llama, &seqs)?;
        let (other, what) = self.other_path_logits(case, paths, gpu, &subject, &seqs)?;
        let (worst, n) = worst_logit_delta(&full, &other);
        // The worst logit of millions is one view; the distributions (the first path as the
        // reference) are another, and a claim may bound either; the evidence shows both.
        let stats = distribution_stats(&full, &other)
            .map_err(|e| Stop::rule(format!("{} {} ({what}): {e}", case.model, case.variant)))?;
        let mut ev = match stat {
            PathStat::MaxAbsLogitDelta => {
                let mut ev = self.evidence_for(case, worst, n, &subject.path);
                ev.also = stats
                    .table()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                ev
            }
            PathStat::Dist(d) => {
                let mut ev = self.set_evidence(case, &stats, Some(d), &subject);
                ev.also.insert(
                    0,
                    (
                        crate::stats::Statistic::MaxAbsLogitDelta.name().to_string(),
                        worst,
                    ),
                );
                ev
            }
        };
        ev.numerical_path = format!("{what}; {}", ev.numerical_path);
        Ok(Outcome::judge(ev))
    }

    /// The run's GPU when the second path is CUDA, opened first so that a GPU that is not
    /// here skips the case before any model work (opening is cached).
    fn gpu_for(&self, paths: Paths) -> Result<Option<Runtime>, Stop> {
        match paths {
            Paths::Cuda => {
                let gpu = self.on_run_gpu(crate::runtime::Runtime {
                    device: crate::device::DeviceSpec::Cuda(0),
                    precision: crate::runtime::Precision::F32,
                })?;
                gpu.load_options()?;
                Ok(Some(gpu))
            }
            Paths::KvCache | Paths::Batch | Paths::QuantMatmul => Ok(None),
        }
    }

    /// The logits of the second path (the first is the full recomputation on the CPU in
    /// f32), and the comparison in words.
    fn other_path_logits(
        &self,
        case: &Case,
        paths: Paths,
        gpu: Option<Runtime>,
        subject: &crate::subject::Subject,
        seqs: &[EvalSeq],
    ) -> Result<(SeqLogits, &'static str), Stop> {
        Ok(match paths {
            Paths::KvCache => (
                seqs.iter()
                    .map(|s| logits_incremental(&subject.llama, &s.tokens))
                    .collect::<Result<_, _>>()?,
                "KV-cache incremental vs full recomputation",
            ),
            Paths::Batch => {
                let refs: Vec<&[u32]> = seqs.iter().map(|s| s.tokens.as_slice()).collect();
                (
                    logits_batched(&subject.llama, &refs, 0)?,
                    "one right-padded batch vs one sequence at a time",
                )
            }
            Paths::Cuda => {
                let gpu = gpu.ok_or_else(|| {
                    Stop::rule("compare = cuda without the run's GPU".to_string())
                })?;
                (
                    all_logits(&self.subject(&case.model, case.variant, gpu)?.llama, seqs)?,
                    "CUDA device vs CPU",
                )
            }
            Paths::QuantMatmul => {
                // A model stored in f32 has nothing for the quantized path to multiply: comparing
                // f32 with f32 would pass vacuously.
                if !subject
                    .weights
                    .tensors
                    .values()
                    .any(|w| matches!(w, crate::model::Weight::Quant(_)))
                {
                    return Err(Stop::rule(format!(
                        "{} {}: no quantized weights, quant_matmul would compare f32 with f32",
                        case.model, case.variant
                    )));
                }
                let quantized = self.subject(&case.model, case.variant, Runtime::CPU_QUANTIZED)?;
                (
                    all_logits(&quantized.llama, seqs)?,
                    "quantized matmul vs dequantized f32 matmul",
                )
            }
        })
    }

    /// Builds the subject twice from its files (no cache) and counts differing weight
    /// tensors plus differing logit bits.
    pub(super) fn determinism(
        &self,
        case: &Case,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let entry = self.entry(&case.model)?;
        let seqs = self.seqs(&case.model)?;
        let used: Vec<u32> = seqs.iter().flat_map(|s| s.tokens.iter().copied()).collect();
        let build = || -> Result<Build, Stop> {
            let base = load_base(&self.project, &self.registry, entry)?;
            let options = Runtime::CPU_F32.load_options()?;
            let s = derive(&base, case.variant, &used, &options)?;
            Ok(Build {
                sha: s.weights.sha256().or_stop()?,
                rows: all_logits(&s.llama, &seqs)?,
                path: s.path.clone(),
                files: s.files.clone(),
            })
        };
        let Build {
            sha: sha_a,
            rows: rows_a,
            path,
            files: f,
        } = build()?;
        let Build {
            sha: sha_b,
            rows: rows_b,
            ..
        } = build()?;
        files.extend(f);
        let mut mismatches = (sha_a != sha_b) as usize;
        let mut n = 1;
        for (a, b) in rows_a.iter().zip(&rows_b) {
            for (ra, rb) in a.iter().zip(b) {
                mismatches += ra
                    .iter()
                    .zip(rb)
                    .filter(|(x, y)| x.to_bits() != y.to_bits())
                    .count();
                n += ra.len();
            }
        }
        let mut ev = self.evidence_for(case, mismatches as f64, n, &path);
        ev.also = vec![("weights_sha256_equal".into(), (sha_a == sha_b) as u8 as f64)];
        Ok(Outcome::judge(ev))
    }

    pub(super) fn evidence_for(
        &self,
        case: &Case,
        observed: f64,
        n: usize,
        path: &str,
    ) -> crate::outcome::Evidence {
        let c = &case.claim;
        crate::outcome::Evidence {
            statistic: c.bound.statistic,
            observed,
            op: c.bound.op,
            bound: c.bound.value,
            expect: c.expect,
            n,
            interval: None,
            also: vec![],
            comparison: None,
            numerical_path: path.to_string(),
            flips: None,
        }
    }
}

/// One from-files build of a subject, as the determinism check compares two of them.
struct Build {
    /// SHA-256 of the built weights.
    sha: String,
    rows: SeqLogits,
    /// The numerical path, in words.
    path: String,
    files: Vec<FileHash>,
}

/// The largest absolute logit difference over every row (NaN when any row has one, so a
/// NaN is never hidden by max) and the number of logits compared.
fn worst_logit_delta(full: &SeqLogits, other: &SeqLogits) -> (f64, usize) {
    let mut worst = 0.0f64;
    let mut n = 0;
    for (a, b) in full.iter().zip(other) {
        let (d, k) = max_abs_delta(a, b);
        worst = if d.is_nan() || worst.is_nan() {
            f64::NAN
        } else {
            worst.max(d)
        };
        n += k;
    }
    (worst, n)
}

/// Full-recompute logits of every sequence.
fn all_logits(llama: &crate::model::Llama, seqs: &[EvalSeq]) -> Result<SeqLogits, Stop> {
    Ok(seqs
        .iter()
        .map(|s| logits(llama, &s.tokens))
        .collect::<Result<_, _>>()?)
}
