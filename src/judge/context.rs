//! The state shared by the cases of one run.

use super::{Context, JudgeError, Stop};
use crate::claim::ClaimSpec;
use crate::device::DeviceSpec;
use crate::fsutil::FileHash;
use crate::memo::Memo;
use crate::oracle::Oracle;
use crate::outcome::{Outcome, SkipReason};
use crate::project::Project;
use crate::prompts::Prompt;
use crate::run::{eval_seqs, logits, EvalSeq, Runtime, SeqLogits};
use crate::subject::registry::ModelEntry;
use crate::subject::{derive, load_base, Base, Subject, SubjectError};
use crate::variant::Variant;
use std::path::Path;
use std::sync::Arc;

type Shared<T> = Result<Arc<T>, JudgeError>;

/// Which skips a run allows.
///
/// A registered model is the file its oracle was made from, so a hash mismatch there is
/// a broken checkout or registry, never a variant to skip. Only `groundtruth check`
/// judges a user's file, which may be a variant of the oracle's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipPolicy {
    /// The registry's models; with `forbid`, every skip but "no device" is an error.
    Registered {
        /// `GROUNDTRUTH_FORBID_SKIP` is set (CI): a missing model or failed precondition
        /// must not leave a run green.
        forbid: bool,
    },
    /// A user's checkpoint under `groundtruth check`: exact-match claims skip a variant.
    UserCheckpoint,
}

/// The variable that makes CI fail on any skip but "no device".
pub const FORBID_SKIP_VAR: &str = "GROUNDTRUTH_FORBID_SKIP";

impl SkipPolicy {
    /// The registry's policy, forbidding skips when [`FORBID_SKIP_VAR`] is set to anything
    /// but `0` or the empty string (a misspelt value forbids: fail closed).
    pub fn from_env() -> SkipPolicy {
        let forbid = std::env::var_os(FORBID_SKIP_VAR).is_some_and(|v| !v.is_empty() && v != "0");
        SkipPolicy::Registered { forbid }
    }

    /// The outcome this policy lets through: a forbidden skip becomes an error.
    pub fn enforce(self, outcome: Outcome) -> Outcome {
        match (self, outcome) {
            (SkipPolicy::Registered { forbid: true }, Outcome::Skip(r))
                if !matches!(r, SkipReason::NoDevice { .. }) =>
            {
                Outcome::Error {
                    message: format!(
                        "skipped while {FORBID_SKIP_VAR}=1 forbids any skip but 'no device': {r}"
                    ),
                }
            }
            (_, o) => o,
        }
    }
}

/// What the per-subject memos are keyed by: model name, variant and runtime.
type SubjectKey = (String, Variant, Runtime);

/// Everything the cases of a run share.
pub struct Judge {
    pub(crate) project: Project,
    pub(crate) registry: Vec<ModelEntry>,
    pub(crate) claims: Vec<ClaimSpec>,
    /// Seed of seeded steps (bootstrap resampling).
    pub seed: u64,
    /// Whose files are judged, and so which skips are allowed.
    pub(crate) policy: SkipPolicy,
    /// The GPU that cases on a CUDA runtime use (`--device`; default `cuda:0`); `cpu`: none,
    /// so they skip.
    pub(crate) gpu: DeviceSpec,
    bases: Memo<String, Result<Arc<Base>, SubjectError>>,
    subjects: Memo<SubjectKey, Result<Arc<Subject>, SubjectError>>,
    oracles: Memo<String, Shared<(Oracle, FileHash)>>,
    prompts: Memo<String, Shared<Vec<Prompt>>>,
    rows: Memo<SubjectKey, Shared<SeqLogits>>,
    pub(crate) drift: Memo<SubjectKey, Result<crate::stats::SetStats, JudgeError>>,
    /// Teacher-forced statistics against the oracle per subject and runtime: every
    /// `oracle_parity` claim on one subject (and every precondition that re-judges one) reads the same.
    pub(crate) parity: Memo<SubjectKey, Arc<crate::stats::SetStats>>,
    verdicts: Memo<String, Arc<super::Verdict>>,
    hashes: Memo<std::path::PathBuf, Result<String, JudgeError>>,
    intervals: Memo<String, Option<(f64, f64)>>,
    pub(crate) ppl: Memo<SubjectKey, Shared<crate::run::PplResult>>,
    pub(crate) continuations: Memo<SubjectKey, Shared<Vec<Vec<u32>>>>,
    pub(crate) files: Memo<(String, Variant), Shared<super::files::VariantFile>>,
    eval: Memo<(), Shared<crate::run::EvalSlice>>,
    /// Records of a registered number's source (and variant, for generated ones).
    pub(crate) records: Memo<(String, String), Shared<Vec<crate::metrics::GenerationRecord>>>,
}

