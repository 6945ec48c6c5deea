//! Outcomes of a case and the evidence behind them.
//!
//! `Pass` and `Fail` always carry [`Evidence`]; `Skip` always carries a [`SkipReason`];
//! there is no catch-all arm anywhere these are matched.

use crate::claim::{Expect, Op};
use crate::stats::Divergence;
use crate::stats::Statistic;
use serde::{Deserialize, Serialize};

/// What happened to one case.
///
/// Serialized through [`OutcomeRecord`] (a flat struct), not a serde-tagged enum: gguf-rs
/// turns on serde_json's `arbitrary_precision`, under which numbers inside internally
/// tagged enums no longer deserialize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "OutcomeRecord", try_from = "OutcomeRecord")]
pub enum Outcome {
    /// The claim behaved as registered.
    Pass(Evidence),
    /// The claim was falsified.
    Fail(Evidence),
    /// Not judged, for a stated reason. Never counts as a pass.
    Skip(SkipReason),
    /// The case could not be run (bad input, a loader failure).
    Error {
        /// One line naming what failed.
        message: String,
    },
}

/// The JSON shape of an [`Outcome`]: a label plus the one payload that label carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRecord {
    /// `pass`, `fail`, `skip` or `error`.
    pub outcome: String,
    /// For pass and fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// For skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipReason>,
    /// For error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<Outcome> for OutcomeRecord {
    fn from(o: Outcome) -> Self {
        let outcome = o.label().to_string();
        let (evidence, skip, message) = match o {
            Outcome::Pass(e) | Outcome::Fail(e) => (Some(e), None, None),
            Outcome::Skip(r) => (None, Some(r), None),
            Outcome::Error { message } => (None, None, Some(message)),
        };
        OutcomeRecord {
            outcome,
            evidence,
            skip,
            message,
        }
    }
}

impl TryFrom<OutcomeRecord> for Outcome {
    type Error = String;
    fn try_from(r: OutcomeRecord) -> Result<Self, String> {
        match (r.outcome.as_str(), r.evidence, r.skip, r.message) {
            ("pass", Some(e), None, None) => Ok(Outcome::Pass(e)),
            ("fail", Some(e), None, None) => Ok(Outcome::Fail(e)),
            ("skip", None, Some(s), None) => Ok(Outcome::Skip(s)),
            ("error", None, None, Some(message)) => Ok(Outcome::Error { message }),
            (label, ..) => Err(format!("outcome '{label}' with the wrong payload (pass/fail need evidence, skip a reason, error a message)")),
        }
    }
}

impl Outcome {
    /// Judges an observation against the claim's bound and expectation.
    pub fn judge(evidence: Evidence) -> Outcome {
        // A NaN would fail an ordinary claim but "confirm" a registered negative one: neither
        // is a measurement, so it is an error.
        if evidence.observed.is_nan() {
            return Outcome::Error {
                message: format!(
                    "{} is NaN: nothing was measured ({})",
                    evidence.statistic.name(),
                    evidence.numerical_path
                ),
            };
        }
        // "0 mismatches among 0 tokens" is no evidence of anything, for either expectation.
        if evidence.n == 0 {
            return Outcome::Error {
                message: format!(
                    "{} over zero samples: nothing was measured ({})",
                    evidence.statistic.name(),
                    evidence.numerical_path
                ),
            };
        }
        let holds = evidence.bound_holds();
        let as_registered = match evidence.expect {
            Expect::Hold => holds,
            Expect::Fail => !holds,
        };
        if as_registered {
            Outcome::Pass(evidence)
        } else {
            Outcome::Fail(evidence)
        }
    }

    /// `pass`, `fail`, `skip` or `error`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
            Outcome::Error { .. } => "error",
        }
    }

    /// The evidence, for Pass and Fail.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Outcome::Pass(e) | Outcome::Fail(e) => Some(e),
            Outcome::Skip(_) | Outcome::Error { .. } => None,
        }
    }
}

