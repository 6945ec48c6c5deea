//! Claim kinds: [`ClaimKind`], the closed set of names a claim file uses, and [`Kind`],
//! the same kind resolved with its parameters (what it compares, which checkpoints it
//! judges, the typed statistic its judge dispatches on).

use crate::stats::{
    ChainStat, FileStat, Measurement, OracleStat, ParentStat, PathStat, Statistic, SweepStat,
};
use serde::{Deserialize, Serialize};

/// What a claim compares, as a claim file names it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// The harness's tokenization of each prompt equals the oracle's `prompt_tokens`.
    TokenizerParity,
    /// Free-running greedy decoding reproduces the oracle's tokens (exact-match).
    GreedyParity,
    /// Teacher-forced distributions match the oracle's (exact-match: same weights file).
    OracleParity,
    /// Teacher-forced distributions of a variant stay near the oracle's.
    OracleDrift,
    /// A quantized variant stays near its f32/stored parent.
    QuantDrift,
    /// A corrupted variant moves away from its parent (the damage is detected).
    CorruptionDetect,
    /// A severity sweep of seeded bit flips (several seeds per point) against the clean
    /// parent: degradation ordered by rate, the share of single flips that matter.
    CorruptionSweep,
    /// Two runtime paths of the same model agree.
    Consistency,
    /// Building the same subject twice gives bit-identical weights and logits.
    Determinism,
    /// A chain of quantized variants (more bits first) drifts no more as bits increase.
    QuantOrder,
    /// candle's quantized bytes equal llama.cpp's reference quantizer's on the same input.
    ReferenceAgreement,
    /// A file written, read back and written again (or converted between formats)
    /// keeps every tensor.
    RoundTrip,
    /// The GGUF file of a subject is well-formed and says what it is.
    Structure,
    /// The harness's own training behaves (init loss, overfitting, gradients, reload,
    /// sampling, seeds, learning, reproducibility); which property is `check`.
    TrainSanity,
    /// A registered metric number (SF, SC, theater, their gap) reproduces on its records;
    /// written as `[[number]]` tables in `claims/metrics/*.toml`, never as a `[[claim]]`.
    MetricRepro,
}

