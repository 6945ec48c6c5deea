//! [`HfTokenizer`]: a `tokenizers::Tokenizer` (from `tokenizer.json`) behind [`TextTokenizer`].

use super::text::{check_ids, TextTokenizer, TokenizerError};
use std::path::Path;

/// A Hugging Face `tokenizer.json`, plus the BOS/EOS facts that live beside it.
pub struct HfTokenizer {
    tok: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    vocab_size: usize,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

fn load_err(file: &Path, msg: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Load {
        file: file.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// `"eos_token": "</s>"` or `"eos_token": {"content": "</s>", ...}` in `tokenizer_config.json`.
fn config_token(cfg: &serde_json::Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

impl HfTokenizer {
    /// Wraps a built tokenizer; BOS/EOS unknown and no BOS added until
    /// [`HfTokenizer::with_specials`] says otherwise.
    pub fn new(tok: tokenizers::Tokenizer) -> Self {
        // Ids may have holes, so the size is the largest id + 1, which is what an embedding
        // table needs, rather than the number of entries.
        let vocab_size = tok
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1);
        Self {
            tok,
            bos: None,
            eos: None,
            add_bos: false,
            vocab_size,
        }
    }

    /// Sets the BOS/EOS ids and whether BOS is prepended.
    pub fn with_specials(mut self, bos: Option<u32>, eos: Option<u32>, add_bos: bool) -> Self {
        self.bos = bos;
        self.eos = eos;
        self.add_bos = add_bos;
        self
    }

    /// Loads `file` (a `tokenizer.json`).
    pub fn from_file(file: &Path) -> Result<Self, TokenizerError> {
        let bytes = crate::fsutil::read_bounded(file, crate::fsutil::MAX_TEXT_BYTES)
            .map_err(|e| load_err(file, e.source))?;
        // The JSON must be well-formed, every string decodable, before the library sees it:
        // tokenizers 0.23 panics (`expect("Helper")` in its decoder deserializer) on a file
        // cut inside `decoder` (found by tests/hostile_props.rs) and on a string there that
        // is not UTF-8 or holds a lone surrogate (found by `cargo fuzz`).
        crate::input::parse_json::<crate::input::WellFormed>(&bytes, file)
            .map_err(|e| load_err(file, e.detail()))?;
        let tok = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| load_err(file, crate::excerpt::one_line(&e.to_string())))?;
        Ok(Self::new(tok))
    }

    /// Loads `folder/tokenizer.json`, and BOS/EOS/`add_bos_token` from
    /// `folder/tokenizer_config.json` when that file exists (it is optional: many
    /// `tokenizer.json`-only folders exist).
    pub fn from_folder(folder: &Path) -> Result<Self, TokenizerError> {
        let mut me = Self::from_file(&folder.join("tokenizer.json"))?;
        let cfg_file = folder.join("tokenizer_config.json");
        if cfg_file.is_file() {
            let cfg: serde_json::Value =
                crate::input::read_json(&cfg_file, crate::fsutil::MAX_TEXT_BYTES)
                    .map_err(|e| load_err(&cfg_file, e.detail()))?;
            let id_of = |key: &str| -> Result<Option<u32>, TokenizerError> {
                match config_token(&cfg, key) {
                    None => Ok(None),
                    Some(t) => me.tok.token_to_id(&t).map(Some).ok_or_else(|| {
                        load_err(
                            &cfg_file,
                            format!(
                                "{key} '{}' is not in tokenizer.json",
                                crate::excerpt::excerpt(&t)
                            ),
                        )
                    }),
                }
            };
            let (bos, eos) = (id_of("bos_token")?, id_of("eos_token")?);
            let add_bos = cfg
                .get("add_bos_token")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            me = me.with_specials(bos, eos, add_bos);
        }
        Ok(me)
    }

    /// The wrapped library tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.tok
    }
}

/// `text`'s ids under `tok`, with add_special_tokens = false: no post-processor BOS
/// (whether added tokens are matched is `tok`'s setting).
fn encode_ids(tok: &tokenizers::Tokenizer, text: &str) -> Result<Vec<u32>, TokenizerError> {
    let enc = tok
        .encode(text, false)
        .map_err(|e| TokenizerError::Library {
            op: "encode",
            msg: e.to_string(),
        })?;
    Ok(enc.get_ids().to_vec())
}

impl TextTokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        encode_ids(&self.tok, text)
    }

    fn encode_plain(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        // A copy, because the switch lives in the tokenizer and `encode` must keep matching.
        let mut tok = self.tok.clone();
        tok.set_encode_special_tokens(true);
        encode_ids(&tok, text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        check_ids(ids, self.vocab_size)?;
        // Special tokens are written verbatim (as llama.cpp does) instead of going through the
        // decoder, which would mangle any character outside its byte table.
        let specials = self.tok.get_added_vocabulary();
        let mut out = String::new();
        let mut run: Vec<u32> = Vec::new();
        let flush = |run: &mut Vec<u32>, out: &mut String| -> Result<(), TokenizerError> {
            if !run.is_empty() {
                let s = self
                    .tok
                    .decode(run, false)
                    .map_err(|e| TokenizerError::Library {
                        op: "decode",
                        msg: e.to_string(),
                    })?;
                out.push_str(&s);
                run.clear();
            }
            Ok(())
        };
        for &id in ids {
            match specials
                .simple_id_to_token(id)
                .filter(|t| specials.is_special_token(t))
            {
                Some(t) => {
                    flush(&mut run, &mut out)?;
                    out.push_str(&t);
                }
                None => run.push(id),
            }
        }
        flush(&mut run, &mut out)?;
        Ok(out)
    }

    fn eos(&self) -> Option<u32> {
        self.eos
    }

    fn bos(&self) -> Option<u32> {
        self.bos
    }

    fn add_bos(&self) -> bool {
        self.add_bos
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}