/// Why a case was not judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The model file is not on this machine.
    ModelMissing {
        /// Where it was looked for.
        path: String,
        /// The command that fetches it.
        fetch: String,
    },
    /// An exact-match claim refuses a subject that is not the oracle's file.
    NotTheOracleFile {
        /// The subject's SHA-256.
        subject_sha256: String,
        /// The oracle's `model.sha256`.
        oracle_sha256: String,
    },
    /// A claim this one depends on does not hold, so judging it would prove nothing.
    PreconditionFailed {
        /// What did not hold.
        what: String,
    },
    /// Nothing registered shows that what this claim depends on holds (no parity claim
    /// for a drift parent, no drift claim for a chain's head): judging it would prove
    /// nothing, and passing it would be a pass on no evidence.
    PreconditionNotEstablished {
        /// What is not established, and why.
        what: String,
    },
    /// The case needs a device this build or machine lacks.
    NoDevice {
        /// Which device.
        device: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::ModelMissing { path, fetch } => {
                write!(f, "model file not found at {path}: run {fetch}")
            }
            SkipReason::NotTheOracleFile {
                subject_sha256,
                oracle_sha256,
            } => write!(
                f,
                "subject sha256 {} is not the oracle's {}: a variant, judged by drift claims only",
                short(subject_sha256),
                short(oracle_sha256)
            ),
            SkipReason::PreconditionFailed { what } => write!(f, "precondition failed: {what}"),
            SkipReason::PreconditionNotEstablished { what } => {
                write!(f, "precondition not established: {what}")
            }
            SkipReason::NoDevice { device } => write!(f, "no {device}"),
        }
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// The numbers behind a verdict, rendered alike in reports, tickets and test messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was measured.
    pub statistic: Statistic,
    /// The measured value.
    #[serde(with = "crate::jsonnum")]
    pub observed: f64,
    /// The bound's operator.
    pub op: Op,
    /// The bound's value.
    pub bound: f64,
    /// Hold or registered-to-fail.
    pub expect: Expect,
    /// Sample size (positions, prompts, elements).
    pub n: usize,
    /// 95% interval of the observed value, when one is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<(f64, f64)>,
    /// Other statistics measured alongside, name → value.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::jsonnum::pairs"
    )]
    pub also: Vec<(String, f64)>,
    /// Text and token comparison, for parity claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// How the numbers were computed, in words (runtime, dtype, matmul kind, threads, what
    /// was compared with what).
    #[serde(rename = "numerical_path", alias = "path")]
    pub numerical_path: String,
    /// Every flipped bit, for a bit-flip variant (tensor, block or element, bit, values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flips: Option<crate::transform::flip::FlipList>,
}

impl Evidence {
    /// Whether `observed op bound` holds (NaN never does).
    pub fn bound_holds(&self) -> bool {
        self.op.holds(self.observed, self.bound)
    }

    /// `kl_mean = 0.0123 (bound <= 0.01, n = 320)`.
    pub fn summary(&self) -> String {
        let interval = self
            .interval
            .map(|(lo, hi)| format!(", 95% CI [{}, {}]", fmt_num(lo), fmt_num(hi)))
            .unwrap_or_default();
        format!(
            "{} = {} (bound {} {}, n = {}{interval})",
            self.statistic.name(),
            fmt_num(self.observed),
            self.op.symbol(),
            fmt_num(self.bound),
            self.n
        )
    }
}

/// Reference vs subject, for the diff in a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The prompt text both sides were given.
    pub prompt: String,
    /// The reference's (the oracle's) side in words: its continuation, or for a
    /// tokenization case its prompt tokens, one piece a line.
    pub reference_text: String,
    /// The reference's token ids.
    pub reference_tokens: Vec<u32>,
    /// The subject's side, in the same form as the reference's.
    pub subject_text: String,
    /// The subject's token ids (the ticket's diff lines them up with the reference's).
    pub subject_tokens: Vec<u32>,
    /// The text of each reference token (same order; empty in reports that predate it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_pieces: Vec<String>,
    /// The text of each subject token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_pieces: Vec<String>,
    /// First divergence and its margin.
    pub divergence: Divergence,
}

/// Numbers printed with enough digits to compare against bounds, without float noise.
pub(crate) fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.abs() >= 1e-3 && x.abs() < 1e6 {
        format!("{:.6}", x).trim_end_matches('0').to_string()
    } else {
        format!("{x:.4e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(observed: f64, expect: Expect) -> Evidence {
        Evidence {
            statistic: Statistic::KlMean,
            observed,
            op: Op::Le,
            bound: 0.01,
            expect,
            n: 10,
            interval: None,
            also: vec![],
            comparison: None,
            numerical_path: "test".into(),
            flips: None,
        }
    }

    #[test]
    fn judging_respects_expectation() {
        assert_eq!(Outcome::judge(ev(0.001, Expect::Hold)).label(), "pass");
        assert_eq!(Outcome::judge(ev(0.1, Expect::Hold)).label(), "fail");
        assert_eq!(Outcome::judge(ev(0.1, Expect::Fail)).label(), "pass");
        assert_eq!(Outcome::judge(ev(0.001, Expect::Fail)).label(), "fail");
        assert_eq!(Outcome::judge(ev(f64::NAN, Expect::Hold)).label(), "error");
        assert_eq!(Outcome::judge(ev(f64::NAN, Expect::Fail)).label(), "error");
    }

    #[test]
    fn a_statistic_over_zero_samples_is_an_error() {
        // Before: 0 mismatches over 0 samples passed an `== 0` bound.
        for expect in [Expect::Hold, Expect::Fail] {
            let mut e = ev(0.0, expect);
            e.n = 0;
            let o = Outcome::judge(e);
            assert!(
                matches!(&o, Outcome::Error { message } if message.contains("zero samples")),
                "{o:?}"
            );
        }
    }

    #[test]
    fn outcomes_round_trip_through_json() {
        for o in [
            Outcome::judge(ev(0.001, Expect::Hold)),
            Outcome::Skip(SkipReason::NoDevice {
                device: "cuda".into(),
            }),
            Outcome::Error {
                message: "x".into(),
            },
        ] {
            let text = serde_json::to_string(&o).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), o, "{text}");
        }
        assert!(serde_json::from_str::<Outcome>(r#"{"outcome":"pass"}"#).is_err());
    }

    #[test]
    fn numbers_render_stably() {
        assert_eq!(fmt_num(0.0123), "0.0123");
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(1.5e-7), "1.5000e-7");
    }
}
