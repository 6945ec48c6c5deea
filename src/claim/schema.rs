//! The claim file schema: what a pre-registered claim says, parsed strictly.
//!
//! Every enum here is closed: an unknown kind, statistic or operator is a parse error
//! that names the file and line, never a claim that silently matches nothing.

use serde::{Deserialize, Serialize};

pub use super::statistic::Statistic;

/// A `claims/*.toml` file: a list of `[[claim]]` tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimFile {
    /// The claims, in file order.
    pub claim: Vec<Claim>,
}

/// One pre-registered claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Stable identifier, unique across `claims/` (e.g. `QD-3`).
    pub id: String,
    /// What is compared with what.
    pub kind: ClaimKind,
    /// The claim in one sentence, as a reader would state it.
    pub statement: String,
    /// The models and variants it is about.
    pub subjects: Subjects,
    /// Prompt set file (default `configs/prompts.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<String>,
    /// Which runtime paths a `consistency` claim compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    /// Which property of training a `train_sanity` claim checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<TrainCheck>,
    /// Oracle kinds only: which checkpoints the claim judges, by the storage type of their
    /// matrices. `["oracle"]` (greedy and oracle parity): stored in the oracle's own
    /// `model.weights` type, i.e. the same model, whatever its file hash; a list of types
    /// (`["q8_0"]`, oracle drift): a requantization to one of them. Empty: parity kinds
    /// judge only the oracle's very file, drift kinds every checkpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_as: Vec<String>,
    /// Where and in what precision the subject's forward passes run: a case dimension
    /// (`runtimes = ["cpu", "cuda", "cuda-bf16"]`; case names carry `@cuda`…). Empty: the
    /// CPU in f32. Only kinds that run the subject on its runtime take others
    /// ([`ClaimKind::runs_on_runtime`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<crate::runtime::Runtime>,
    /// `greedy_match_or_tie` only: a first divergence is forgiven when the oracle's
    /// log-probability margin of its token over the subject's, and the subject's margin of
    /// its token over the oracle's, are both at most this many nats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_margin: Option<f64>,
    /// The falsification criterion.
    pub bound: Bound,
    /// Why this bound, written before the run that tests it.
    pub rationale: String,
    /// Registration date, `YYYY-MM-DD`.
    pub registered: String,
    /// Whether the bound was written before any run of the claim (`prior`) or after its
    /// author had seen numbers it judges (`observed`). Required: a reader must never have
    /// to guess whether a bound is a prediction or a fitted regression guard.
    pub basis: Basis,
    /// `hold` for ordinary claims, `fail` for registered negative claims.
    #[serde(default)]
    pub expect: Expect,
    /// Set when a run falsified the claim and it was withdrawn: the date and what was
    /// observed. A retired claim stays in the record (and in CLAIMS.md) but expands to no
    /// case; a corrected prediction is a new claim with its own id and date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

impl Claim {
    /// The runtimes its cases run on: the registered ones, else the CPU in f32.
    pub fn case_runtimes(&self) -> Vec<crate::runtime::Runtime> {
        match self.runtimes.is_empty() {
            true => vec![crate::runtime::Runtime::CPU],
            false => self.runtimes.clone(),
        }
    }
}

/// What a claim compares.
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
}

