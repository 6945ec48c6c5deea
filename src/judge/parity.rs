//! Claims against an oracle: tokenizer, greedy continuation, teacher-forced distributions.

use super::{Context, Judge, SkipPolicy, Stop};
use crate::claim::{Case, StoredAs};
use crate::fsutil::FileHash;
use crate::oracle::{ModelConfig, Oracle, OracleCase};
use crate::outcome::{Comparison, Evidence, Outcome, SkipReason};
use crate::run::perplexity;
use crate::run::{greedy, Runtime};
use crate::stats::{
    compare_to_oracle, first_divergence, log_softmax, Dist, Divergence, OracleStat, SetStats,
};
use crate::subject::Subject;
use std::sync::Arc;

impl Judge {
    fn need_oracle(
        &self,
        case: &Case,
        files: &mut Vec<FileHash>,
    ) -> Result<Arc<(Oracle, FileHash)>, Stop> {
        let o = self.oracle(&case.model)?.ok_or_else(|| {
            Stop::rule(format!(
                "model '{}' has no oracle in configs/models.toml",
                case.model
            ))
        })?;
        files.push(o.1.clone());
        Ok(o)
    }

    fn oracle_case<'a>(oracle: &'a Oracle, case: &Case) -> Result<&'a OracleCase, Stop> {
        let id = case.prompt.as_deref().unwrap_or_default();
        oracle.case(id).ok_or_else(|| {
            Stop::rule(format!(
                "oracle has no case '{id}' (regenerate it from configs/prompts.toml)"
            ))
        })
    }

    /// Whether the claim judges this subject. A claim with `stored_as` judges checkpoints
    /// by their storage type (`oracle`: the oracle's own type, i.e. the same model whatever
    /// its hash); a subject of another type was selected wrongly, an error. Without it,
    /// exact-match kinds judge only the very file the oracle was made from: a user's
    /// checkpoint under `check` may be a variant (skipped); a registered model must be that
    /// file, so a mismatch is an error: a skip there would hide a broken checkout, a changed
    /// seed or a training that no longer reproduces.
    fn applies(
        &self,
        subject: &Subject,
        oracle: &Oracle,
        case: &Case,
        stored_as: &StoredAs,
    ) -> Result<(), Stop> {
        let claim = &case.claim;
        if *stored_as != StoredAs::Unrestricted {
            let stored = subject.storage_type();
            if !stored_as.selects(stored, &oracle.model.weights) {
                return Err(Stop::rule(format!(
                    "claim {} judges checkpoints stored as {} (the oracle's model is {}); {} {} stores its matrices as {stored}",
                    claim.id,
                    stored_as.names().join(", "),
                    oracle.model.weights,
                    subject.model,
                    subject.variant
                )));
            }
            return Ok(());
        }
        if !claim.kind.claim_kind().is_exact_match()
            || subject.identity_sha256 == oracle.model.sha256
        {
            return Ok(());
        }
        match self.policy {
            SkipPolicy::UserCheckpoint => Err(Stop::Skip(SkipReason::NotTheOracleFile {
                subject_sha256: subject.identity_sha256.clone(),
                oracle_sha256: oracle.model.sha256.clone(),
            })),
            SkipPolicy::Registered { .. } => Err(Stop::rule(format!(
                "model '{}' {}: sha256 {} is not its oracle's model.sha256 {}: an exact-match claim judges only the file the oracle was made from (registered file, seed or training changed? regenerate the oracle or fix configs/models.toml)",
                subject.model, subject.variant, subject.identity_sha256, oracle.model.sha256
            ))),
        }
    }

    fn evidence(&self, case: &Case, observed: f64, n: usize, subject: &Subject) -> Evidence {
        let path = match subject.notes.is_empty() {
            true => subject.path.clone(),
            false => format!("{}; {}", subject.path, subject.notes.join("; ")),
        };
        self.evidence_for(case, observed, n, &path)
    }

    pub(super) fn tokenizer_parity(
        &self,
        case: &Case,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let o = self.need_oracle(case, files)?;
        let oc = Self::oracle_case(&o.0, case)?;
        let subject = self.subject(&case.model, case.variant, Runtime::CPU_F32)?;
        files.extend(subject.files.iter().cloned());
        let tok = subject.tokenizer.as_ref();
        let mut ours = tok
            .encode(&oc.prompt)
            .context(format!("tokenize '{}'", oc.id))?;
        if o.0.decoding.add_bos {
            ours.insert(
                0,
                tok.bos().ok_or_else(|| {
                    Stop::rule("oracle says add_bos but the tokenizer has no BOS")
                })?,
            );
        }
        let theirs = &oc.prompt_tokens;
        let mismatches = ours.iter().zip(theirs).filter(|(a, b)| a != b).count()
            + ours.len().abs_diff(theirs.len());
        let mut ev = self.evidence(case, mismatches as f64, theirs.len(), &subject);
        let piece = |ids: &[u32]| {
            ids.iter()
                .map(|&t| tok.decode(&[t]).unwrap_or_else(|_| "?".into()) + "\n")
                .collect::<String>()
        };
        ev.comparison = Some(Comparison {
            prompt: oc.prompt.clone(),
            reference_text: piece(theirs),
            reference_tokens: theirs.clone(),
            subject_text: piece(&ours),
            subject_tokens: ours.clone(),
            reference_pieces: pieces(tok, theirs),
            subject_pieces: pieces(tok, &ours),
            divergence: first_divergence(theirs, &ours, &[], |_| None, None),
        });
        ev.numerical_path = "harness tokenizer vs oracle prompt_tokens".into();
        Ok(Outcome::judge(ev))
    }

    /// Free-running greedy tokens against the oracle's; a first divergence is forgiven
    /// only where both margins are within `tie_margin` (`greedy_match_or_tie`; the loader
    /// requires it there and refuses it elsewhere, so `None` means exact match).
    pub(super) fn greedy_parity(
        &self,
        case: &Case,
        stored_as: &StoredAs,
        tie_margin: Option<f64>,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let o = self.need_oracle(case, files)?;
        let oc = Self::oracle_case(&o.0, case)?;
        let runtime = self.runtime_of(case)?;
        let subject = self.subject(&case.model, case.variant, runtime)?;
        files.extend(subject.files.iter().cloned());
        self.applies(&subject, &o.0, case, stored_as)?;
        let eos = subject.tokenizer.eos();
        let generation = greedy(
            &subject.llama,
            subject.tokenizer.as_ref(),
            &oc.prompt_tokens,
            o.0.decoding.max_new_tokens,
            eos,
        )?;
        let ours = generation.tokens;
        let rows = self.rows(&case.model, case.variant, runtime)?;
        let idx = o.0.cases.iter().position(|c| c.id == oc.id).unwrap_or(0);
        let div: Divergence = first_divergence(
            &oc.tokens,
            &ours,
            &oc.top_logprobs,
            |p| {
                rows.get(idx)
                    .and_then(|r| r.get(p))
                    .map(|row| log_softmax(row))
            },
            tie_margin,
        );
        // `near_tie` is measured only under a registered margin.
        let observed = match (div.position, div.near_tie) {
            (None, _) => 1.0,
            (Some(_), Some(true)) => 1.0,
            (Some(_), Some(false) | None) => 0.0,
        };
        let mut ev = self.evidence(case, observed, oc.tokens.len(), &subject);
        // This prompt's own teacher-forced statistics, so a per-case ticket shows them.
        if let Some(r) = rows.get(idx) {
            let positions: Vec<_> = oc
                .top_logprobs
                .iter()
                .zip(r)
                .map(|(e, row)| compare_to_oracle(e, &log_softmax(row)))
                .collect();
            ev.also = SetStats::of(&positions)
                .table()
                .into_iter()
                .map(|(n, v)| (format!("teacher_forced_{n}"), v))
                .collect();
        }
        // The margins at the first divergence, next to the registered ε they were held to.
        let margins = [
            ("divergence_reference_margin", div.reference_margin),
            ("divergence_subject_margin", div.subject_margin),
            ("tie_margin", div.tie_margin),
        ];
        ev.also.extend(
            margins
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
        );
        let text = generation.text;
        ev.comparison = Some(Comparison {
            prompt: oc.prompt.clone(),
            reference_text: oc.text.clone(),
            reference_tokens: oc.tokens.clone(),
            subject_text: text,
            reference_pieces: pieces(subject.tokenizer.as_ref(), &oc.tokens),
            subject_pieces: pieces(subject.tokenizer.as_ref(), &ours),
            subject_tokens: ours,
            divergence: div,
        });
        Ok(Outcome::judge(ev))
    }

    /// Teacher-forced comparison with the oracle over all its cases, computed once per run
    /// for each subject on each runtime: with many registered parity claims (each drift
    /// case's precondition judges every one on its parent) recomputing it per claim cost minutes.
    pub(crate) fn oracle_stats(
        &self,
        model: &str,
        subject_variant: crate::variant::Variant,
        runtime: Runtime,
    ) -> Result<Arc<SetStats>, Stop> {
        let o = self
            .oracle(model)?
            .ok_or_else(|| Stop::rule(format!("model '{model}' has no oracle")))?;
        let rows = self.rows(model, subject_variant, runtime)?;
        Ok(self
            .parity
            .get_or(&(model.to_string(), subject_variant, runtime), || {
                let mut positions = Vec::new();
                for (oc, r) in o.0.cases.iter().zip(rows.iter()) {
                    for (entry, row) in oc.top_logprobs.iter().zip(r) {
                        positions.push(compare_to_oracle(entry, &log_softmax(row)));
                    }
                }
                Arc::new(SetStats::of(&positions))
            }))
    }

    pub(super) fn oracle_parity(
        &self,
        case: &Case,
        stored_as: &StoredAs,
        stat: OracleStat,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let o = self.need_oracle(case, files)?;
        let runtime = self.runtime_of(case)?;
        let subject = self.subject(&case.model, case.variant, runtime)?;
        files.extend(subject.files.iter().cloned());
        self.applies(&subject, &o.0, case, stored_as)?;
        match stat {
            OracleStat::PplRelDiff => self.ppl_parity(case, &o.0, &subject, files),
            OracleStat::ConfigMismatches => self.config_parity(case, &o.0, &o.1, &subject),
            OracleStat::Dist(d) => {
                let stats = self.oracle_stats(&case.model, case.variant, runtime)?;
                Ok(Outcome::judge(self.set_evidence(
                    case,
                    &stats,
                    Some(d),
                    &subject,
                )))
            }
        }
    }

    /// The checkpoint's hyperparameters against the oracle's `model.config`, key by key.
    /// The oracle's own file disagreeing with it is a broken oracle, not a verdict.
    fn config_parity(
        &self,
        case: &Case,
        oracle: &Oracle,
        oracle_file: &FileHash,
        subject: &Subject,
    ) -> Result<Outcome, Stop> {
        let Some(want) = &oracle.model.config else {
            return Err(Stop::Skip(SkipReason::PreconditionNotEstablished {
                what: format!(
                    "{} states no model.config to compare with",
                    oracle_file.path
                ),
            }));
        };
        let ours = ModelConfig::of_llama(&subject.weights.config);
        let (compared, differ) = want.mismatches(&ours);
        if !differ.is_empty() && subject.identity_sha256 == oracle.model.sha256 {
            return Err(Stop::rule(format!(
                "{}: field 'model.config' disagrees with the oracle's own model file: {}",
                oracle_file.path,
                differ.join("; ")
            )));
        }
        let mut ev = self.evidence(case, differ.len() as f64, compared, subject);
        ev.numerical_path = match differ.is_empty() {
            true => format!("the {compared} keys of the oracle's model.config, as the checkpoint's loader reads them: all equal"),
            false => format!("the {compared} keys of the oracle's model.config, as the checkpoint's loader reads them; differing: {}", differ.join("; ")),
        };
        Ok(Outcome::judge(ev))
    }

    /// Perplexity over the oracle's text, scored as llama.cpp scored it for the oracle.
    fn ppl_parity(
        &self,
        case: &Case,
        oracle: &Oracle,
        subject: &Subject,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let want = oracle
            .perplexity
            .as_ref()
            .ok_or_else(|| Stop::rule("the oracle has no perplexity record"))?;
        let eval_file = self.project.path(crate::project::EVAL_FILE);
        files.push(self.hash_file(&eval_file)?);
        let slice = self.eval_slice()?;
        files.push(self.hash_file(&slice.corpus)?);
        if slice.text_sha256 != want.text_sha256 {
            return Err(Stop::rule(format!(
                "{}: the slice's sha256 {} is not the oracle's perplexity text {}; the numbers are not comparable",
                self.project.display(&eval_file),
                slice.text_sha256,
                want.text_sha256
            )));
        }
        // One tokenization rule: BOS as the tokenizer says. An oracle scored the other way
        // measured something else, so comparing with it would be meaningless.
        let add_bos = subject.tokenizer.add_bos();
        if oracle.decoding.add_bos != add_bos {
            return Err(Stop::rule(format!(
                "the oracle's perplexity was scored with add_bos {}, but {} {}'s tokenizer says add_bos {add_bos}: a different tokenization rule",
                oracle.decoding.add_bos, case.model, case.variant
            )));
        }
        let r = perplexity(
            &subject.llama,
            subject.tokenizer.as_ref(),
            &slice.text,
            want.ctx,
            Some(want.chunks),
        )
        .context("perplexity")?;
        if r.n_scored != want.n_scored {
            return Err(Stop::rule(format!(
                "scored {} tokens, the oracle scored {}: a different scoring rule",
                r.n_scored, want.n_scored
            )));
        }
        let observed = (r.ppl - want.ppl).abs() / want.ppl;
        let mut ev = self.evidence(case, observed, r.n_scored, subject);
        ev.also = vec![
            ("ppl".into(), r.ppl),
            ("oracle_ppl".into(), want.ppl),
            ("nll_mean".into(), r.nll_mean),
            ("tokens_per_s".into(), r.tokens_per_s),
        ];
        Ok(Outcome::judge(ev))
    }

    /// Evidence from a teacher-forced comparison: `bound` is the aggregate the claim bounds
    /// (`None`: another statistic, measured by the caller, with every aggregate alongside).
    pub(crate) fn set_evidence(
        &self,
        case: &Case,
        stats: &SetStats,
        bound: Option<Dist>,
        subject: &Subject,
    ) -> Evidence {
        let observed = bound.map_or(f64::NAN, |d| stats.get(d));
        let mut ev = self.evidence(case, observed, stats.n, subject);
        let own = bound.map(|d| d.statistic().name());
        ev.also = stats
            .table()
            .into_iter()
            .filter(|(n, _)| Some(*n) != own)
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        if bound == Some(Dist::KlMean) {
            ev.interval = self.kl_mean_interval(&stats.kl_values);
        }
        ev
    }
}

