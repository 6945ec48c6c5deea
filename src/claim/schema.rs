//! The claim file schema: what a pre-registered claim says, parsed strictly.
//!
//! Every enum here is closed: an unknown kind, statistic or operator is a parse error
//! that names the file and line, never a claim that silently matches nothing.

use serde::{Deserialize, Serialize};

/// A `claims/*.toml` file: a list of `[[claim]]` tables.
#[derive(Debug, Clone, Deserialize)]
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
    /// The falsification criterion.
    pub bound: Bound,
    /// Why this bound, written before the run that tests it.
    pub rationale: String,
    /// Registration date, `YYYY-MM-DD`.
    pub registered: String,
    /// `hold` for ordinary claims, `fail` for registered negative claims.
    #[serde(default)]
    pub expect: Expect,
    /// Set when a run falsified the claim and it was withdrawn: the date and what was
    /// observed. A retired claim stays in the record (and in CLAIMS.md) but expands to no
    /// case; a corrected prediction is a new claim with its own id and date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
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
}

impl ClaimKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ClaimKind; 8] = [
        ClaimKind::TokenizerParity,
        ClaimKind::GreedyParity,
        ClaimKind::OracleParity,
        ClaimKind::OracleDrift,
        ClaimKind::QuantDrift,
        ClaimKind::CorruptionDetect,
        ClaimKind::Consistency,
        ClaimKind::Determinism,
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
            | ClaimKind::Determinism => false,
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
            | ClaimKind::Determinism => false,
        }
    }

    /// Whether the kind reads the model's oracle.
    pub fn needs_oracle(self) -> bool {
        match self {
            ClaimKind::TokenizerParity | ClaimKind::GreedyParity | ClaimKind::OracleParity | ClaimKind::OracleDrift => true,
            ClaimKind::QuantDrift | ClaimKind::CorruptionDetect | ClaimKind::Consistency | ClaimKind::Determinism => false,
        }
    }

    /// The statistics that this kind can bound.
    pub fn statistics(self) -> &'static [Statistic] {
        use Statistic::*;
        match self {
            ClaimKind::TokenizerParity => &[TokenMismatches],
            ClaimKind::GreedyParity => &[GreedyMatch, GreedyMatchOrTie],
            ClaimKind::OracleParity | ClaimKind::OracleDrift => {
                &[Top1Agreement, TopkOverlap, KlMean, KlMedian, KlP99, KlMax, MaxAbsLogprobDelta, PplRelDiff]
            }
            ClaimKind::QuantDrift | ClaimKind::CorruptionDetect => {
                &[Top1Agreement, KlMean, KlMedian, KlP99, KlMax, RmsDp]
            }
            ClaimKind::Consistency => &[MaxAbsLogitDelta],
            ClaimKind::Determinism => &[BitMismatches],
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

/// Which two runtime paths a `consistency` claim compares.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Incremental decoding with the KV cache vs full recomputation.
    KvCache,
    /// A batch of several sequences vs each sequence alone.
    Batch,
    /// candle's quantized-activation matmul vs dequantized f32 weights.
    QuantMatmul,
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

/// A measured statistic.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Positions/length where the harness's prompt tokens differ from the oracle's.
    TokenMismatches,
    /// 1 when the greedy continuation equals the oracle's exactly, else 0.
    GreedyMatch,
    /// Like `greedy_match`, but a first divergence at a near-tie counts as a match.
    GreedyMatchOrTie,
    /// Share of positions whose top-1 token agrees.
    Top1Agreement,
    /// Mean share of the reference's top-k found in the subject's top-k.
    TopkOverlap,
    /// Mean KL divergence (reference ‖ subject), nats.
    KlMean,
    /// Median KL divergence, nats.
    KlMedian,
    /// 99th percentile KL divergence, nats.
    KlP99,
    /// Largest KL divergence, nats.
    KlMax,
    /// Largest |Δ log-probability| over the oracle's top-k.
    MaxAbsLogprobDelta,
    /// Root mean square of the change in the reference's top-1 probability.
    RmsDp,
    /// Largest |Δ logit| between two runtime paths.
    MaxAbsLogitDelta,
    /// Count of differing bits/values between two builds.
    BitMismatches,
    /// |ppl − oracle ppl| / oracle ppl over the oracle's perplexity text, scored as
    /// llama.cpp scores it (`configs/eval.toml`).
    PplRelDiff,
}

impl Statistic {
    /// The snake_case name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::TokenMismatches => "token_mismatches",
            Statistic::GreedyMatch => "greedy_match",
            Statistic::GreedyMatchOrTie => "greedy_match_or_tie",
            Statistic::Top1Agreement => "top1_agreement",
            Statistic::TopkOverlap => "topk_overlap",
            Statistic::KlMean => "kl_mean",
            Statistic::KlMedian => "kl_median",
            Statistic::KlP99 => "kl_p99",
            Statistic::KlMax => "kl_max",
            Statistic::MaxAbsLogprobDelta => "max_abs_logprob_delta",
            Statistic::RmsDp => "rms_dp",
            Statistic::MaxAbsLogitDelta => "max_abs_logit_delta",
            Statistic::BitMismatches => "bit_mismatches",
            Statistic::PplRelDiff => "ppl_rel_diff",
        }
    }
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
