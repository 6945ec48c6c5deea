//! Variant vs parent: quantization drift and corruption detection — teacher-forced on the
//! prompt set (KL, top-1, Δp), as perplexity over the evaluation slice, and free-running.

use super::{Judge, JudgeError, Stop};
use crate::claim::{Case, ClaimKind, ClaimSpec};
use crate::fsutil::FileHash;
use crate::outcome::{Evidence, Outcome, SkipReason};
use crate::run::{greedy, perplexity, PplResult, Runtime};
use crate::stats::{compare_full, first_difference, log_softmax, ParentStat, SetStats};
use crate::variant::Variant;
use std::sync::Arc;

/// How many of the reference's most likely tokens top-k overlap and Δ are taken over.
const DRIFT_TOP_K: usize = 10;
/// Free-running length when the model has no oracle to take it from.
const DEFAULT_MAX_NEW: usize = 32;

impl Judge {
    /// The variant on the case's runtime against its parent (the base) on the CPU in f32:
    /// a quantization's drift, a runtime's drift (the base on `cuda`), or both at once.
    pub(super) fn drift(
        &self,
        case: &Case,
        stat: ParentStat,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        // First, so that a case on a GPU that is not here skips before any model work.
        let runtime = self.runtime_of(case)?;
        let subject = self.subject(&case.model, case.variant, runtime)?;
        // The same weights on two runtimes need no oracle to make the comparison mean
        // something (a broken reference path shows as disagreement); a quantization's
        // drift from a broken parent proves nothing.
        if case.variant != Variant::Base {
            self.parent_holds(&case.model)?;
        }
        let parent = self.subject(&case.model, case.variant.parent(), Runtime::CPU_F32)?;
        files.extend(subject.files.iter().cloned());
        if let Some(o) = self.oracle(&case.model)? {
            files.push(o.1.clone());
        }
        let stats = self.drift_stats(&case.model, case.variant, runtime)?;
        let bound = match stat {
            ParentStat::Dist(d) => Some(d),
            ParentStat::PplRatio | ParentStat::FirstDivergenceMean => None,
        };
        let mut ev = self.set_evidence(case, &stats, bound, &subject);
        ev.numerical_path = match runtime == Runtime::CPU_F32 {
            true => format!(
                "{} vs parent {} ({}) on the same path",
                ev.numerical_path,
                case.variant.parent(),
                parent.weights_type
            ),
            false => format!(
                "{} [runtime {}] vs parent {} ({}) on the CPU in f32 ({})",
                ev.numerical_path,
                runtime.name(),
                case.variant.parent(),
                parent.weights_type,
                parent.path
            ),
        };
        ev.flips = subject.flips.clone();
        match stat {
            ParentStat::PplRatio => self.ppl_evidence(case, runtime, &mut ev, files)?,
            ParentStat::FirstDivergenceMean => self.divergence_evidence(case, runtime, &mut ev)?,
            ParentStat::Dist(_) => {}
        }
        Ok(Outcome::judge(ev))
    }

    /// Teacher-forced comparison of a variant with its parent over the evaluation sequences,
    /// once per run (several claims bound statistics of the same comparison).
    pub(crate) fn drift_stats(
        &self,
        model: &str,
        variant: Variant,
        runtime: Runtime,
    ) -> Result<SetStats, Stop> {
        let a = self.rows(model, variant.parent(), Runtime::CPU_F32)?;
        let b = self.rows(model, variant, runtime)?;
        let stats = self
            .drift
            .get_or(&(model.to_string(), variant, runtime), || {
                distribution_stats(&a, &b).map_err(|e| {
                    JudgeError::Rule(format!(
                        "{model} {} as the reference for {variant} on {}: {e}",
                        variant.parent(),
                        runtime.name()
                    ))
                })
            });
        Ok(stats?)
    }

