//! [`GgufTokenizer`]: a byte-level BPE tokenizer rebuilt from GGUF metadata so that it
//! splits text exactly as llama.cpp does.
//!
//! candle's `TokenizerFromGguf` turns on the ByteLevel prefix space and uses the GPT-2
//! regex for every vocabulary, so for SmolLM2 "The capital…" starts with " The" (378)
//! instead of "The" (504) and "Café" becomes one token where llama.cpp gives two. Here the
//! regexes come from llama.cpp's table for `tokenizer.ggml.pre` ([`super::pretok`]) and the
//! ByteLevel step only maps bytes to characters.

use super::hf::HfTokenizer;
use super::pretok::{llama_cpp_pre, KNOWN_PRE};
use super::text::{TextTokenizer, TokenizerError};
use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

/// llama.cpp's `LLAMA_TOKEN_TYPE_*` values that it matches in text before BPE
/// (`tokenizer_st_partition` with `parse_special`): unknown, control, user-defined.
const TYPE_UNKNOWN: i64 = 2;
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;

/// A tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata.
#[derive(Debug)]
pub struct GgufTokenizer {
    inner: HfTokenizer,
    pre: String,
}

fn meta(msg: impl Into<String>) -> TokenizerError {
    TokenizerError::Metadata(msg.into())
}

fn get<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a Value, TokenizerError> {
    md.get(key).ok_or_else(|| meta(format!("{key} is missing")))
}

fn as_str<'a>(v: &'a Value, key: &str) -> Result<&'a str, TokenizerError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(meta(format!(
            "{key} is a {:?}, expected a string",
            other.value_type()
        ))),
    }
}

fn as_int(v: &Value, key: &str) -> Result<i64, TokenizerError> {
    Ok(match v {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::I64(x) => *x,
        Value::U64(x) => {
            i64::try_from(*x).map_err(|_| meta(format!("{key} = {x} does not fit in i64")))?
        }
        other => {
            return Err(meta(format!(
                "{key} is a {:?}, expected an integer",
                other.value_type()
            )))
        }
    })
}

fn as_array<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], TokenizerError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(meta(format!(
            "{key} is a {:?}, expected an array",
            other.value_type()
        ))),
    }
}

/// An optional token id key, checked against the vocabulary size.
fn token_id(
    md: &HashMap<String, Value>,
    key: &str,
    n_tokens: usize,
) -> Result<Option<u32>, TokenizerError> {
    let Some(v) = md.get(key) else {
        return Ok(None);
    };
    let id = as_int(v, key)?;
    match u32::try_from(id) {
        Ok(id) if (id as usize) < n_tokens => Ok(Some(id)),
        _ => Err(meta(format!(
            "{key} = {id} is outside the {n_tokens}-token vocabulary"
        ))),
    }
}

/// Splits a GGUF merge "left right" the way llama.cpp does: at the first space after the
/// first character, so a left part that is itself a space would still work.
fn split_merge(m: &str, i: usize) -> Result<(String, String), TokenizerError> {
    let first_len = m.chars().next().map_or(0, char::len_utf8);
    match m[first_len..].find(' ') {
        Some(p) => Ok((
            m[..first_len + p].to_string(),
            m[first_len + p + 1..].to_string(),
        )),
        None => Err(meta(format!(
            "tokenizer.ggml.merges[{i}] = '{m}' has no space separating its two parts"
        ))),
    }
}

