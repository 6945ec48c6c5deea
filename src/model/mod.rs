//! The Llama-family model behind every subject ([`Llama`]), its weights ([`Weights`]),
//! loaders and writers for safetensors and GGUF, seeded init, training support, and the
//! parameter ladder with its solver.

mod atomic;
mod attention;
mod autograd;
mod cache;
pub(crate) mod config;
mod engine;
mod error;
mod gguf_io;
mod init;
mod ladder;
mod layers;
mod llama;
mod rope_layout;
mod safetensors_io;
mod safetensors_read;
mod train_support;
mod weights;

#[cfg(test)]
mod tests;

pub use cache::KvCache;
pub use config::LlamaConfig;
pub use error::{ModelError, Result};
pub use gguf_io::{gguf_to_hf, hf_to_gguf, load_gguf, save_gguf, GgufInfo};
pub(crate) use gguf_io::{save_gguf_in_order, value_u64};
pub use init::seeded;
pub(crate) use init::INIT_HALF_WIDTH;
pub(crate) use ladder::{ladder_table, load_ladder, Rung};
pub(crate) use layers::matmul_as;
pub use layers::MatmulPath;
pub use llama::{Llama, LoadOptions};
pub use rope_layout::RopeLayout;
pub use safetensors_io::{load_hf_folder, read_hf_metadata, save_hf_folder};
pub(crate) use safetensors_read::read_file as read_safetensors;
pub(crate) use train_support::TrainableLlama;
#[cfg(test)]
pub(crate) use weights::stored_ggml_types;
pub(crate) use weights::{expected_shapes, ggml_from_code, ggml_type_code};
pub use weights::{ggml_type_name, Weight, Weights};