impl ClaimKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ClaimKind; 15] = [
        ClaimKind::TokenizerParity,
        ClaimKind::GreedyParity,
        ClaimKind::OracleParity,
        ClaimKind::OracleDrift,
        ClaimKind::QuantDrift,
        ClaimKind::CorruptionDetect,
        ClaimKind::CorruptionSweep,
        ClaimKind::Consistency,
        ClaimKind::Determinism,
        ClaimKind::QuantOrder,
        ClaimKind::ReferenceAgreement,
        ClaimKind::RoundTrip,
        ClaimKind::Structure,
        ClaimKind::TrainSanity,
        ClaimKind::MetricRepro,
    ];

    /// The kind's row: everything known about it, one arm per kind.
    fn row(self) -> Row {
        use CaseShape::{PerChain, PerPrompt, PerVariant};
        use Measurement as M;
        let row = |name, measurement, cases, exact_match, on_runtime| Row {
            name,
            measurement,
            cases,
            exact_match,
            on_runtime,
        };
        match self {
            ClaimKind::TokenizerParity => {
                row("tokenizer_parity", M::Tokenization, PerPrompt, false, false)
            }
            ClaimKind::GreedyParity => row("greedy_parity", M::Greedy, PerPrompt, true, true),
            ClaimKind::OracleParity => row("oracle_parity", M::Oracle, PerVariant, true, true),
            ClaimKind::OracleDrift => row("oracle_drift", M::Oracle, PerVariant, false, true),
            ClaimKind::QuantDrift => row("quant_drift", M::Parent, PerVariant, false, true),
            ClaimKind::CorruptionDetect => {
                row("corruption_detect", M::Parent, PerVariant, false, false)
            }
            ClaimKind::CorruptionSweep => row("corruption_sweep", M::Sweep, PerChain, false, false),
            ClaimKind::Consistency => row("consistency", M::Paths, PerVariant, false, false),
            ClaimKind::Determinism => row("determinism", M::Builds, PerVariant, false, false),
            ClaimKind::QuantOrder => row("quant_order", M::Chain, PerChain, false, false),
            ClaimKind::ReferenceAgreement => row(
                "reference_agreement",
                M::ReferenceQuantizer,
                PerVariant,
                false,
                false,
            ),
            ClaimKind::RoundTrip => row("round_trip", M::RoundTrip, PerVariant, false, false),
            ClaimKind::Structure => row("structure", M::File, PerVariant, false, false),
            ClaimKind::TrainSanity => row("train_sanity", M::Training, PerVariant, false, true),
            ClaimKind::MetricRepro => row("metric_repro", M::Records, PerVariant, false, false),
        }
    }

    /// Whether the kind's judge runs the subject's forward passes on the case's runtime, so
    /// that a claim may name runtimes other than the CPU: oracle parity and drift (logits,
    /// greedy decoding, perplexity against the oracle), quantization drift (the variant
    /// on the runtime against the base on the CPU in f32) and training sanity (trains and
    /// evaluates there; which checks accept which runtimes is [`TrainCheck::on_runtime`]).
    /// The others read files or compare paths of their own, and a runtime there would be
    /// a label nothing uses.
    pub fn runs_on_runtime(self) -> bool {
        self.row().on_runtime
    }

    /// The snake_case name used in files and case names.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// What the kind measures; it can bound exactly the statistics of that measurement.
    pub fn measurement(self) -> Measurement {
        self.row().measurement
    }

    /// The statistics that this kind can bound.
    pub fn statistics(self) -> Vec<Statistic> {
        Statistic::measured_by(self.measurement())
    }

    /// Exact-match kinds judge only the very file the oracle was made from.
    pub fn is_exact_match(self) -> bool {
        self.row().exact_match
    }

    /// Which cases a claim of this kind expands to.
    pub fn cases(self) -> CaseShape {
        self.row().cases
    }
}

/// Everything known about a kind.
struct Row {
    name: &'static str,
    measurement: Measurement,
    cases: CaseShape,
    exact_match: bool,
    on_runtime: bool,
}

/// Which cases a claim expands to, besides one per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseShape {
    /// One per variant and prompt.
    PerPrompt,
    /// One per variant.
    PerVariant,
    /// One for the whole variant list, a chain.
    PerChain,
}

/// What a `consistency` claim (two runtime paths) or a `round_trip` claim (two files)
/// compares, as the claim file's `compare` field names it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Incremental decoding with the KV cache vs full recomputation.
    KvCache,
    /// A batch of several sequences vs each sequence alone.
    Batch,
    /// candle's quantized-activation matmul vs dequantized f32 weights.
    QuantMatmul,
    /// The same subject on a CUDA device vs the CPU (skipped without one).
    Cuda,
    /// GGUF written, read back and written again: every tensor's bytes identical.
    GgufReimport,
    /// safetensors → GGUF → safetensors: every tensor's dequantized values identical.
    SafetensorsGguf,
}

impl Compare {
    /// The snake_case name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Compare::KvCache => "kv_cache",
            Compare::Batch => "batch",
            Compare::QuantMatmul => "quant_matmul",
            Compare::Cuda => "cuda",
            Compare::GgufReimport => "gguf_reimport",
            Compare::SafetensorsGguf => "safetensors_gguf",
        }
    }

    /// The comparison as a `consistency` or a `round_trip` claim sees it.
    pub fn resolve(self) -> Compared {
        match self {
            Compare::KvCache => Compared::Paths(Paths::KvCache),
            Compare::Batch => Compared::Paths(Paths::Batch),
            Compare::QuantMatmul => Compared::Paths(Paths::QuantMatmul),
            Compare::Cuda => Compared::Paths(Paths::Cuda),
            Compare::GgufReimport => Compared::Files(RoundTrip::GgufReimport),
            Compare::SafetensorsGguf => Compared::Files(RoundTrip::SafetensorsGguf),
        }
    }
}