    fn ppl_evidence(
        &self,
        case: &Case,
        runtime: Runtime,
        ev: &mut Evidence,
        files: &mut Vec<FileHash>,
    ) -> Result<(), Stop> {
        let slice = self.eval_slice()?;
        files.push(self.hash_file(&self.project.path(crate::project::EVAL_FILE))?);
        let p = self.slice_ppl(&case.model, case.variant.parent(), Runtime::CPU_F32)?;
        let q = self.slice_ppl(&case.model, case.variant, runtime)?;
        if !p.ppl.is_finite() {
            return Err(Stop::rule(format!(
                "{} {}: the parent's perplexity over the slice is {}",
                case.model,
                case.variant.parent(),
                p.ppl
            )));
        }
        // A variant whose logits are NaN or infinite cannot score a token: its perplexity is
        // infinite (as `compare_full` makes such a position's KL infinite), not unmeasured.
        let broken = q.nll.iter().filter(|x| !x.is_finite()).count();
        let (pp, pq) = (p.ppl, if broken == 0 { q.ppl } else { f64::INFINITY });
        ev.also
            .push(("ppl_nonfinite_tokens".to_string(), broken as f64));
        ev.observed = pq / pp;
        ev.n = q.n_scored;
        ev.interval = None;
        ev.also.extend([
            ("ppl_parent".to_string(), pp),
            ("ppl_variant".to_string(), pq),
        ]);
        ev.numerical_path = format!(
            "{}; perplexity over configs/eval.toml's slice (sha256 {}…, {} × {} tokens, second half of each scored)",
            ev.numerical_path,
            &slice.text_sha256[..12],
            slice.chunks,
            slice.ctx
        );
        Ok(())
    }

    fn divergence_evidence(
        &self,
        case: &Case,
        runtime: Runtime,
        ev: &mut Evidence,
    ) -> Result<(), Stop> {
        let a = self.continuations(&case.model, case.variant.parent(), Runtime::CPU_F32)?;
        let b = self.continuations(&case.model, case.variant, runtime)?;
        let firsts: Vec<usize> = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| first_difference(x, y).unwrap_or(x.len()))
            .collect();
        let identical = a.iter().zip(b.iter()).filter(|(x, y)| x == y).count();
        ev.observed = firsts.iter().sum::<usize>() as f64 / firsts.len().max(1) as f64;
        if firsts.is_empty() {
            ev.observed = f64::NAN;
        }
        ev.n = firsts.len();
        ev.interval = None;
        ev.also.push((
            "first_divergence_min".to_string(),
            firsts.iter().min().map_or(f64::NAN, |&m| m as f64),
        ));
        ev.also
            .push(("continuations_identical".to_string(), identical as f64));
        ev.numerical_path = format!("{}; free-running greedy (KV cache) from each prompt, variant vs parent; a continuation that never leaves counts its full length", ev.numerical_path);
        Ok(())
    }

    /// Perplexity of the evaluation slice on `runtime`, llama.cpp's way (BOS as the
    /// tokenizer says), cached.
    fn slice_ppl(
        &self,
        model: &str,
        variant: Variant,
        runtime: Runtime,
    ) -> Result<Arc<PplResult>, Stop> {
        let slice = self.eval_slice()?;
        let subject = self.subject(model, variant, runtime)?;
        let tok = subject.tokenizer.as_ref();
        self.ppl
            .get_or(&(model.to_string(), variant, runtime), || {
                perplexity(
                    &subject.llama,
                    tok,
                    &slice.text,
                    slice.ctx,
                    Some(slice.chunks),
                )
                .map(Arc::new)
                .map_err(|e| JudgeError::failed(format!("{model} {variant}: perplexity"), e))
            })
            .map_err(Stop::Error)
    }

    /// Greedy continuations of every prompt (the oracle's prompt tokens and length when
    /// the model has an oracle), cached.
    fn continuations(
        &self,
        model: &str,
        variant: Variant,
        runtime: Runtime,
    ) -> Result<Arc<Vec<Vec<u32>>>, Stop> {
        let subject = self.subject(model, variant, runtime)?;
        let oracle = self.oracle(model)?;
        let (prompts, max_new): (Vec<Vec<u32>>, usize) = match oracle.as_deref() {
            Some((o, _)) => (
                o.cases.iter().map(|c| c.prompt_tokens.clone()).collect(),
                o.decoding.max_new_tokens,
            ),
            None => (
                self.seqs(model)?.into_iter().map(|s| s.tokens).collect(),
                DEFAULT_MAX_NEW,
            ),
        };
        let eos = subject.tokenizer.eos();
        self.continuations
            .get_or(&(model.to_string(), variant, runtime), || {
                prompts
                    .iter()
                    .map(|p| {
                        greedy(&subject.llama, subject.tokenizer.as_ref(), p, max_new, eos)
                            .map(|g| g.tokens)
                            .map_err(|e| {
                                JudgeError::failed(format!("{model} {variant}: greedy"), e)
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Arc::new)
            })
            .map_err(Stop::Error)
    }

    /// Drift from a broken parent proves nothing: every registered `oracle_parity` claim
    /// on the model's stored weights must hold first, and there must be at least one (a
    /// parent nothing has checked is not established as sound).
    pub(crate) fn parent_holds(&self, model: &str) -> Result<(), Stop> {
        let preconditions = parent_preconditions(&self.claims, model);
        if preconditions.is_empty() {
            return Err(Stop::Skip(SkipReason::PreconditionNotEstablished {
                what: format!("no oracle_parity claim is registered for {model}'s stored weights, so nothing shows the parent is sound"),
            }));
        }
        for r in preconditions {
            self.require(r, model, Variant::Base, "parent")?;
        }
        Ok(())
    }

    /// Judges the registered claim `r` on (model, variant) once, as a precondition:
    /// anything but a pass stops the dependent case (a skip naming `who` and `r`).
    pub(crate) fn require(
        &self,
        r: &ClaimSpec,
        model: &str,
        variant: Variant,
        who: &str,
    ) -> Result<(), Stop> {
        let pre = Case {
            name: crate::claim::case_name(
                r.kind.name(),
                model,
                variant,
                "all",
                &r.id,
                crate::runtime::Runtime::CPU,
            ),
            claim: Arc::new(r.clone()),
            model: model.to_string(),
            variant,
            prompt: None,
            chain: vec![],
            runtime: crate::runtime::Runtime::CPU,
        };
        let id = &r.id;
        match &self.verdict_of(&pre).outcome {
            Outcome::Pass(_) => Ok(()),
            Outcome::Fail(e) => Err(Stop::Skip(SkipReason::PreconditionFailed {
                what: format!("{who} fails {id} ({})", e.summary()),
            })),
            Outcome::Skip(reason) => Err(Stop::Skip(SkipReason::PreconditionFailed {
                what: format!("{who} check {id} skipped: {reason}"),
            })),
            Outcome::Error { message } => Err(Stop::rule(format!("{who} check {id}: {message}"))),
        }
    }
}

/// The registered, unretired `oracle_parity` claims on `model`'s stored weights.
fn parent_preconditions<'a>(claims: &'a [ClaimSpec], model: &str) -> Vec<&'a ClaimSpec> {
    claims
        .iter()
        .filter(|r| {
            r.kind.claim_kind() == ClaimKind::OracleParity
                && r.retired.is_none()
                && r.covers(model, Variant::Base)
        })
        .collect()
}