/// The text of each token on its own, for tickets that show ids next to what they say
/// (a piece that is part of a multi-byte character decodes to U+FFFD).
fn pieces(tok: &dyn crate::tokenizer::TextTokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&t| {
            tok.decode(&[t])
                .unwrap_or_else(|e| format!("(undecodable: {e})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::claim::StoredAs;

    /// Every parity claim on a subject, and every precondition re-judging one, reads one
    /// comparison: recomputing it per claim made 25k registered claims cost minutes.
    #[test]
    fn the_oracle_comparison_is_computed_once_per_subject() {
        let project = crate::project::Project::from_manifest();
        let registry =
            crate::subject::registry::load(&project.path(crate::project::MODELS_FILE)).unwrap();
        let judge = super::Judge::new(project, registry, Vec::new(), 1);
        let base = crate::variant::Variant::Base;
        let stats = || {
            judge
                .oracle_stats("tiny-seeded", base, crate::run::Runtime::CPU_F32)
                .unwrap_or_else(|_| panic!("tiny-seeded has no comparison"))
        };
        let (first, again) = (stats(), stats());
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "the comparison was computed twice"
        );
        assert!(first.n > 0, "compared no positions");
    }

    #[test]
    fn a_checkpoint_is_judged_as_what_it_is() {
        let types = |v: &[&str]| StoredAs::Types(v.iter().map(|x| x.to_string()).collect());
        assert!(StoredAs::OraclesOwn.selects("q4_1", "q4_1"));
        assert!(!StoredAs::OraclesOwn.selects("q8_0", "q4_1"));
        assert!(types(&["q8_0"]).selects("q8_0", "q4_1"));
        // The oracle's own type is parity, not the 4-bit requantization band.
        assert!(!types(&["q4_k", "q4_1", "q4_0"]).selects("q4_1", "q4_1"));
        assert!(types(&["q4_k", "q4_1", "q4_0"]).selects("q4_1", "f32"));
    }
}