/// A [`Compare`] value, split by the kind it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// Two runtime paths (`consistency`).
    Paths(Paths),
    /// Two files (`round_trip`).
    Files(RoundTrip),
}

/// The two runtime paths a `consistency` claim compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    /// Incremental decoding with the KV cache vs full recomputation.
    KvCache,
    /// A batch of several sequences vs each sequence alone.
    Batch,
    /// candle's quantized-activation matmul vs dequantized f32 weights.
    QuantMatmul,
    /// The same subject on a CUDA device vs the CPU (skipped without one).
    Cuda,
}

/// The two files a `round_trip` claim compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTrip {
    /// GGUF written, read back and written again: every tensor's bytes identical.
    GgufReimport,
    /// safetensors → GGUF → safetensors: every tensor's dequantized values identical.
    SafetensorsGguf,
}

impl Paths {
    /// As written in claim files.
    pub fn compare(self) -> Compare {
        match self {
            Paths::KvCache => Compare::KvCache,
            Paths::Batch => Compare::Batch,
            Paths::QuantMatmul => Compare::QuantMatmul,
            Paths::Cuda => Compare::Cuda,
        }
    }
}

impl RoundTrip {
    /// As written in claim files.
    pub fn compare(self) -> Compare {
        match self {
            RoundTrip::GgufReimport => Compare::GgufReimport,
            RoundTrip::SafetensorsGguf => Compare::SafetensorsGguf,
        }
    }
}

/// Which property of training a `train_sanity` claim checks (the procedures' parameters
/// live in `configs/recipes.toml`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrainCheck {
    /// Validation loss of the seeded init against `ln(vocab)`.
    InitLoss,
    /// The architecture drives the loss on a short repeated text to near zero.
    Overfit,
    /// Backpropagation against central finite differences (f64).
    GradCheck,
    /// Save → reload keeps every weight bit and the loss.
    Reload,
    /// Seeded sampling repeats itself.
    Sampling,
    /// Two trainings with one seed give the same weights.
    SeedHash,
    /// Held-out loss below the training text's unigram entropy.
    BeatsUnigram,
    /// Final validation loss reproduces the registered one.
    ValLossRepro,
    /// A fresh training of the model's recipe gives the committed folder's weights.
    ReproducesCommitted,
}

impl TrainCheck {
    /// The snake_case name used in files, and the one statistic the check measures.
    fn row(self) -> (&'static str, Statistic) {
        use Statistic as S;
        match self {
            TrainCheck::InitLoss => ("init_loss", S::LossGapNats),
            TrainCheck::Overfit => ("overfit", S::FinalLoss),
            TrainCheck::GradCheck => ("grad_check", S::RelGradError),
            TrainCheck::Reload => ("reload", S::BitMismatches),
            TrainCheck::Sampling => ("sampling", S::BitMismatches),
            TrainCheck::SeedHash => ("seed_hash", S::BitMismatches),
            TrainCheck::BeatsUnigram => ("beats_unigram", S::UnigramMarginNats),
            TrainCheck::ValLossRepro => ("val_loss_repro", S::ValLossDelta),
            TrainCheck::ReproducesCommitted => ("reproduces_committed", S::BitMismatches),
        }
    }

    /// The snake_case name used in files.
    pub fn name(self) -> &'static str {
        self.row().0
    }

    /// The one statistic the check measures.
    pub fn statistic(self) -> Statistic {
        self.row().1
    }

    /// What of a case's runtime the check uses. The two checks against numbers made on
    /// the CPU (a registered loss, committed bytes) run on the CPU only; the init loss and
    /// the gradient check evaluate without training (the gradient check in f64), so only
    /// the device can change them; the rest train on the runtime, precision included.
    pub fn on_runtime(self) -> RuntimeUse {
        match self {
            TrainCheck::ValLossRepro | TrainCheck::ReproducesCommitted => RuntimeUse::CpuOnly,
            TrainCheck::InitLoss
            | TrainCheck::GradCheck
            | TrainCheck::Reload
            | TrainCheck::Sampling => RuntimeUse::Device,
            TrainCheck::Overfit | TrainCheck::SeedHash | TrainCheck::BeatsUnigram => {
                RuntimeUse::DeviceAndPrecision
            }
        }
    }
}

