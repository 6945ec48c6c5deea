//! The claim file schema: what a pre-registered claim says as written, parsed strictly
//! (the first of two stages: [`super::ClaimSpec`] is the claim resolved and typed).
//!
//! Every enum here is closed: an unknown kind, statistic or operator is a parse error
//! that names the file and line, never a claim that silently matches nothing.

use serde::{Deserialize, Serialize};

use super::kind::{ClaimKind, Compare, TrainCheck};
use super::registration::registered_record;
use crate::stats::Statistic;

/// A `claims/*.toml` file: a list of `[[claim]]` tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimFile {
    /// The claims, in file order.
    pub claim: Vec<Claim>,
}

registered_record! {
/// One pre-registered claim; its registration fields (`rationale`, `registered`, `basis`,
/// `expect`, `retired`) follow `bound`, declared by `registered_record!` (claim/registration.rs).
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
    /// `corruption_sweep` only (required): each variant (written without a seed) is
    /// measured at seeds `0..seeds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<u64>,
    /// The falsification criterion.
    pub bound: Bound,
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
        format!(
            "{} {} {}",
            self.statistic.name(),
            self.op.symbol(),
            self.value
        )
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
}
