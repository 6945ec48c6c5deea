//! [`Statistic`]: what a claim's bound measures, with its unit, the direction that is
//! better, and the measurements that produce it.
//!
//! A closed set, defined in one place: [`Statistic::info`] holds one row per statistic
//! (its name, unit and better direction, and the roles it is measured in).
//! A claim kind bounds the statistics of the measurement it makes (a kind's
//! [`Measurement`]); for kinds whose judge computes several statistics, the row also
//! names the statistic's typed role there ([`Role`]), which the loader puts in the typed
//! claim so the judge matches on it exhaustively.
//!
//! Adding a statistic: a variant, its line in `describe` and its roles in `roles` here,
//! and the code that computes it (a [`Dist`] aggregate in `summary.rs`, or an arm in the
//! judge of the kind that measures it).

use serde::{Deserialize, Serialize};

/// A measured statistic.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Positions/length where the harness's prompt tokens differ from the oracle's.
    TokenMismatches,
    /// 1 when the greedy continuation equals the oracle's exactly, else 0.
    GreedyMatch,
    /// Like `greedy_match`, but a first divergence at a near-tie (both sides' margins
    /// within the claim's `tie_margin`) counts as a match.
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
    /// Perplexity of the variant over the evaluation slice divided by its parent's
    /// (llama.cpp's "Mean PPL(Q)/PPL(base)").
    PplRatio,
    /// Mean over prompts of the first position where free-running greedy decoding of the
    /// variant leaves its parent's (the generation length when it never does).
    FirstDivergenceMean,
    /// Pairs of a variant chain (more bits first) where the variant with more bits has
    /// the larger mean KL divergence from the parent.
    KlOrderViolations,
    /// Largest (teacher-forced top-1 mismatches of a variant with more bits) minus (those
    /// of a variant with fewer bits) over the pairs of a chain.
    Top1MismatchExcess,
    /// Quantized blocks whose bytes differ from the reference quantizer's.
    BlockMismatches,
    /// Tensors whose bytes (or dequantized values) differ after a round trip.
    TensorMismatches,
    /// Architecture metadata fields of a file that disagree with the model's config; for
    /// oracle kinds, keys of the oracle's `model.config` the checkpoint's config differs in.
    ConfigMismatches,
    /// Tensors missing, extra, or stored in a type the file's declared quantization
    /// level does not allow.
    DtypeMismatches,
    /// Tensors that are entirely zero or hold a NaN or an infinity.
    BadTensors,
    /// Differences in tensor names, shapes or order between a variant's file and its parent's.
    LayoutMismatches,
    /// Metadata keys and tensors on which two independent GGUF readers disagree.
    ReaderDisagreements,
    /// |loss at initialisation − ln(vocab)|, nats.
    LossGapNats,
    /// Loss at the end of a training procedure, nats.
    FinalLoss,
    /// Largest per-tensor ‖backprop − finite differences‖ / ‖finite differences‖.
    RelGradError,
    /// Unigram entropy of the training text minus the held-out loss, nats.
    UnigramMarginNats,
    /// |final validation loss − registered value|, nats.
    ValLossDelta,
    /// |ppl − oracle ppl| / oracle ppl over the oracle's perplexity text, scored as
    /// llama.cpp scores it (`configs/eval.toml`).
    PplRelDiff,
    /// Pairs of a severity sweep (lower rate, higher rate) where every seed of the higher
    /// rate degrades the model (mean KL from the parent) less than every seed of the lower:
    /// an inversion beyond the seed spread.
    RateOrderViolations,
    /// Share of a seeded sample of single flips that raise perplexity over the evaluation
    /// windows by more than 10% (the fault-injection literature's "vulnerable").
    VulnerableShare,
    /// |observed − registered| of a registered metric number (SF, SC, theater, gap).
    MetricDeviation,
    /// Lower end of the 95% bootstrap interval of a registered metric (or of a difference).
    IntervalLow,
    /// Upper end of the 95% bootstrap interval of a registered metric (or of a difference).
    IntervalHigh,
}