/// How much of a runtime a training check can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeUse {
    /// Compares with numbers made on the CPU in f32: any other runtime would change the
    /// question.
    CpuOnly,
    /// Runs on the runtime's device in f32 (the reload and sampling checks evaluate a
    /// checkpoint trained there in f32, whose final loss was measured in f32).
    Device,
    /// Trains on the runtime's device and precision.
    DeviceAndPrecision,
}

/// The storage types a `stored_as` list may name (the matrices' dominant GGML type).
pub const STORAGE_TYPES: [&str; 13] = [
    "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "q3_k",
    "q2_k",
];

/// `stored_as = ["oracle"]`: the oracle's own storage type.
pub const STORED_AS_ORACLE: &str = "oracle";

/// Which checkpoints an oracle claim judges, by the storage type of their matrices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredAs {
    /// No `stored_as`: parity kinds judge only the oracle's very file, drift kinds every
    /// checkpoint.
    Unrestricted,
    /// `["oracle"]`: stored in the oracle's own `model.weights` type, i.e. the same model
    /// whatever its file hash.
    OraclesOwn,
    /// A list of storage types: a requantization to one of them (never the oracle's own).
    Types(Vec<String>),
}

impl StoredAs {
    /// Whether a checkpoint stored as `stored` is one this selects, the oracle's model
    /// being stored as `oracle_weights`. A checkpoint in the oracle's own type is the same
    /// model: only `oracle` selects it, never a requantization band that happens to list
    /// its type.
    pub fn selects(&self, stored: &str, oracle_weights: &str) -> bool {
        match self {
            StoredAs::Unrestricted => true,
            StoredAs::OraclesOwn => stored == oracle_weights,
            StoredAs::Types(types) => stored != oracle_weights && types.iter().any(|t| t == stored),
        }
    }

    /// As written in claim files (empty when unrestricted).
    pub fn names(&self) -> Vec<String> {
        match self {
            StoredAs::Unrestricted => vec![],
            StoredAs::OraclesOwn => vec![STORED_AS_ORACLE.to_string()],
            StoredAs::Types(t) => t.clone(),
        }
    }
}

/// A claim's kind with everything its judge needs, typed: resolved once when the claim
/// is loaded, so judges never re-parse or re-validate a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// See [`ClaimKind::TokenizerParity`].
    TokenizerParity,
    /// See [`ClaimKind::GreedyParity`].
    GreedyParity {
        /// Which checkpoints it judges.
        stored_as: StoredAs,
        /// The registered near-tie margin (`greedy_match_or_tie`); `None`: exact match.
        tie_margin: Option<f64>,
    },
    /// See [`ClaimKind::OracleParity`].
    OracleParity {
        /// Which checkpoints it judges.
        stored_as: StoredAs,
        /// What it measures.
        stat: OracleStat,
    },
    /// See [`ClaimKind::OracleDrift`].
    OracleDrift {
        /// Which checkpoints it judges.
        stored_as: StoredAs,
        /// What it measures.
        stat: OracleStat,
    },
    /// See [`ClaimKind::QuantDrift`].
    QuantDrift(ParentStat),
    /// See [`ClaimKind::CorruptionDetect`].
    CorruptionDetect(ParentStat),
    /// See [`ClaimKind::CorruptionSweep`]; the points are the claim's variants (no seed
    /// written), each at seeds `0..seeds`.
    CorruptionSweep {
        /// What it measures.
        stat: SweepStat,
        /// Seeds per point.
        seeds: u64,
    },
    /// See [`ClaimKind::Consistency`].
    Consistency(Paths, PathStat),
    /// See [`ClaimKind::Determinism`].
    Determinism,
    /// See [`ClaimKind::QuantOrder`]; the chain is the claim's variants.
    QuantOrder(ChainStat),
    /// See [`ClaimKind::ReferenceAgreement`].
    ReferenceAgreement,
    /// See [`ClaimKind::RoundTrip`].
    RoundTrip(RoundTrip),
    /// See [`ClaimKind::Structure`].
    Structure(FileStat),
    /// See [`ClaimKind::TrainSanity`].
    TrainSanity(TrainCheck),
    /// See [`ClaimKind::MetricRepro`]: the number as registered.
    MetricRepro(std::sync::Arc<super::number::RegisteredNumber>),
}

