//! Two runtime paths of one subject must agree; two builds of one subject must be identical.

use super::eval::{logits, logits_batched, logits_incremental, max_abs_delta};
use super::{Judge, Stop};
use super::drift::distribution_stats;
use crate::claim::{Case, Compare, Statistic};
use crate::outcome::Outcome;
use crate::report::FileHash;
use crate::subject::{derive, load_base};

impl Judge {
    pub(super) fn consistency(&self, case: &Case, files: &mut Vec<FileHash>) -> Result<Outcome, Stop> {
        let compare = case.claim.claim.compare.ok_or_else(|| Stop::Error("consistency claim without 'compare'".into()))?;
        let subject = self.subject(&case.model, case.variant, false)?;
        files.extend(subject.files.iter().cloned());
        let seqs = self.seqs(&case.model)?;
        let full: Vec<Vec<Vec<f32>>> = seqs.iter().map(|s| logits(&subject.llama, &s.tokens)).collect::<Result<_, _>>()?;
        let (other, what): (Vec<Vec<Vec<f32>>>, &str) = match compare {
            Compare::KvCache => (seqs.iter().map(|s| logits_incremental(&subject.llama, &s.tokens)).collect::<Result<_, _>>()?, "KV-cache incremental vs full recomputation"),
            Compare::Batch => {
                let refs: Vec<&[u32]> = seqs.iter().map(|s| s.tokens.as_slice()).collect();
                (logits_batched(&subject.llama, &refs, 0)?, "one right-padded batch vs one sequence at a time")
            }
            Compare::Cuda => (cuda_logits(&subject, &seqs)?, "CUDA device vs CPU"),
            Compare::QuantMatmul => {
                // A model stored in f32 has nothing for the quantized path to multiply: comparing
                // f32 with f32 would pass vacuously.
                if !subject.weights.tensors.values().any(|w| matches!(w, crate::model::Weight::Quant(_))) {
                    return Err(Stop::Error(format!("{} {}: no quantized weights, quant_matmul would compare f32 with f32", case.model, case.variant)));
                }
                let q = self.subject(&case.model, case.variant, true)?;
                (seqs.iter().map(|s| logits(&q.llama, &s.tokens)).collect::<Result<_, _>>()?, "quantized matmul vs dequantized f32 matmul")
            }
            Compare::GgufReimport | Compare::SafetensorsGguf => {
                return Err(Stop::Error(format!("compare '{}' is not a comparison of runtime paths", compare.name())))
            }
        };
        let mut worst = 0.0f64;
        let mut n = 0;
        for (a, b) in full.iter().zip(&other) {
            let (d, k) = max_abs_delta(a, b);
            worst = if d.is_nan() || worst.is_nan() { f64::NAN } else { worst.max(d) };
            n += k;
        }
        // The worst logit of millions is one view; the distributions (the first path as the
        // reference) are another, and a claim may bound either; the evidence shows both.
        let stats = distribution_stats(&full, &other).map_err(|e| Stop::Error(format!("{} {} ({what}): {e}", case.model, case.variant)))?;
        let mut ev = if case.claim.claim.bound.statistic == Statistic::MaxAbsLogitDelta {
            let mut ev = self.evidence_for(case, worst, n, &subject.path);
            ev.also = stats.table().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            ev
        } else {
            let mut ev = self.set_evidence(case, &stats, &subject);
            ev.also.insert(0, (Statistic::MaxAbsLogitDelta.name().to_string(), worst));
            ev
        };
        ev.path = format!("{what}; {}", ev.path);
        Ok(Outcome::judge(ev))
    }

    /// Builds the subject twice from its files (no cache) and counts differing weight
    /// tensors plus differing logit bits.
    pub(super) fn determinism(&self, case: &Case, files: &mut Vec<FileHash>) -> Result<Outcome, Stop> {
        let entry = self.entry(&case.model)?;
        let seqs = self.seqs(&case.model)?;
        let used: Vec<u32> = seqs.iter().flat_map(|s| s.tokens.iter().copied()).collect();
        let build = || -> Result<(String, Vec<Vec<Vec<f32>>>, String, Vec<FileHash>), Stop> {
            let base = load_base(&self.project, &self.registry, entry)?;
            let s = derive(&base, case.variant, &used, crate::model::MatmulPath::F32)?;
            let sha = s.weights.sha256().map_err(|e| Stop::Error(e.to_string()))?;
            let rows = seqs.iter().map(|q| logits(&s.llama, &q.tokens)).collect::<Result<_, _>>()?;
            Ok((sha, rows, s.path.clone(), s.files.clone()))
        };
        let (sha_a, rows_a, path, f) = build()?;
        let (sha_b, rows_b, _, _) = build()?;
        files.extend(f);
        let mut mismatches = (sha_a != sha_b) as usize;
        let mut n = 1;
        for (a, b) in rows_a.iter().zip(&rows_b) {
            for (ra, rb) in a.iter().zip(b) {
                mismatches += ra.iter().zip(rb).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
                n += ra.len();
            }
        }
        let mut ev = self.evidence_for(case, mismatches as f64, n, &path);
        ev.also = vec![("weights_sha256_equal".into(), (sha_a == sha_b) as u8 as f64)];
        Ok(Outcome::judge(ev))
    }

    pub(super) fn evidence_for(&self, case: &Case, observed: f64, n: usize, path: &str) -> crate::outcome::Evidence {
        let c = &case.claim.claim;
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
            path: path.to_string(),
            flips: None,
        }
    }
}

/// The subject's logits on CUDA device 0; without the `cuda` feature or a device, a skip
/// with that reason (never a pass).
fn cuda_logits(subject: &crate::subject::Subject, seqs: &[super::eval::EvalSeq]) -> Result<Vec<Vec<Vec<f32>>>, Stop> {
    let no_device = |why: String| Stop::Skip(crate::outcome::SkipReason::NoDevice { device: format!("CUDA device: {why}") });
    if !cfg!(feature = "cuda") {
        return Err(no_device("built without the cuda feature: cargo test --release --features cuda".into()));
    }
    let device = candle_core::Device::new_cuda(0).map_err(|e| no_device(e.to_string()))?;
    let llama = crate::model::Llama::load(&subject.weights, &crate::model::LoadOptions { matmul: crate::model::MatmulPath::F32, device, ..Default::default() })
        .map_err(|e| Stop::Error(format!("load on cuda: {e}")))?;
    seqs.iter().map(|s| logits(&llama, &s.tokens).map_err(Stop::from)).collect()
}
