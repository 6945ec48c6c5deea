//! `quant_order`: along a chain of storage types listed with more bits first, drift from
//! the parent never decreases.
//!
//! Judged only when the chain's first variant (the one with the most bits) passes every
//! teacher-forced `quant_drift` claim registered for it: when the int8 variant is itself
//! broken, "int8 drifts no more than int4" would compare two broken models, so the case
//! skips instead of passing vacuously.

use super::{Judge, Stop};
use crate::claim::{Case, Kind};
use crate::fsutil::FileHash;
use crate::outcome::{Outcome, SkipReason};
use crate::run::Runtime;
use crate::stats::{ChainStat, ParentStat};
use crate::variant::Variant;

impl Judge {
    pub(super) fn quant_order(
        &self,
        case: &Case,
        stat: ChainStat,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let Some(&head) = case.chain.first() else {
            return Err(Stop::rule("quant_order case without a chain"));
        };
        self.parent_holds(&case.model)?;
        self.head_holds(&case.model, head)?;
        let mut kl = Vec::with_capacity(case.chain.len());
        let mut bits = Vec::with_capacity(case.chain.len());
        let mut mismatches = Vec::with_capacity(case.chain.len());
        let mut n = 0;
        for &v in &case.chain {
            let subject = self.subject(&case.model, v, Runtime::CPU_F32)?;
            files.extend(subject.files.iter().cloned());
            let s = self.drift_stats(&case.model, v, crate::run::Runtime::CPU_F32)?;
            n = s.n;
            kl.push(s.kl.mean);
            bits.push(stored_bits_per_weight(&subject.weights));
            mismatches.push(((1.0 - s.top1_agreement) * s.n as f64).round());
        }
        let pairs =
            (0..case.chain.len()).flat_map(|i| (i + 1..case.chain.len()).map(move |j| (i, j)));
        let observed = match stat {
            ChainStat::KlOrderViolations => order_violations(&kl, &bits) as f64,
            ChainStat::Top1MismatchExcess => pairs
                .map(|(i, j)| mismatches[i] - mismatches[j])
                .fold(f64::NEG_INFINITY, f64::max),
        };
        let mut ev = self.evidence_for(case, observed, n, "");
        for (i, v) in case.chain.iter().enumerate() {
            ev.also.push((format!("kl_mean[{v}]"), kl[i]));
            ev.also.push((format!("bits_per_weight[{v}]"), bits[i]));
            ev.also
                .push((format!("top1_mismatches[{v}]"), mismatches[i]));
        }
        let chain: Vec<String> = case.chain.iter().map(|v| v.to_string()).collect();
        ev.numerical_path = format!("teacher-forced drift of each of {} (more bits first) from the parent over the same {n} positions, compared pairwise", chain.join(", "));
        Ok(Outcome::judge(ev))
    }

    /// Every registered, unretired teacher-forced `quant_drift` claim on (model, head) must
    /// pass, and there must be at least one. Teacher-forced: measured on the same positions
    /// as the chain itself; a head's perplexity or free-running bounds are other
    /// measurements (and far costlier).
    fn head_holds(&self, model: &str, head: Variant) -> Result<(), Stop> {
        let name = head.to_string();
        let own: Vec<_> = self
            .claims
            .iter()
            .filter(|r| {
                matches!(r.kind, Kind::QuantDrift(ParentStat::Dist(_)))
                    && r.retired.is_none()
                    && r.covers(model, head)
            })
            .collect();
        if own.is_empty() {
            return Err(Stop::Skip(SkipReason::PreconditionNotEstablished { what: format!("no quant_drift claim is registered for {model} {name}, so nothing shows it is not broken itself") }));
        }
        for r in own {
            self.require(r, model, head, &format!("{name}, the chain's head,"))?;
        }
        Ok(())
    }
}

/// Pairs (i before j, i listed with more bits) whose mean KL is out of order. Where the
/// two variants store different numbers of bits, a tie counts against the chain too: a
/// variant that really holds more bits drifts strictly less, and an exact tie means one of
/// them is not what it says (a silent fallback, the same bytes under two names). Variants
/// that store the same bits (both fell back to one type) may tie. A NaN is a violation.
fn order_violations(kl: &[f64], bits: &[f64]) -> usize {
    let mut count = 0;
    for i in 0..kl.len() {
        for j in i + 1..kl.len() {
            let out_of_order = kl[i] > kl[j] || (kl[i] == kl[j] && bits[i] != bits[j]);
            if out_of_order || kl[i].is_nan() || kl[j].is_nan() {
                count += 1;
            }
        }
    }
    count
}

/// Bits stored per weight over the model's matrices (2-D tensors), as written: a Q8_0
/// matrix is 8.5, Q4_0 4.5, f32 32.
fn stored_bits_per_weight(w: &crate::model::Weights) -> f64 {
    let (mut bytes, mut elems) = (0usize, 0usize);
    for t in w.tensors.values().filter(|t| t.shape().len() == 2) {
        bytes += match t {
            crate::model::Weight::Quant(q) => q.storage_size_in_bytes(),
            crate::model::Weight::Float(f) => f.elem_count() * f.dtype().size_in_bytes(),
        };
        elems += t.elem_count();
    }
    8.0 * bytes as f64 / elems.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tie_between_different_bit_widths_counts_against_the_chain() {
        // Before: only kl[i] > kl[j] counted, so Q8_0 and Q4_0 drifting exactly alike passed.
        assert_eq!(order_violations(&[0.01, 0.01], &[8.5, 4.5]), 1);
        // The same stored bits (both fell back to one type) may tie.
        assert_eq!(order_violations(&[0.01, 0.01], &[4.5, 4.5]), 0);
        assert_eq!(order_violations(&[0.001, 0.01, 0.1], &[8.5, 5.5, 4.5]), 0);
        assert_eq!(order_violations(&[0.1, 0.01, 0.001], &[8.5, 5.5, 4.5]), 3);
        assert_eq!(order_violations(&[f64::NAN, 0.01], &[8.5, 4.5]), 1);
    }

    #[test]
    fn bits_per_weight_counts_the_stored_blocks() {
        let t =
            candle_core::Tensor::zeros((4, 64), candle_core::DType::F32, &candle_core::Device::Cpu)
                .unwrap();
        let q =
            candle_core::quantized::QTensor::quantize(&t, candle_core::quantized::GgmlDType::Q8_0)
                .unwrap();
        let json = r#"{"vocab_size": 8, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}"#;
        let config =
            crate::model::LlamaConfig::from_hf_json(json, std::path::Path::new("test.json"))
                .unwrap();
        let mut w = crate::model::Weights {
            config,
            tensors: Default::default(),
            rope: crate::model::RopeLayout::Neox,
        };
        w.tensors.insert(
            "a".into(),
            crate::model::Weight::Quant(std::sync::Arc::new(q)),
        );
        assert_eq!(stored_bits_per_weight(&w), 8.5);
        w.tensors.insert("b".into(), crate::model::Weight::Float(t));
        assert_eq!(stored_bits_per_weight(&w), (8.5 + 32.0) / 2.0);
    }
}