/// What a statistic counts or measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (tokens, tensors, bits, pairs).
    Count,
    /// A share in [0, 1].
    Share,
    /// 0 or 1.
    Flag,
    /// Natural-log units of information or loss.
    Nats,
    /// Logit units.
    Logits,
    /// A probability difference.
    Probability,
    /// A ratio of two like quantities (dimensionless).
    Ratio,
    /// A token position.
    Position,
}

/// Which direction of a statistic means "closer to the reference" or "better behaved".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller values are better (divergences, mismatch counts).
    Lower,
    /// Larger values are better (agreement rates, margins).
    Higher,
}

/// The measurement a claim kind makes; each statistic lists those that produce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurement {
    /// The harness's prompt tokens vs the oracle's.
    Tokenization,
    /// Free-running greedy tokens vs the oracle's.
    Greedy,
    /// Teacher-forced distributions (and perplexity, config) vs the oracle's.
    Oracle,
    /// A variant's teacher-forced distributions (and perplexity, free running) vs its parent's.
    Parent,
    /// Two runtime paths of one subject.
    Paths,
    /// Two builds of one subject.
    Builds,
    /// A chain of variants, more bits first.
    Chain,
    /// Quantized bytes vs a reference quantizer's.
    ReferenceQuantizer,
    /// Tensors after export and reimport.
    RoundTrip,
    /// A written file's metadata, types and layout.
    File,
    /// The harness's own training.
    Training,
    /// A severity sweep of seeded bit flips against the clean parent.
    Sweep,
    /// A registered metric number on its GenerationRecords.
    Records,
}

/// An aggregate of a teacher-forced comparison of two distributions over positions
/// (`SetStats`): what oracle, drift and path-consistency comparisons share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dist {
    /// Mean KL divergence.
    KlMean,
    /// Median KL divergence.
    KlMedian,
    /// 99th-percentile KL divergence.
    KlP99,
    /// Largest KL divergence.
    KlMax,
    /// Share of positions with the same top-1.
    Top1Agreement,
    /// Mean top-k overlap.
    TopkOverlap,
    /// Largest |Δ ln p| over the reference's top-k.
    MaxAbsLogprobDelta,
    /// RMS of Δp of the reference's top-1.
    RmsDp,
}

impl Dist {
    /// Every aggregate, in the order reports list them.
    pub const ALL: [Dist; 8] = [
        Dist::KlMean,
        Dist::KlMedian,
        Dist::KlP99,
        Dist::KlMax,
        Dist::Top1Agreement,
        Dist::TopkOverlap,
        Dist::MaxAbsLogprobDelta,
        Dist::RmsDp,
    ];

    /// The statistic this aggregate is.
    pub fn statistic(self) -> Statistic {
        match self {
            Dist::KlMean => Statistic::KlMean,
            Dist::KlMedian => Statistic::KlMedian,
            Dist::KlP99 => Statistic::KlP99,
            Dist::KlMax => Statistic::KlMax,
            Dist::Top1Agreement => Statistic::Top1Agreement,
            Dist::TopkOverlap => Statistic::TopkOverlap,
            Dist::MaxAbsLogprobDelta => Statistic::MaxAbsLogprobDelta,
            Dist::RmsDp => Statistic::RmsDp,
        }
    }
}

/// What an oracle comparison measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OracleStat {
    /// An aggregate of the teacher-forced positions.
    Dist(Dist),
    /// Perplexity over the oracle's text, relative to the oracle's.
    PplRelDiff,
    /// Keys of the oracle's `model.config` the checkpoint differs in.
    ConfigMismatches,
}

/// What a comparison with the parent measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentStat {
    /// An aggregate of the teacher-forced positions.
    Dist(Dist),
    /// Perplexity ratio over the evaluation slice.
    PplRatio,
    /// Mean first position where free-running greedy decoding leaves the parent's.
    FirstDivergenceMean,
}

/// What a comparison of two runtime paths measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStat {
    /// An aggregate of the positions, the first path as the reference.
    Dist(Dist),
    /// Largest |Δ logit|.
    MaxAbsLogitDelta,
}

/// What a chain of variants measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStat {
    /// Pairs out of order by mean KL.
    KlOrderViolations,
    /// Largest excess of top-1 mismatches of the variant with more bits.
    Top1MismatchExcess,
}

