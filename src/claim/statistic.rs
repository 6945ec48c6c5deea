//! [`Statistic`]: what a claim's bound measures. A closed set; each kind says which of
//! them it can bound ([`super::ClaimKind::statistics`]).

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
            Statistic::PplRatio => "ppl_ratio",
            Statistic::FirstDivergenceMean => "first_divergence_mean",
            Statistic::KlOrderViolations => "kl_order_violations",
            Statistic::Top1MismatchExcess => "top1_mismatch_excess",
            Statistic::BlockMismatches => "block_mismatches",
            Statistic::TensorMismatches => "tensor_mismatches",
            Statistic::ConfigMismatches => "config_mismatches",
            Statistic::DtypeMismatches => "dtype_mismatches",
            Statistic::BadTensors => "bad_tensors",
            Statistic::LayoutMismatches => "layout_mismatches",
            Statistic::ReaderDisagreements => "reader_disagreements",
            Statistic::LossGapNats => "loss_gap_nats",
            Statistic::FinalLoss => "final_loss",
            Statistic::RelGradError => "rel_grad_error",
            Statistic::UnigramMarginNats => "unigram_margin_nats",
            Statistic::ValLossDelta => "val_loss_delta",
            Statistic::PplRelDiff => "ppl_rel_diff",
        }
    }
}