impl ClaimKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ClaimKind; 13] = [
        ClaimKind::TokenizerParity,
        ClaimKind::GreedyParity,
        ClaimKind::OracleParity,
        ClaimKind::OracleDrift,
        ClaimKind::QuantDrift,
        ClaimKind::CorruptionDetect,
        ClaimKind::Consistency,
        ClaimKind::Determinism,
        ClaimKind::QuantOrder,
        ClaimKind::ReferenceAgreement,
        ClaimKind::RoundTrip,
        ClaimKind::Structure,
        ClaimKind::TrainSanity,
    ];

    /// The snake_case name used in files and case names.
    pub fn name(self) -> &'static str {
        match self {
            ClaimKind::TokenizerParity => "tokenizer_parity",
            ClaimKind::GreedyParity => "greedy_parity",
            ClaimKind::OracleParity => "oracle_parity",
            ClaimKind::OracleDrift => "oracle_drift",
            ClaimKind::QuantDrift => "quant_drift",
            ClaimKind::CorruptionDetect => "corruption_detect",
            ClaimKind::Consistency => "consistency",
            ClaimKind::Determinism => "determinism",
            ClaimKind::QuantOrder => "quant_order",
            ClaimKind::ReferenceAgreement => "reference_agreement",
            ClaimKind::RoundTrip => "round_trip",
            ClaimKind::Structure => "structure",
            ClaimKind::TrainSanity => "train_sanity",
        }
    }

    /// Exact-match kinds judge only the very file the oracle was made from.
    pub fn is_exact_match(self) -> bool {
        match self {
            ClaimKind::GreedyParity | ClaimKind::OracleParity => true,
            ClaimKind::TokenizerParity
            | ClaimKind::OracleDrift
            | ClaimKind::QuantDrift
            | ClaimKind::CorruptionDetect
            | ClaimKind::Consistency
            | ClaimKind::Determinism
            | ClaimKind::QuantOrder
            | ClaimKind::ReferenceAgreement
            | ClaimKind::RoundTrip
            | ClaimKind::Structure
            | ClaimKind::TrainSanity => false,
        }
    }

    /// Whether the kind's judge runs the subject's forward passes on the case's runtime, so
    /// that a claim may name runtimes other than the CPU: oracle parity and drift (logits,
    /// greedy decoding, perplexity against the oracle) and quantization drift (the variant
    /// on the runtime against the base on the CPU in f32). The others read files, train,
    /// or compare paths of their own, and a runtime there would be a label nothing uses.
    pub fn runs_on_runtime(self) -> bool {
        match self {
            ClaimKind::GreedyParity | ClaimKind::OracleParity | ClaimKind::OracleDrift | ClaimKind::QuantDrift => true,
            ClaimKind::TokenizerParity
            | ClaimKind::CorruptionDetect
            | ClaimKind::Consistency
            | ClaimKind::Determinism
            | ClaimKind::QuantOrder
            | ClaimKind::ReferenceAgreement
            | ClaimKind::RoundTrip
            | ClaimKind::Structure
            | ClaimKind::TrainSanity => false,
        }
    }

    /// Whether the kind yields one case per prompt (else one per model × variant).
    pub fn per_prompt(self) -> bool {
        match self {
            ClaimKind::TokenizerParity | ClaimKind::GreedyParity => true,
            ClaimKind::OracleParity
            | ClaimKind::OracleDrift
            | ClaimKind::QuantDrift
            | ClaimKind::CorruptionDetect
            | ClaimKind::Consistency
            | ClaimKind::Determinism
            | ClaimKind::QuantOrder
            | ClaimKind::ReferenceAgreement
            | ClaimKind::RoundTrip
            | ClaimKind::Structure
            | ClaimKind::TrainSanity => false,
        }
    }

    /// Whether the kind judges its whole variant list in one case (a chain), rather than
    /// one case per variant.
    pub fn per_chain(self) -> bool {
        match self {
            ClaimKind::QuantOrder => true,
            ClaimKind::TokenizerParity
            | ClaimKind::GreedyParity
            | ClaimKind::OracleParity
            | ClaimKind::OracleDrift
            | ClaimKind::QuantDrift
            | ClaimKind::CorruptionDetect
            | ClaimKind::Consistency
            | ClaimKind::Determinism
            | ClaimKind::ReferenceAgreement
            | ClaimKind::RoundTrip
            | ClaimKind::Structure => false,
            | ClaimKind::TrainSanity => false,
        }
    }

    /// Whether the kind reads the model's oracle.
    pub fn needs_oracle(self) -> bool {
        match self {
            ClaimKind::TokenizerParity | ClaimKind::GreedyParity | ClaimKind::OracleParity | ClaimKind::OracleDrift => true,
            ClaimKind::QuantDrift
            | ClaimKind::CorruptionDetect
            | ClaimKind::Consistency
            | ClaimKind::Determinism
            | ClaimKind::QuantOrder
            | ClaimKind::ReferenceAgreement
            | ClaimKind::RoundTrip
            | ClaimKind::Structure
            | ClaimKind::TrainSanity => false,
        }
    }

    /// The statistics that this kind can bound.
    pub fn statistics(self) -> &'static [Statistic] {
        use Statistic::*;
        match self {
            ClaimKind::TokenizerParity => &[TokenMismatches],
            ClaimKind::GreedyParity => &[GreedyMatch, GreedyMatchOrTie],
            ClaimKind::OracleParity | ClaimKind::OracleDrift => {
                &[Top1Agreement, TopkOverlap, KlMean, KlMedian, KlP99, KlMax, MaxAbsLogprobDelta, PplRelDiff, ConfigMismatches]
            }
            ClaimKind::QuantDrift | ClaimKind::CorruptionDetect => {
                &[Top1Agreement, KlMean, KlMedian, KlP99, KlMax, RmsDp, PplRatio, FirstDivergenceMean]
            }
            ClaimKind::Consistency => &[MaxAbsLogitDelta, KlMean, KlMedian, KlP99, KlMax, Top1Agreement],
            ClaimKind::Determinism => &[BitMismatches],
            ClaimKind::QuantOrder => &[KlOrderViolations, Top1MismatchExcess],
            ClaimKind::ReferenceAgreement => &[BlockMismatches],
            ClaimKind::RoundTrip => &[TensorMismatches],
            ClaimKind::Structure => &[ConfigMismatches, DtypeMismatches, BadTensors, LayoutMismatches, ReaderDisagreements],
            ClaimKind::TrainSanity => &[LossGapNats, FinalLoss, RelGradError, BitMismatches, UnigramMarginNats, ValLossDelta],
        }
    }
}

/// The models and variants a claim is about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subjects {
    /// Model names from `configs/models.toml`.
    pub models: Vec<String>,
    /// Variant names (`base`, `f16`, `q8_0`, `flip-exp`, …); default `["base"]`.
    #[serde(default = "base_only")]
    pub variants: Vec<String>,
}