/// `tokenizer.ggml.token_type`, one per token (all normal when the key is absent).
fn token_types(md: &HashMap<String, Value>, n: usize) -> Result<Vec<i64>, TokenizerError> {
    let types = match md.get("tokenizer.ggml.token_type") {
        None => vec![1; n],
        Some(v) => as_array(v, "tokenizer.ggml.token_type")?
            .iter()
            .enumerate()
            .map(|(i, v)| as_int(v, &format!("tokenizer.ggml.token_type[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if types.len() != n {
        return Err(meta(format!(
            "tokenizer.ggml.token_type has {} entries, tokens has {n}",
            types.len()
        )));
    }
    Ok(types)
}

/// llama.cpp's pre-tokenizer `pre_name` as a sequence: its regex splits, then ByteLevel.
fn pre_tokenizer_steps(
    regexes: &[&str],
    pre_name: &str,
) -> Result<Vec<PreTokenizerWrapper>, TokenizerError> {
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(regexes.len() + 1);
    for re in regexes {
        let split = Split::new(
            SplitPattern::Regex((*re).to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| {
            meta(format!(
                "pre-tokenizer regex for '{pre_name}' does not compile: {e}"
            ))
        })?;
        steps.push(split.into());
    }
    // The regexes above already did the splitting; ByteLevel only maps bytes to its
    // printable characters, with no prefix space (llama.cpp adds none for BPE).
    steps.push(ByteLevel::new(false, false, false).into());
    Ok(steps)
}

/// `tokenizer.ggml.add_bos_token`, or the pre-tokenizer's default when absent.
fn add_bos_token(md: &HashMap<String, Value>, default: bool) -> Result<bool, TokenizerError> {
    match md.get("tokenizer.ggml.add_bos_token") {
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(meta(format!(
            "tokenizer.ggml.add_bos_token is a {:?}, expected a bool",
            other.value_type()
        ))),
        None => Ok(default),
    }
}

/// The tokens llama.cpp parses as specials in text: unknown, control and user-defined ones.
fn special_tokens(tokens: &[&str], types: &[i64]) -> Vec<AddedToken> {
    tokens
        .iter()
        .zip(types)
        .filter(|(t, ty)| {
            !t.is_empty() && matches!(**ty, TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED)
        })
        .map(|(t, _)| AddedToken::from(t.to_string(), true).normalized(false))
        .collect()
}

impl GgufTokenizer {
    /// Builds the tokenizer from GGUF metadata (`Content::metadata`). Needs
    /// `tokenizer.ggml.model` = "gpt2", `tokens`, `merges`; uses `token_type`, `pre`,
    /// `bos_token_id`, `eos_token_id` and `add_bos_token` when present.
    pub fn from_metadata(md: &HashMap<String, Value>) -> Result<Self, TokenizerError> {
        let model = as_str(get(md, "tokenizer.ggml.model")?, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(meta(format!(
                "tokenizer.ggml.model is '{model}'; only 'gpt2' (byte-level BPE) is supported"
            )));
        }
        let pre_name = match md.get("tokenizer.ggml.pre") {
            Some(v) => as_str(v, "tokenizer.ggml.pre")?.to_string(),
            None => "default".to_string(),
        };
        let pre = llama_cpp_pre(&pre_name).ok_or_else(|| {
            meta(format!(
                "tokenizer.ggml.pre '{pre_name}' is not supported; known: {}",
                KNOWN_PRE.join(", ")
            ))
        })?;

        let tokens = as_array(get(md, "tokenizer.ggml.tokens")?, "tokenizer.ggml.tokens")?
            .iter()
            .enumerate()
            .map(|(i, v)| as_str(v, &format!("tokenizer.ggml.tokens[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let n = tokens.len();
        if n == 0 || u32::try_from(n).is_err() {
            return Err(meta(format!("tokenizer.ggml.tokens has {n} entries")));
        }
        let types = token_types(md, n)?;
        let merges = as_array(get(md, "tokenizer.ggml.merges")?, "tokenizer.ggml.merges")?
            .iter()
            .enumerate()
            .map(|(i, v)| split_merge(as_str(v, &format!("tokenizer.ggml.merges[{i}]"))?, i))
            .collect::<Result<Vec<_>, _>>()?;

        // Later duplicates win, as in llama.cpp's token_to_id map.
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre.ignore_merges)
            .build()
            .map_err(|e| {
                meta(format!(
                    "vocabulary and merges do not form a BPE model: {e}"
                ))
            })?;

        let steps = pre_tokenizer_steps(pre.regexes, &pre_name)?;
        let mut tok = tokenizers::Tokenizer::new(bpe);
        tok.with_pre_tokenizer(Some(Sequence::new(steps)));
        tok.with_decoder(Some(ByteLevelDecoder::default()));
        tok.add_special_tokens(special_tokens(&tokens, &types))
            .map_err(|e| meta(format!("control tokens could not be added: {e}")))?;

        let bos = token_id(md, "tokenizer.ggml.bos_token_id", n)?;
        let eos = token_id(md, "tokenizer.ggml.eos_token_id", n)?;
        let add_bos = add_bos_token(md, pre.add_bos)?;
        if add_bos && bos.is_none() {
            return Err(meta(
                "tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id",
            ));
        }
        let inner = HfTokenizer::new(tok).with_specials(bos, eos, add_bos);
        if inner.vocab_size() != n {
            return Err(meta(format!(
                "built vocabulary has {} ids, tokens has {n}",
                inner.vocab_size()
            )));
        }
        Ok(Self {
            inner,
            pre: pre_name,
        })
    }

    /// Validates `path` with [`crate::gguf_guard::validate_gguf`], reads its metadata with
    /// candle, and builds the tokenizer from it.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let load = |msg: String| TokenizerError::Load {
            file: path.to_path_buf(),
            msg,
        };
        crate::gguf_guard::validate_gguf(path)?;
        let mut f = std::fs::File::open(path).map_err(|e| load(e.to_string()))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut f)
            .map_err(|e| load(e.to_string()))?;
        Self::from_metadata(&content.metadata).map_err(|e| load(e.to_string()))
    }

    /// The `tokenizer.ggml.pre` value the pre-tokenizer was chosen for.
    pub fn pre(&self) -> &str {
        &self.pre
    }

    /// The underlying `tokenizers` tokenizer (for saving as `tokenizer.json`).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        self.inner.inner()
    }
}

impl TextTokenizer for GgufTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner.encode(text)
    }

    fn encode_plain(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner.encode_plain(text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids)
    }

    fn eos(&self) -> Option<u32> {
        self.inner.eos()
    }

    fn bos(&self) -> Option<u32> {
        self.inner.bos()
    }

    fn add_bos(&self) -> bool {
        self.inner.add_bos()
    }

    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
}