/// What a severity sweep of seeded bit flips measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepStat {
    /// Rate pairs inverted beyond the seed spread.
    RateOrderViolations,
    /// Share of single flips that raise perplexity by more than 10%.
    VulnerableShare,
}

/// What a file's structure check measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStat {
    /// Metadata disagreeing with the config.
    ConfigMismatches,
    /// Tensors missing, extra or in a type the declared level does not allow.
    DtypeMismatches,
    /// Tensors all zero or holding a NaN or infinity.
    BadTensors,
    /// Names, shapes or order differing from the parent's file.
    LayoutMismatches,
    /// Disagreements between two GGUF readers.
    ReaderDisagreements,
}

/// A statistic's place in one measurement: for measurements whose judge computes several
/// statistics, the typed statistic it dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Measured by [`Measurement::Tokenization`].
    Tokenization,
    /// Measured by [`Measurement::Greedy`].
    Greedy,
    /// Measured by [`Measurement::Oracle`], as this.
    Oracle(OracleStat),
    /// Measured by [`Measurement::Parent`], as this.
    Parent(ParentStat),
    /// Measured by [`Measurement::Paths`], as this.
    Paths(PathStat),
    /// Measured by [`Measurement::Builds`].
    Builds,
    /// Measured by [`Measurement::Chain`], as this.
    Chain(ChainStat),
    /// Measured by [`Measurement::ReferenceQuantizer`].
    ReferenceQuantizer,
    /// Measured by [`Measurement::RoundTrip`].
    RoundTrip,
    /// Measured by [`Measurement::File`], as this.
    File(FileStat),
    /// Measured by [`Measurement::Training`].
    Training,
    /// Measured by [`Measurement::Sweep`], as this.
    Sweep(SweepStat),
    /// Measured by [`Measurement::Records`].
    Records,
}

impl Role {
    /// The measurement this role is in.
    pub fn measurement(self) -> Measurement {
        match self {
            Role::Tokenization => Measurement::Tokenization,
            Role::Greedy => Measurement::Greedy,
            Role::Oracle(_) => Measurement::Oracle,
            Role::Parent(_) => Measurement::Parent,
            Role::Paths(_) => Measurement::Paths,
            Role::Builds => Measurement::Builds,
            Role::Chain(_) => Measurement::Chain,
            Role::ReferenceQuantizer => Measurement::ReferenceQuantizer,
            Role::RoundTrip => Measurement::RoundTrip,
            Role::File(_) => Measurement::File,
            Role::Training => Measurement::Training,
            Role::Sweep(_) => Measurement::Sweep,
            Role::Records => Measurement::Records,
        }
    }
}

/// One statistic's row: everything known about it.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// The snake_case name used in files and reports.
    pub name: &'static str,
    /// What it counts or measures.
    pub unit: Unit,
    /// Which direction is better.
    pub better: Better,
    /// Where it is measured, and as what.
    pub roles: &'static [Role],
}

use Better::{Higher, Lower};
use Unit::{Count, Flag, Logits, Nats, Position, Probability, Ratio, Share};

/// An aggregate measured against the oracle, the parent and another runtime path.
macro_rules! everywhere {
    ($d:expr) => {
        &[
            Role::Oracle(OracleStat::Dist($d)),
            Role::Parent(ParentStat::Dist($d)),
            Role::Paths(PathStat::Dist($d)),
        ]
    };
}

impl Statistic {
    /// Every statistic, in declaration order.
    pub const ALL: [Statistic; 35] = [
        Statistic::TokenMismatches,
        Statistic::GreedyMatch,
        Statistic::GreedyMatchOrTie,
        Statistic::Top1Agreement,
        Statistic::TopkOverlap,
        Statistic::KlMean,
        Statistic::KlMedian,
        Statistic::KlP99,
        Statistic::KlMax,
        Statistic::MaxAbsLogprobDelta,
        Statistic::RmsDp,
        Statistic::MaxAbsLogitDelta,
        Statistic::BitMismatches,
        Statistic::PplRatio,
        Statistic::FirstDivergenceMean,
        Statistic::KlOrderViolations,
        Statistic::Top1MismatchExcess,
        Statistic::BlockMismatches,
        Statistic::TensorMismatches,
        Statistic::ConfigMismatches,
        Statistic::DtypeMismatches,
        Statistic::BadTensors,
        Statistic::LayoutMismatches,
        Statistic::ReaderDisagreements,
        Statistic::LossGapNats,
        Statistic::FinalLoss,
        Statistic::RelGradError,
        Statistic::UnigramMarginNats,
        Statistic::ValLossDelta,
        Statistic::PplRelDiff,
        Statistic::RateOrderViolations,
        Statistic::VulnerableShare,
        Statistic::MetricDeviation,
        Statistic::IntervalLow,
        Statistic::IntervalHigh,
    ];

