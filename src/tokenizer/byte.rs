//! [`ByteTokenizer`]: one token per UTF-8 byte, and the `tokenizer.json` that makes the
//! Python `tokenizers`/`transformers` stack agree with it.

use super::text::{check_ids, TextTokenizer, TokenizerError};
use candle_core::quantized::gguf_file::Value;

/// Token id = UTF-8 byte value; 256 ids, no special tokens, no BOS/EOS.
///
/// Used by the ladder models trained from scratch, where a learned vocabulary would add a
/// second thing to get wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTokenizer;

/// GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, the others to
/// U+0100 onwards in byte order, so every byte has a visible, non-whitespace character.
pub(crate) fn gpt2_byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        // Every code point here is below U+0144, so from_u32 cannot fail.
        *slot = char::from_u32(cp).unwrap_or('\u{fffd}');
    }
    table
}

impl ByteTokenizer {
    /// A `tokenizer.json` (BPE over the 256 GPT-2 byte-level characters, id = byte value,
    /// no merges; ByteLevel pre-tokenizer without prefix space or regex; ByteLevel decoder)
    /// that encodes every string to exactly its UTF-8 bytes, as [`ByteTokenizer`] does.
    pub fn hf_tokenizer_json() -> String {
        let vocab: serde_json::Map<String, serde_json::Value> = gpt2_byte_chars()
            .iter()
            .enumerate()
            .map(|(b, c)| (c.to_string(), serde_json::Value::from(b)))
            .collect();
        let byte_level = |add_prefix_space: bool, use_regex: bool| {
            serde_json::json!({
                "type": "ByteLevel",
                "add_prefix_space": add_prefix_space,
                "trim_offsets": true,
                "use_regex": use_regex,
            })
        };
        let doc = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": byte_level(false, false),
            "post_processor": null,
            "decoder": byte_level(false, false),
            "model": {
                "type": "BPE",
                "dropout": null,
                "unk_token": null,
                "continuing_subword_prefix": null,
                "end_of_word_suffix": null,
                "fuse_unk": false,
                "byte_fallback": false,
                "ignore_merges": false,
                "vocab": vocab,
                "merges": [],
            },
        });
        // Serializing a json! value built from strings and numbers cannot fail.
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

impl ByteTokenizer {
    /// The `tokenizer.ggml.*` keys under which llama.cpp tokenizes exactly as
    /// [`ByteTokenizer`]: a "gpt2" (byte-level BPE) vocabulary of the 256 GPT-2 byte
    /// characters with id = byte value and no merges, so every byte stays one token
    /// whatever the pre-tokenizer splits, and no BOS added.
    ///
    /// llama.cpp cannot be told "no EOS": a missing or out-of-range id falls back to 11
    /// (byte 0x0B) and generation stops there. So EOS (and the unused BOS) is named
    /// explicitly as byte 0xFF ([`GGUF_EOS_BYTE`]), which never occurs in UTF-8 text: a
    /// text model never needs to emit it, and every reader of the file stops at the same
    /// token.
    pub fn gguf_metadata() -> Vec<(String, Value)> {
        let tokens = gpt2_byte_chars()
            .iter()
            .map(|c| Value::String(c.to_string()))
            .collect();
        vec![
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("gpt-2".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(vec![Value::I32(1); 256]),
            ),
            ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
            (
                "tokenizer.ggml.bos_token_id".into(),
                Value::U32(GGUF_EOS_BYTE),
            ),
            (
                "tokenizer.ggml.eos_token_id".into(),
                Value::U32(GGUF_EOS_BYTE),
            ),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
            ("tokenizer.ggml.add_eos_token".into(), Value::Bool(false)),
        ]
    }
}

/// The byte an exported byte-level GGUF names as EOS: 0xFF, invalid anywhere in UTF-8.
pub const GGUF_EOS_BYTE: u32 = 0xff;

impl TextTokenizer for ByteTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        Ok(text.bytes().map(u32::from).collect())
    }

    /// Invalid UTF-8 (a model may emit half a character) becomes U+FFFD, as the
    /// `tokenizers` ByteLevel decoder does, so both paths print the same text.
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        check_ids(ids, 256)?;
        let bytes: Vec<u8> = ids.iter().map(|&id| id as u8).collect();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn eos(&self) -> Option<u32> {
        None
    }

    fn bos(&self) -> Option<u32> {
        None
    }

    fn add_bos(&self) -> bool {
        false
    }

    fn vocab_size(&self) -> usize {
        256
    }
}