impl Judge {
    /// A judge for `claims` (all registered claims: preconditions may name any of them).
    pub fn new(
        project: Project,
        registry: Vec<ModelEntry>,
        claims: Vec<ClaimSpec>,
        seed: u64,
    ) -> Judge {
        Judge {
            project,
            registry,
            claims,
            seed,
            policy: SkipPolicy::Registered { forbid: false },
            gpu: DeviceSpec::Cuda(0),
            bases: Memo::new(),
            subjects: Memo::new(),
            oracles: Memo::new(),
            prompts: Memo::new(),
            rows: Memo::new(),
            drift: Memo::new(),
            parity: Memo::new(),
            verdicts: Memo::new(),
            hashes: Memo::new(),
            intervals: Memo::new(),
            ppl: Memo::new(),
            continuations: Memo::new(),
            files: Memo::new(),
            eval: Memo::new(),
            records: Memo::new(),
        }
    }

    /// Sets the GPU that cases on a CUDA runtime use (`--device`); `cpu` makes them skip.
    pub fn with_gpu(mut self, gpu: DeviceSpec) -> Judge {
        self.gpu = gpu;
        self
    }

    /// Sets which skips this run allows (see [`SkipPolicy`]).
    pub fn with_policy(mut self, policy: SkipPolicy) -> Judge {
        self.policy = policy;
        self
    }

    /// Loads a model's stored weights now, so a file that cannot be read is reported once,
    /// and checks that its tokenizer produces only ids its embedding has; returns the
    /// limits an oracle of the model must respect.
    pub fn preload(&self, model: &str) -> Result<crate::oracle::ModelLimits, String> {
        match self.base(model) {
            Ok(b) => {
                let file = b.files.last().map_or(model, |f| f.path.as_str());
                crate::tokenizer::check_fits(b.tokenizer.as_ref(), b.weights.config.vocab_size)
                    .map_err(|e| format!("{file}: {e}"))?;
                Ok(crate::oracle::ModelLimits::of(&b.weights.config))
            }
            Err(Stop::Error(e)) => Err(e.chain()),
            Err(Stop::Skip(r)) => Err(r.to_string()),
        }
    }

    /// A model's variant as the cases see it, for callers outside the judge (a failure as
    /// one line).
    pub(crate) fn loaded_subject(
        &self,
        model: &str,
        variant: Variant,
    ) -> Result<Arc<Subject>, String> {
        self.subject(model, variant, Runtime::CPU_F32)
            .map_err(|e| match e {
                Stop::Error(e) => e.chain(),
                Stop::Skip(r) => r.to_string(),
            })
    }

    pub(crate) fn entry(&self, model: &str) -> Result<&ModelEntry, Stop> {
        self.registry
            .iter()
            .find(|m| m.name == model)
            .ok_or_else(|| Stop::rule(format!("model '{model}' is not registered")))
    }

    pub(crate) fn hash_file(&self, p: &Path) -> Result<FileHash, Stop> {
        let sha = crate::fsutil::sha256_file(p).or_stop()?;
        Ok(FileHash {
            path: self.project.display(p),
            sha256: sha,
        })
    }

    /// The seeded bootstrap 95% interval of the mean of `values` (1000 resamples), computed
    /// once per run for each distinct set of values: every claim on one variant's KL, and
    /// every precondition, asks for the same one.
    pub(crate) fn kl_mean_interval(&self, values: &[f64]) -> Option<(f64, f64)> {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect();
        let key = crate::fsutil::sha256_hex(&bytes);
        self.intervals.get_or(&key, || {
            crate::stats::bootstrap_mean_interval(values, self.seed, 1000)
        })
    }

    /// The hash of an input the run only reads (a claims file), computed once per run:
    /// every case hashes its claims file, and with many claims (a precondition judges each
    /// registered one) that file is large.
    pub(crate) fn hash_input(&self, p: &Path) -> Result<FileHash, Stop> {
        let sha = self.hashes.get_or(&p.to_path_buf(), || {
            crate::fsutil::sha256_file(p).map_err(|e| JudgeError::failed("", e))
        })?;
        Ok(FileHash {
            path: self.project.display(p),
            sha256: sha,
        })
    }

    pub(crate) fn base(&self, model: &str) -> Result<Arc<Base>, Stop> {
        let entry = self.entry(model)?;
        Ok(self.bases.get_or(&model.to_string(), || {
            load_base(&self.project, &self.registry, entry).map(Arc::new)
        })?)
    }

    /// The subject for a variant, loaded for `runtime` (a runtime whose device is missing
    /// is a skip, never a pass).
    pub(crate) fn subject(
        &self,
        model: &str,
        variant: Variant,
        runtime: Runtime,
    ) -> Result<Arc<Subject>, Stop> {
        let options = runtime.load_options()?;
        let base = self.base(model)?;
        let used = self.used_tokens(model)?;
        Ok(self
            .subjects
            .get_or(&(model.to_string(), variant, runtime), || {
                derive(&base, variant, &used, &options).map(Arc::new)
            })?)
    }

