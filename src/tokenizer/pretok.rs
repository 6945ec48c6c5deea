//! The pre-tokenizer llama.cpp uses for each `tokenizer.ggml.pre` value.
//!
//! Transcribed from `llm_tokenizer_bpe::llm_tokenizer_bpe` (the regex lists) and
//! `llama_vocab::impl::load` (name → type, `ignore_merges`, `add_bos`) in llama.cpp's
//! `src/llama-vocab.cpp`. Only the types checked against that source are listed; an unknown
//! name is an error rather than a guess, because a wrong regex tokenizes most text fine and
//! silently differs on digits, apostrophes or whitespace.
//!
//! llama.cpp applies the regexes in order, each one splitting every piece left by the
//! previous one into matches and the gaps between them; `tokenizers`' `Split` with the
//! `Isolated` behaviour, chained in a `Sequence`, does the same.

/// What llama.cpp does before BPE for one `tokenizer.ggml.pre` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlamaCppPre {
    /// Regexes applied in order (fancy-regex syntax, same text as llama.cpp's).
    pub regexes: &'static [&'static str],
    /// A whole pre-token found in the vocabulary is emitted as is, without merges.
    pub ignore_merges: bool,
    /// llama.cpp's default for `add_bos` before `tokenizer.ggml.add_bos_token` overrides it.
    pub add_bos: bool,
}

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const fn pre(regexes: &'static [&'static str]) -> LlamaCppPre {
    LlamaCppPre {
        regexes,
        ignore_merges: false,
        add_bos: false,
    }
}

/// The llama.cpp pre-tokenizer for `name` (the `tokenizer.ggml.pre` value), or `None` for
/// a name this table does not cover.
pub fn llama_cpp_pre(name: &str) -> Option<LlamaCppPre> {
    Some(match name {
        // LLAMA_VOCAB_PRE_TYPE_DEFAULT (also what llama.cpp uses when the key is missing).
        "default" => pre(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" => LlamaCppPre {
            regexes: &[LLAMA3],
            ignore_merges: true,
            add_bos: true,
        },
        "dbrx" | "smaug-bpe" => pre(&[LLAMA3]),
        "falcon" => pre(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]),
        // STARCODER, REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA: single digits,
        // then GPT-2.
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" => {
            pre(&[r"\p{N}", GPT2])
        }
        "gpt-2" | "phi-2" | "mpt" | "olmo" | "jais" | "trillion" | "exaone4" => pre(&[GPT2]),
        "qwen2" | "deepseek-r1-qwen" | "megrez" | "stablelm2" => pre(&[QWEN2]),
        _ => return None,
    })
}

/// The names [`llama_cpp_pre`] knows, for error messages.
pub const KNOWN_PRE: &[&str] = &[
    "default",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "dbrx",
    "smaug-bpe",
    "falcon",
    "starcoder",
    "refact",
    "command-r",
    "smollm",
    "codeshell",
    "exaone",
    "minerva-7b",
    "gpt-2",
    "phi-2",
    "mpt",
    "olmo",
    "jais",
    "trillion",
    "exaone4",
    "qwen2",
    "deepseek-r1-qwen",
    "megrez",
    "stablelm2",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_resolves_and_compiles() {
        for name in KNOWN_PRE {
            let p = llama_cpp_pre(name).unwrap_or_else(|| panic!("{name} missing"));
            for re in p.regexes {
                let split = tokenizers::pre_tokenizers::split::Split::new(
                    tokenizers::pre_tokenizers::split::SplitPattern::Regex((*re).to_string()),
                    tokenizers::SplitDelimiterBehavior::Isolated,
                    false,
                );
                assert!(split.is_ok(), "{name}: {re}");
            }
        }
        assert!(llama_cpp_pre("no-such-pre").is_none());
    }
}
