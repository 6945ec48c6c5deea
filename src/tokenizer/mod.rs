//! Tokenizers behind one trait, [`TextTokenizer`]: [`ByteTokenizer`] (UTF-8 bytes, for the
//! ladder models), [`HfTokenizer`] (a `tokenizer.json`) and [`GgufTokenizer`] (built from
//! GGUF metadata so that it tokenizes exactly as llama.cpp does).

mod byte;
mod gguf;
mod hf;
mod pretok;
mod text;

#[cfg(test)]
mod tests;

pub(crate) use byte::gpt2_byte_chars;
pub use byte::{ByteTokenizer, GGUF_EOS_BYTE};
pub use gguf::GgufTokenizer;
pub use hf::HfTokenizer;
pub use pretok::{llama_cpp_pre, LlamaCppPre, KNOWN_PRE};
pub use text::{check_fits, TextTokenizer, TokenizerError};