    /// A case's runtime as this run executes it: a CUDA runtime on the run's GPU
    /// (`--device`), on the f32 path. `--device cpu` leaves a CUDA case no GPU: a skip
    /// saying so. Whether the GPU is really there is [`Judge::subject`]'s to find out.
    pub(crate) fn runtime_of(&self, case: &crate::claim::Case) -> Result<Runtime, Stop> {
        self.on_run_gpu(case.runtime)
    }

    /// `r` bound to the run's GPU (see [`Judge::runtime_of`]).
    pub(crate) fn on_run_gpu(&self, r: crate::runtime::Runtime) -> Result<Runtime, Stop> {
        match r.on_gpu(self.gpu) {
            Some(r) => Ok(Runtime::of(r)),
            None => Err(Stop::Skip(SkipReason::NoDevice {
                device: "GPU device: --device cpu: this run uses no GPU".into(),
            })),
        }
    }

    /// The model's oracle and its hash, or `None` when it has none. The oracle is checked
    /// against the model (ids in its vocabulary, cases within its context) before any
    /// model work uses it.
    pub(crate) fn oracle(&self, model: &str) -> Result<Option<Arc<(Oracle, FileHash)>>, Stop> {
        let Some(rel) = self.entry(model)?.oracle.clone() else {
            return Ok(None);
        };
        let limits = crate::oracle::ModelLimits::of(&self.base(model)?.weights.config);
        let path = self.project.path(&rel);
        let r = self.oracles.get_or(&rel, || {
            let o = crate::oracle::read(&path).map_err(|e| JudgeError::failed("", e))?;
            let sha = crate::fsutil::sha256_file(&path).map_err(|e| JudgeError::failed("", e))?;
            Ok(Arc::new((
                o,
                FileHash {
                    path: self.project.display(&path),
                    sha256: sha,
                },
            )))
        });
        let o = r?;
        crate::oracle::check_for(&o.0, &path, &limits).or_stop()?;
        Ok(Some(o))
    }

    pub(crate) fn prompt_set(&self, file: &str) -> Result<Arc<Vec<Prompt>>, Stop> {
        let path = self.project.path(file);
        Ok(self.prompts.get_or(&file.to_string(), || {
            crate::prompts::load(&path)
                .map(Arc::new)
                .map_err(|e| JudgeError::failed("", e))
        })?)
    }

    /// The model's evaluation sequences (its oracle's, else the default prompt set).
    pub(crate) fn seqs(&self, model: &str) -> Result<Vec<EvalSeq>, Stop> {
        let base = self.base(model)?;
        let oracle = self.oracle(model)?;
        let prompts = self.prompt_set(crate::project::DEFAULT_PROMPTS)?;
        Ok(eval_seqs(
            oracle.as_deref().map(|o| &o.0),
            &prompts,
            base.tokenizer.as_ref(),
        )?)
    }

    fn used_tokens(&self, model: &str) -> Result<Vec<u32>, Stop> {
        Ok(self
            .seqs(model)?
            .into_iter()
            .flat_map(|s| s.tokens)
            .collect())
    }

    /// Full-recompute logits of the evaluation sequences' compared rows on `runtime`, cached.
    pub(crate) fn rows(
        &self,
        model: &str,
        variant: Variant,
        runtime: Runtime,
    ) -> Result<Arc<SeqLogits>, Stop> {
        let subject = self.subject(model, variant, runtime)?;
        let seqs = self.seqs(model)?;
        let rows = self
            .rows
            .get_or(&(model.to_string(), variant, runtime), || {
                seqs.iter()
                    .map(|s| {
                        logits(&subject.llama, &s.tokens)
                            .map(|r| r[s.start..].to_vec())
                            .map_err(|e| {
                                JudgeError::failed(format!("{model} {variant}: forward"), e)
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Arc::new)
            });
        Ok(rows?)
    }

    /// The evaluation slice of `configs/eval.toml`.
    pub(crate) fn eval_slice(&self) -> Result<Arc<crate::run::EvalSlice>, Stop> {
        let file = self.project.path(crate::project::EVAL_FILE);
        Ok(self.eval.get_or(&(), || {
            crate::run::EvalSlice::load(&self.project.root, &file)
                .map(Arc::new)
                .map_err(|e| JudgeError::failed("", e))
        })?)
    }

    /// Judges another case (a precondition) once per run.
    pub(crate) fn verdict_of(&self, case: &crate::claim::Case) -> Arc<super::Verdict> {
        self.verdicts
            .get_or(&case.name, || Arc::new(self.judge(case)))
    }
}