    /// The statistic's row: what it is (`describe`) and where it is measured (`roles`).
    pub fn info(self) -> Info {
        let (name, unit, better) = self.describe();
        Info {
            name,
            unit,
            better,
            roles: self.roles(),
        }
    }

    /// Its snake_case name, unit and better direction.
    fn describe(self) -> (&'static str, Unit, Better) {
        use Statistic as S;
        match self {
            S::TokenMismatches => ("token_mismatches", Count, Lower),
            S::GreedyMatch => ("greedy_match", Flag, Higher),
            S::GreedyMatchOrTie => ("greedy_match_or_tie", Flag, Higher),
            S::Top1Agreement => ("top1_agreement", Share, Higher),
            S::TopkOverlap => ("topk_overlap", Share, Higher),
            S::KlMean => ("kl_mean", Nats, Lower),
            S::KlMedian => ("kl_median", Nats, Lower),
            S::KlP99 => ("kl_p99", Nats, Lower),
            S::KlMax => ("kl_max", Nats, Lower),
            S::MaxAbsLogprobDelta => ("max_abs_logprob_delta", Nats, Lower),
            S::RmsDp => ("rms_dp", Probability, Lower),
            S::MaxAbsLogitDelta => ("max_abs_logit_delta", Logits, Lower),
            S::BitMismatches => ("bit_mismatches", Count, Lower),
            S::PplRatio => ("ppl_ratio", Ratio, Lower),
            S::FirstDivergenceMean => ("first_divergence_mean", Position, Higher),
            S::KlOrderViolations => ("kl_order_violations", Count, Lower),
            S::Top1MismatchExcess => ("top1_mismatch_excess", Count, Lower),
            S::BlockMismatches => ("block_mismatches", Count, Lower),
            S::TensorMismatches => ("tensor_mismatches", Count, Lower),
            S::ConfigMismatches => ("config_mismatches", Count, Lower),
            S::DtypeMismatches => ("dtype_mismatches", Count, Lower),
            S::BadTensors => ("bad_tensors", Count, Lower),
            S::LayoutMismatches => ("layout_mismatches", Count, Lower),
            S::ReaderDisagreements => ("reader_disagreements", Count, Lower),
            S::LossGapNats => ("loss_gap_nats", Nats, Lower),
            S::FinalLoss => ("final_loss", Nats, Lower),
            S::RelGradError => ("rel_grad_error", Ratio, Lower),
            S::UnigramMarginNats => ("unigram_margin_nats", Nats, Higher),
            S::ValLossDelta => ("val_loss_delta", Nats, Lower),
            S::PplRelDiff => ("ppl_rel_diff", Ratio, Lower),
            S::RateOrderViolations => ("rate_order_violations", Count, Lower),
            S::VulnerableShare => ("vulnerable_share", Share, Lower),
            S::MetricDeviation => ("metric_deviation", Share, Lower),
            // Which direction is better depends on the registered operator; reports read
            // the bound, never this.
            S::IntervalLow => ("interval_low", Share, Higher),
            S::IntervalHigh => ("interval_high", Share, Lower),
        }
    }

