//! Deterministic pretraining of ladder rungs ([`train`]) and supervised fine-tuning on
//! arithmetic traces ([`sft`]), the frozen byte-level BPE
//! tokenizer they share ([`train_bpe`]), the recipes ([`Recipe`]) and the checks that the
//! training itself is sane.

pub mod bench;
mod bpe;
mod cache;
mod checkpoint;
mod data;
mod error;
mod kernels;
mod lm_head;
mod loss;
mod metrics;
mod optim;
mod recipe;
mod sanity;
mod sft;
mod sft_config;
mod sft_data;
mod sft_vocab;
mod spec;
mod trainer;

#[cfg(test)]
mod runtime_tests;
#[cfg(test)]
mod sft_tests;
#[cfg(test)]
mod tests;

pub use crate::runtime::{ParsePrecisionError, Precision, Runtime};
pub use bpe::{train_bpe, Bpe};
pub use cache::{cache_dir, corpus_for, data_for, ensure_trained, ensure_trained_on, Trained};
pub use checkpoint::{
    checkpoint_name, read_checkpoint, write_checkpoint, Checkpoint, TrainerState,
};
pub use data::{
    sample_batch, split_point, unigram_cross_entropy, unigram_entropy, windows, Corpus, Data,
};
pub use error::TrainError;
pub use lm_head::linear_cross_entropy;
pub use loss::{cross_entropy, row_losses};
pub use metrics::{loss_svg, metrics_csv, MetricsRow};
pub use optim::{lr_at, AdamW, AdamWParams, Moments, StepInfo};
pub use recipe::{
    load_recipes, parse_recipes, recipes_table, GradCheckSpec, Hyper, OverfitSpec, Recipe, Recipes,
    SamplingSpec, TokenizerSpec, RECIPES_FILE,
};
pub use sanity::{
    grad_check, grad_check_loss, grad_check_on, loss_of, loss_of_on, overfit, overfit_on,
    reload_check, sampling_mismatches, save_and_load, weight_mismatches, GradCheckReport, GradHook,
    OverfitReport, ReloadReport,
};
pub use sft::{sft, SftOptions, SftSpec, SftSummary, SFT_FORMAT};
pub use sft_config::{SftConfig, SftHyper, SftRecipe, SFT_FILE};
pub use sft_data::{mask, masked_eval_loss, masked_loss, Example, Masked};
pub use sft_vocab::{extend_tokenizer, extend_weights, tokenizer_config};
pub use spec::{
    build_tokenizer, frozen_tokenizer, versions, TrainSpec, CHECKPOINT_FORMAT, LADDER_FILE,
};
pub use trainer::{batch_loss, eval_loss, split_rows, train, RunOptions, RunSummary};