fn base_only() -> Vec<String> {
    vec!["base".to_string()]
}

/// The storage types a `stored_as` list may name (the matrices' dominant GGML type).
pub const STORAGE_TYPES: [&str; 13] = ["f32", "f16", "bf16", "q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "q3_k", "q2_k"];

/// `stored_as = ["oracle"]`: the oracle's own storage type.
pub const STORED_AS_ORACLE: &str = "oracle";

/// What a `consistency` claim (two runtime paths) or a `round_trip` claim (two files)
/// compares.
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
    /// The kind this comparison belongs to.
    pub fn kind(self) -> ClaimKind {
        match self {
            Compare::KvCache | Compare::Batch | Compare::QuantMatmul | Compare::Cuda => ClaimKind::Consistency,
            Compare::GgufReimport | Compare::SafetensorsGguf => ClaimKind::RoundTrip,
        }
    }

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
    /// The snake_case name used in files.
    pub fn name(self) -> &'static str {
        match self {
            TrainCheck::InitLoss => "init_loss",
            TrainCheck::Overfit => "overfit",
            TrainCheck::GradCheck => "grad_check",
            TrainCheck::Reload => "reload",
            TrainCheck::Sampling => "sampling",
            TrainCheck::SeedHash => "seed_hash",
            TrainCheck::BeatsUnigram => "beats_unigram",
            TrainCheck::ValLossRepro => "val_loss_repro",
            TrainCheck::ReproducesCommitted => "reproduces_committed",
        }
    }

    /// The one statistic the check measures.
    pub fn statistic(self) -> Statistic {
        match self {
            TrainCheck::InitLoss => Statistic::LossGapNats,
            TrainCheck::Overfit => Statistic::FinalLoss,
            TrainCheck::GradCheck => Statistic::RelGradError,
            TrainCheck::Reload | TrainCheck::Sampling | TrainCheck::SeedHash | TrainCheck::ReproducesCommitted => Statistic::BitMismatches,
            TrainCheck::BeatsUnigram => Statistic::UnigramMarginNats,
            TrainCheck::ValLossRepro => Statistic::ValLossDelta,
        }
    }
}

/// The falsification criterion: `statistic op value`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// What is measured.
    pub statistic: Statistic,
    /// How it is compared.
    pub op: Op,
    /// The registered threshold.
    pub value: f64,
}


/// Comparison operator of a bound.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Op {
    /// observed < value
    #[serde(rename = "<")]
    Lt,
    /// observed <= value
    #[serde(rename = "<=")]
    Le,
    /// observed > value
    #[serde(rename = ">")]
    Gt,
    /// observed >= value
    #[serde(rename = ">=")]
    Ge,
    /// observed == value
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    /// The operator as written in claim files.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    /// Whether `observed op value` holds. NaN never holds: a broken measurement is not a pass.
    pub fn holds(self, observed: f64, value: f64) -> bool {
        if observed.is_nan() || value.is_nan() {
            return false;
        }
        match self {
            Op::Lt => observed < value,
            Op::Le => observed <= value,
            Op::Gt => observed > value,
            Op::Ge => observed >= value,
            Op::Eq => observed == value,
        }
    }
}

impl Bound {
    /// Whether `observed` satisfies the bound.
    pub fn holds(&self, observed: f64) -> bool {
        self.op.holds(observed, self.value)
    }

    /// `kl_mean <= 0.01`, for messages and tickets.
    pub fn render(&self) -> String {
        format!("{} {} {}", self.statistic.name(), self.op.symbol(), self.value)
    }
}

/// When a claim's bound was written, relative to the numbers it judges.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Written before any run of the claim: a prediction that can be falsified.
    Prior,
    /// Written after seeing numbers the claim judges (a correction after a falsified
    /// prediction, a bound restricted to the variants that held, a value measured on a
    /// run): a regression guard, not evidence that the prediction was right.
    Observed,
}

impl Basis {
    /// The name used in claim files, reports and tickets.
    pub fn name(self) -> &'static str {
        match self {
            Basis::Prior => "prior",
            Basis::Observed => "observed",
        }
    }

    /// One line for people: what the basis means for this bound.
    pub fn describe(self) -> &'static str {
        match self {
            Basis::Prior => "prior (bound written before any run of the claim)",
            Basis::Observed => "observed (bound written after seeing numbers it judges: a regression guard, not a prediction)",
        }
    }
}

/// Whether a claim is registered to hold or registered to fail.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The bound is predicted to hold.
    #[default]
    Hold,
    /// A registered negative claim: the bound is predicted to be violated.
    Fail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_never_holds() {
        for op in [Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq] {
            assert!(!op.holds(f64::NAN, 1.0));
        }
    }

    #[test]
    fn every_kind_has_statistics() {
        for k in ClaimKind::ALL {
            assert!(!k.statistics().is_empty(), "{}", k.name());
        }
    }
}