    /// Where it is measured, and as what: grouped by measurement.
    fn roles(self) -> &'static [Role] {
        use Statistic as S;
        match self {
            S::TokenMismatches => &[Role::Tokenization],
            S::GreedyMatch | S::GreedyMatchOrTie => &[Role::Greedy],
            S::Top1Agreement => everywhere!(Dist::Top1Agreement),
            S::KlMean => everywhere!(Dist::KlMean),
            S::KlMedian => everywhere!(Dist::KlMedian),
            S::KlP99 => everywhere!(Dist::KlP99),
            S::KlMax => everywhere!(Dist::KlMax),
            S::TopkOverlap => &[Role::Oracle(OracleStat::Dist(Dist::TopkOverlap))],
            S::MaxAbsLogprobDelta => &[Role::Oracle(OracleStat::Dist(Dist::MaxAbsLogprobDelta))],
            S::PplRelDiff => &[Role::Oracle(OracleStat::PplRelDiff)],
            S::RmsDp => &[Role::Parent(ParentStat::Dist(Dist::RmsDp))],
            S::PplRatio => &[Role::Parent(ParentStat::PplRatio)],
            S::FirstDivergenceMean => &[Role::Parent(ParentStat::FirstDivergenceMean)],
            S::MaxAbsLogitDelta => &[Role::Paths(PathStat::MaxAbsLogitDelta)],
            S::BitMismatches => &[Role::Builds, Role::Training],
            S::KlOrderViolations => &[Role::Chain(ChainStat::KlOrderViolations)],
            S::Top1MismatchExcess => &[Role::Chain(ChainStat::Top1MismatchExcess)],
            S::BlockMismatches => &[Role::ReferenceQuantizer],
            S::TensorMismatches => &[Role::RoundTrip],
            S::ConfigMismatches => &[
                Role::Oracle(OracleStat::ConfigMismatches),
                Role::File(FileStat::ConfigMismatches),
            ],
            S::DtypeMismatches => &[Role::File(FileStat::DtypeMismatches)],
            S::BadTensors => &[Role::File(FileStat::BadTensors)],
            S::LayoutMismatches => &[Role::File(FileStat::LayoutMismatches)],
            S::ReaderDisagreements => &[Role::File(FileStat::ReaderDisagreements)],
            S::LossGapNats
            | S::FinalLoss
            | S::RelGradError
            | S::UnigramMarginNats
            | S::ValLossDelta => &[Role::Training],
            S::RateOrderViolations => &[Role::Sweep(SweepStat::RateOrderViolations)],
            S::VulnerableShare => &[Role::Sweep(SweepStat::VulnerableShare)],
            S::MetricDeviation | S::IntervalLow | S::IntervalHigh => &[Role::Records],
        }
    }

    /// The snake_case name used in files and reports.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// What it counts or measures.
    pub fn unit(self) -> Unit {
        self.info().unit
    }

    /// Which direction is better.
    pub fn better(self) -> Better {
        self.info().better
    }

    /// Its role in `m`, or `None` when `m` does not measure it.
    pub fn role_in(self, m: Measurement) -> Option<Role> {
        self.info()
            .roles
            .iter()
            .copied()
            .find(|r| r.measurement() == m)
    }

    /// The statistics `m` measures, in declaration order.
    pub fn measured_by(m: Measurement) -> Vec<Statistic> {
        Statistic::ALL
            .into_iter()
            .filter(|s| s.role_in(m).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_serde_reads() {
        for s in Statistic::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
            assert!(
                !s.info().roles.is_empty(),
                "{} is measured nowhere",
                s.name()
            );
        }
    }

    #[test]
    fn a_dist_role_names_its_own_statistic() {
        for s in Statistic::ALL {
            for r in s.info().roles {
                let d = match *r {
                    Role::Oracle(OracleStat::Dist(d))
                    | Role::Parent(ParentStat::Dist(d))
                    | Role::Paths(PathStat::Dist(d)) => d,
                    Role::Oracle(OracleStat::PplRelDiff | OracleStat::ConfigMismatches)
                    | Role::Parent(ParentStat::PplRatio | ParentStat::FirstDivergenceMean)
                    | Role::Paths(PathStat::MaxAbsLogitDelta)
                    | Role::Tokenization
                    | Role::Greedy
                    | Role::Builds
                    | Role::Chain(_)
                    | Role::ReferenceQuantizer
                    | Role::RoundTrip
                    | Role::File(_)
                    | Role::Training
                    | Role::Sweep(_)
                    | Role::Records => continue,
                };
                assert_eq!(d.statistic(), s);
            }
        }
    }
}
