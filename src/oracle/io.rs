//! Reading and writing oracle files: strict, bounded, atomic.

use super::format::{ModelLimits, Oracle};
use crate::fsutil::read_bounded;
use crate::input::{write_json, InputError, JsonFileError};
use std::path::Path;

/// Oracle files larger than this are refused once that many bytes have been read (a
/// 200-prompt oracle is about 1 MB); parsing one costs about twice its size.
pub const MAX_ORACLE_BYTES: u64 = 64 << 20;

/// Why an oracle could not be read or written. Messages name the file and the field.
pub type OracleError = JsonFileError;

impl OracleError {
    /// `file` breaks a rule of the contract (`msg` starts with the field).
    pub fn contract(file: &Path, msg: impl Into<String>) -> OracleError {
        OracleError::Input(InputError::file(file, msg))
    }
}

/// Reads and validates an oracle (at most [`MAX_ORACLE_BYTES`], counted as read).
pub fn read(path: &Path) -> Result<Oracle, OracleError> {
    parse(&read_bounded(path, MAX_ORACLE_BYTES)?, path)
}

/// Reads an oracle and checks it against the model it will be judged with
/// ([`Oracle::validate_for`]).
pub fn read_for(path: &Path, model: &ModelLimits) -> Result<Oracle, OracleError> {
    let oracle = read(path)?;
    check_for(&oracle, path, model)?;
    Ok(oracle)
}

/// [`Oracle::validate_for`] as an error naming the file.
pub fn check_for(oracle: &Oracle, path: &Path, model: &ModelLimits) -> Result<(), OracleError> {
    oracle
        .validate_for(model)
        .map_err(|msg| OracleError::contract(path, msg))
}

/// Parses and validates oracle JSON; `path` is only used in messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Oracle, OracleError> {
    let oracle: Oracle = crate::input::parse_json(bytes, path)?;
    oracle
        .validate()
        .map_err(|msg| OracleError::contract(path, msg))?;
    Ok(oracle)
}