impl Kind {
    /// The kind as claims files name it (`kind = "..."`), without what was typed from the
    /// other fields.
    pub fn claim_kind(&self) -> ClaimKind {
        match self {
            Kind::TokenizerParity => ClaimKind::TokenizerParity,
            Kind::GreedyParity { .. } => ClaimKind::GreedyParity,
            Kind::OracleParity { .. } => ClaimKind::OracleParity,
            Kind::OracleDrift { .. } => ClaimKind::OracleDrift,
            Kind::QuantDrift(_) => ClaimKind::QuantDrift,
            Kind::CorruptionDetect(_) => ClaimKind::CorruptionDetect,
            Kind::CorruptionSweep { .. } => ClaimKind::CorruptionSweep,
            Kind::Consistency(..) => ClaimKind::Consistency,
            Kind::Determinism => ClaimKind::Determinism,
            Kind::QuantOrder(_) => ClaimKind::QuantOrder,
            Kind::ReferenceAgreement => ClaimKind::ReferenceAgreement,
            Kind::RoundTrip(_) => ClaimKind::RoundTrip,
            Kind::Structure(_) => ClaimKind::Structure,
            Kind::TrainSanity(_) => ClaimKind::TrainSanity,
            Kind::MetricRepro(_) => ClaimKind::MetricRepro,
        }
    }

    /// The snake_case name used in files and case names.
    pub fn name(&self) -> &'static str {
        self.claim_kind().name()
    }

    /// The fields a claim file states besides kind and bound, as this kind holds them.
    pub fn fields(&self) -> Fields<'_> {
        const UNRESTRICTED: &StoredAs = &StoredAs::Unrestricted;
        let none = Fields {
            stored_as: UNRESTRICTED,
            compare: None,
            check: None,
            tie_margin: None,
            seeds: None,
        };
        match self {
            Kind::GreedyParity {
                stored_as,
                tie_margin,
            } => Fields {
                stored_as,
                tie_margin: *tie_margin,
                ..none
            },
            Kind::OracleParity { stored_as, .. } | Kind::OracleDrift { stored_as, .. } => {
                Fields { stored_as, ..none }
            }
            Kind::Consistency(p, _) => Fields {
                compare: Some(p.compare()),
                ..none
            },
            Kind::RoundTrip(r) => Fields {
                compare: Some(r.compare()),
                ..none
            },
            Kind::TrainSanity(check) => Fields {
                check: Some(*check),
                ..none
            },
            Kind::CorruptionSweep { seeds, .. } => Fields {
                seeds: Some(*seeds),
                ..none
            },
            Kind::TokenizerParity
            | Kind::QuantDrift(_)
            | Kind::CorruptionDetect(_)
            | Kind::Determinism
            | Kind::QuantOrder(_)
            | Kind::ReferenceAgreement
            | Kind::Structure(_)
            | Kind::MetricRepro(_) => none,
        }
    }

    /// Which checkpoints an oracle kind judges (unrestricted for every other kind).
    pub fn stored_as(&self) -> &StoredAs {
        self.fields().stored_as
    }
}

/// A kind's parameters as a claim file states them (`stored_as`, `compare`, `check`,
/// `tie_margin`, `seeds`), for writing a claim back and for rendering it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fields<'a> {
    /// Which checkpoints it judges.
    pub stored_as: &'a StoredAs,
    /// What a consistency or round-trip claim compares.
    pub compare: Option<Compare>,
    /// Which training property a `train_sanity` claim checks.
    pub check: Option<TrainCheck>,
    /// The near-tie margin of `greedy_match_or_tie`.
    pub tie_margin: Option<f64>,
    /// Seeds per point of a `corruption_sweep` claim.
    pub seeds: Option<u64>,
}
