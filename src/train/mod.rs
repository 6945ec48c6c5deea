//! Deterministic pretraining of ladder rungs ([`train`]) and supervised fine-tuning on
//! arithmetic traces ([`sft`]), the frozen byte-level BPE
//! tokenizer they share ([`train_bpe`]), the recipes ([`Recipe`]) and the checks that the
//! training itself is sane.

pub mod bench;
pub(crate) mod bpe;
mod cache;
mod checkpoint;
mod data;
mod error;
mod hyper_fields;
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

pub use crate::runtime::Runtime;
pub use cache::{data_for, ensure_trained, ensure_trained_on, Trained};
pub use data::{unigram_cross_entropy, unigram_entropy, Corpus, Data};
pub use error::TrainError;
pub use recipe::{load_recipes, recipes_table, Hyper, Recipes, RECIPES_FILE};
pub use sanity::{
    grad_check_on, loss_of, loss_of_on, overfit_on, reload_check, sampling_mismatches,
    save_and_load, weight_mismatches,
};
pub use sft::{sft, SftOptions, SftSpec, SftSummary};
pub use sft_config::{SftConfig, SftRecipe, SFT_FILE};
pub use spec::{build_tokenizer, TrainSpec, LADDER_FILE};
pub use trainer::{train, RunOptions};