/// Validates, then writes atomically (pretty JSON, trailing newline).
pub fn write(path: &Path, oracle: &Oracle) -> Result<(), OracleError> {
    oracle
        .validate()
        .map_err(|msg| OracleError::contract(path, msg))?;
    write_json(path, oracle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::MAX_CASE_TEXT_BYTES;

    const EXAMPLE: &str = r#"{
  "format": "groundtruth-oracle/1",
  "model": {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
            "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "weights": "q4_1"},
  "runtime": {"name": "llama.cpp", "version": "llama-cpp-python 0.3.36", "device": "cpu", "threads": 2},
  "decoding": {"strategy": "greedy", "max_new_tokens": 32, "add_bos": false},
  "top_k": 10,
  "cases": [
    {"id": "capital", "prompt": "The capital of France is", "prompt_tokens": [504, 3575, 282, 4649, 314],
     "tokens": [7042, 30, 198], "text": " Paris.\n",
     "top_logprobs": [[[7042, -0.121], [1530, -2.871]], [[30, -0.402], [28, -1.33]], [[198, -0.01]]]}
  ],
  "perplexity": {"text_sha256": "0000000000000000000000000000000000000000000000000000000000000000", "ctx": 512, "chunks": 8, "scored": "second-half", "ppl": 28.17, "n_scored": 2048}
}"#;

    fn err(text: &str) -> String {
        parse(text.as_bytes(), Path::new("oracles/x.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn contract_example_parses_and_round_trips() {
        let o = parse(EXAMPLE.as_bytes(), Path::new("x.json")).unwrap();
        assert_eq!(o.cases[0].top_logprobs[0][1], (1530, -2.871));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.json");
        write(&p, &o).unwrap();
        assert_eq!(read(&p).unwrap(), o);
    }

    #[test]
    fn unknown_field_names_the_path() {
        let e = err(&EXAMPLE.replace("\"top_k\": 10", "\"top_k\": 10, \"temperature\": 0"));
        assert!(e.starts_with("oracles/x.json: field '"), "{e}");
        assert!(e.contains("temperature"), "{e}");
    }

    #[test]
    fn missing_field_names_it() {
        let e = err(&EXAMPLE.replace("\"weights\": \"q4_1\"", "\"weight\": \"q4_1\""));
        assert!(e.contains("model"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_nested_path() {
        let e = err(&EXAMPLE.replace("[[30, -0.402]", "[[\"30\", -0.402]"));
        assert!(e.contains("cases[0].top_logprobs[1][0]"), "{e}");
    }

    #[test]
    fn contract_rules_are_enforced() {
        assert!(err(&EXAMPLE.replace("[[7042, -0.121]", "[[7041, -0.121]"))
            .contains("cases[0].top_logprobs[0][0]"));
        assert!(
            err(&EXAMPLE.replace("-0.402], [28, -1.33]", "-1.402], [28, -1.33]"))
                .contains("not sorted")
        );
        assert!(
            err(&EXAMPLE.replace("groundtruth-oracle/1", "groundtruth-oracle/2"))
                .contains("field 'format'")
        );
        assert!(err(&EXAMPLE.replace("\"greedy\"", "\"beam\"")).contains("decoding.strategy"));
        assert!(err(&EXAMPLE.replace("[[198, -0.01]]", "[[198, 0.5]]")).contains("log-probability"));
        assert!(
            err(&EXAMPLE.replace("b179c9523d0e6a0f", "B179C9523D0E6A0F")).contains("model.sha256")
        );
        assert!(err(&EXAMPLE.replace(", [[198, -0.01]]]", "]")).contains("2 entries for 3 tokens"));
    }

    const CONFIG: &str = r#""weights": "q4_1", "config": {"architecture": "llama", "vocab_size": 49152, "rope_theta": 100000.0, "rope_scaling": null, "eos_token_id": 2}"#;

    #[test]
    fn model_config_is_read_strictly() {
        let o = parse(
            EXAMPLE.replace("\"weights\": \"q4_1\"", CONFIG).as_bytes(),
            Path::new("x.json"),
        )
        .unwrap();
        let c = o.model.config.unwrap();
        assert_eq!(
            (c.rope_theta, c.rope_scaling, c.eos_token_id),
            (Some(100000.0), Some(None), Some(2))
        );
        let e = err(&EXAMPLE.replace(
            "\"weights\": \"q4_1\"",
            &CONFIG.replace("rope_theta", "rope_base"),
        ));
        assert!(e.contains("rope_base"), "{e}");
        let e = err(&EXAMPLE.replace("\"weights\": \"q4_1\"", &CONFIG.replace("100000.0", "-1.0")));
        assert!(e.contains("model.config.rope_theta"), "{e}");
    }

    #[test]
    fn a_continuation_after_eos_names_the_case_and_position() {
        // Token 30 is the model's EOS here: the continuation goes on after it.
        let text = EXAMPLE.replace(
            "\"weights\": \"q4_1\"",
            &CONFIG.replace("\"eos_token_id\": 2", "\"eos_token_id\": 30"),
        );
        let e = err(&text);
        assert!(
            e.starts_with(
                "oracles/x.json: field 'cases[0].tokens[1]' (case 'capital', position 1)"
            ),
            "{e}"
        );
        assert!(e.contains("after EOS 30"), "{e}");
        // EOS as the last token is how a continuation ends.
        let ends = EXAMPLE.replace(
            "\"weights\": \"q4_1\"",
            &CONFIG.replace("\"eos_token_id\": 2", "\"eos_token_id\": 198"),
        );
        assert!(parse(ends.as_bytes(), Path::new("x.json")).is_ok());
    }

    #[test]
    fn unsorted_top_logprobs_name_the_case_and_position() {
        let e = err(&EXAMPLE.replace("-0.402], [28, -1.33]", "-1.402], [28, -1.33]"));
        assert!(
            e.contains("cases[0].top_logprobs[1][1]' (case 'capital', position 1): not sorted"),
            "{e}"
        );
    }

    #[test]
    fn storage_type_case_ids_runtime_and_text_sizes_are_checked() {
        assert!(
            err(&EXAMPLE.replace("\"weights\": \"q4_1\"", "\"weights\": \"q9_9\""))
                .contains("field 'model.weights': 'q9_9'")
        );
        assert!(
            err(&EXAMPLE.replace("\"id\": \"capital\"", "\"id\": \"\"")).contains("cases[0].id")
        );
        assert!(
            err(&EXAMPLE.replace("\"id\": \"capital\"", "\"id\": \"../x\""))
                .contains("cases[0].id")
        );
        assert!(
            err(&EXAMPLE.replace("\"name\": \"llama.cpp\"", "\"name\": \"groundtruth\""))
                .contains("runtime.name")
        );
        let long = EXAMPLE.replace(
            "\"The capital of France is\"",
            &format!("\"{}\"", "x".repeat(MAX_CASE_TEXT_BYTES + 1)),
        );
        assert!(err(&long).contains("cases[0].prompt'"));
    }

    #[test]
    fn an_oracle_must_fit_the_model_it_is_judged_with() {
        let o = parse(EXAMPLE.as_bytes(), Path::new("x.json")).unwrap();
        let smol = ModelLimits {
            vocab_size: 49152,
            context: 8192,
        };
        assert_eq!(o.validate_for(&smol), Ok(()));
        let e = o
            .validate_for(&ModelLimits {
                vocab_size: 5000,
                context: 8192,
            })
            .unwrap_err();
        assert!(
            e.contains("cases[0].tokens[0]") && e.contains("7042"),
            "{e}"
        );
        let mut far = o.clone();
        far.cases[0].top_logprobs[0][1].0 = 9000;
        let e = far
            .validate_for(&ModelLimits {
                vocab_size: 8000,
                context: 8192,
            })
            .unwrap_err();
        assert!(e.contains("cases[0].top_logprobs[0][1]"), "{e}");
        let e = o
            .validate_for(&ModelLimits {
                vocab_size: 49152,
                context: 36,
            })
            .unwrap_err();
        assert!(e.contains("5 prompt tokens plus max_new_tokens 32"), "{e}");
        let e = o
            .validate_for(&ModelLimits {
                vocab_size: 49152,
                context: 256,
            })
            .unwrap_err();
        assert!(e.contains("perplexity.ctx"), "{e}");
        let e = o
            .validate_for(&ModelLimits {
                vocab_size: 8,
                context: 8192,
            })
            .unwrap_err();
        assert!(e.contains("top_k"), "{e}");
    }

    #[test]
    fn trailing_content_and_oversized_files_are_refused() {
        assert!(err(&format!("{EXAMPLE}\n{{}}")).contains("trailing content"));
        let e = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("more than 67108864 bytes"), "{e}");
    }

    #[test]
    fn truncated_json_is_an_error_not_a_panic() {
        for cut in [0, 1, 10, EXAMPLE.len() / 2, EXAMPLE.len() - 1] {
            assert!(parse(&EXAMPLE.as_bytes()[..cut], Path::new("x.json")).is_err());
        }
    }
}