/// Position-by-position comparison of two runs' logits (sequences × positions × vocab), the
/// first run's distributions as the reference. A reference with a NaN or infinite logit is
/// an error, not a measurement: nothing can be far from or near to it.
pub(super) fn distribution_stats(
    reference: &[Vec<Vec<f32>>],
    subject: &[Vec<Vec<f32>>],
) -> Result<SetStats, String> {
    for (s, rows) in reference.iter().enumerate() {
        for (p, row) in rows.iter().enumerate() {
            if let Some(i) = row.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "reference logit {} at sequence {s}, position {p}, token {i} is not finite",
                    row[i]
                ));
            }
        }
    }
    let positions: Vec<_> = reference
        .iter()
        .zip(subject)
        .flat_map(|(ra, rb)| ra.iter().zip(rb))
        .map(|(x, y)| compare_full(&log_softmax(x), &log_softmax(y), DRIFT_TOP_K))
        .collect();
    Ok(SetStats::of(&positions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_reference_row_is_an_error() {
        // Before: the NaN reference gave kl = 0 (`kl.max(0.0)`), a pass for any bound.
        let subject = vec![vec![vec![1.0f32, 2.0, 3.0]]];
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let reference = vec![vec![vec![1.0f32, bad, 3.0]]];
            let e = distribution_stats(&reference, &subject).unwrap_err();
            assert!(e.contains("sequence 0, position 0, token 1"), "{e}");
        }
        assert!(
            distribution_stats(&subject, &subject)
                .unwrap()
                .kl
                .mean
                .abs()
                < 1e-12
        );
    }
}
