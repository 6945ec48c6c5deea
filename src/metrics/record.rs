//! [`GenerationRecord`]: one generated completion, one JSON object a line
//! (`groundtruth generate` writes them; records from any other system are read the same way).
//!
//! Numbers are read exactly ([`crate::jsonnum::exact`]): a record written and read back
//! holds the same bits. Parsing is strict: an unknown field, a wrong type, a missing required field, a blank
//! line, a non-finite or out-of-range per-token value or a duplicated id is an error
//! naming the file and the line, and nothing is computed from a file with a bad line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::excerpt::excerpt;
use crate::fsutil::{atomic_write, read_bounded, sha256_hex, FsError};
use crate::input::{parse_json, At, InputError};
use crate::jsonnum::exact;

/// How a completion was decoded. Only `strategy` is required; the rest is recorded when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoding {
    /// `greedy`, `sample`, or whatever the producing system calls its method.
    pub strategy: String,
    /// Softmax temperature.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact::option"
    )]
    pub temperature: Option<f64>,
    /// Top-k cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Top-p (nucleus) cut.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact::option"
    )]
    pub top_p: Option<f64>,
    /// Repetition penalty.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact::option"
    )]
    pub repetition_penalty: Option<f64>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<u64>,
}

impl Decoding {
    /// Greedy decoding with a token budget, nothing else recorded.
    pub fn greedy(max_new_tokens: Option<u64>) -> Decoding {
        Decoding {
            strategy: "greedy".into(),
            temperature: None,
            top_k: None,
            top_p: None,
            repetition_penalty: None,
            seed: None,
            max_new_tokens,
        }
    }

    /// The seeds' sampling recipe (issue 13's studies): temperature 0.3, top-k 25, top-p
    /// 0.8, repetition penalty 1.3.
    pub fn seeds_recipe(seed: u64, max_new_tokens: u64) -> Decoding {
        Decoding {
            strategy: "sample".into(),
            temperature: Some(0.3),
            top_k: Some(25),
            top_p: Some(0.8),
            repetition_penalty: Some(1.3),
            seed: Some(seed),
            max_new_tokens: Some(max_new_tokens),
        }
    }
}

/// One completion of one prompt by one model variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationRecord {
    /// Unique within its file.
    pub id: String,
    /// Model label (free: records come from any system; the harness writes its registry names).
    pub model: String,
    /// Variant label (`base`, `q4_0`, `flip-exp`, …; free as `model`).
    pub variant: String,
    /// The prompt.
    pub prompt: String,
    /// The generated text.
    pub completion: String,
    /// The correct answer.
    pub reference_answer: String,
    /// Entropy (nats) of the distribution each generated token was drawn from.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact::option_vec"
    )]
    pub token_entropies: Option<Vec<f64>>,
    /// Probability of the most likely token at each step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact::option_vec"
    )]
    pub top1_probs: Option<Vec<f64>>,
    /// How it was decoded.
    pub decoding: Decoding,
}

/// Records files holding more bytes than this are refused as they are read (a study
/// writes a few MB; a device or FIFO is bounded the same way).
pub const MAX_RECORDS_BYTES: u64 = 128 << 20;

impl GenerationRecord {
    /// Rules between fields that serde cannot state.
    fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("id", &self.id),
            ("model", &self.model),
            ("variant", &self.variant),
            ("decoding.strategy", &self.decoding.strategy),
        ] {
            if v.trim().is_empty() {
                return Err(format!("field '{field}' is empty"));
            }
        }
        if let Some(e) = &self.token_entropies {
            if let Some((i, v)) = e
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(format!(
                    "field 'token_entropies[{i}]': {v} is not a finite entropy >= 0"
                ));
            }
        }
        if let Some(p) = &self.top1_probs {
            if let Some((i, v)) = p
                .iter()
                .enumerate()
                .find(|(_, v)| !(0.0..=1.0).contains(*v))
            {
                return Err(format!("field 'top1_probs[{i}]': {v} is not a probability"));
            }
        }
        if let (Some(e), Some(p)) = (&self.token_entropies, &self.top1_probs) {
            if e.len() != p.len() {
                return Err(format!("token_entropies has {} values but top1_probs {}: both are one per generated token", e.len(), p.len()));
            }
        }
        Ok(())
    }
}

/// Parses JSONL `bytes` (`file` names it in errors): UTF-8, one record a line, a final
/// newline allowed, ids unique. An empty file is an error: no metric is computed on
/// nothing. Every line is checked before anything is returned, so a caller that writes
/// only on `Ok` writes nothing for a file with one bad line. A library function of bytes,
/// so the fuzz target and the tests reach exactly what `groundtruth metrics` runs.
pub fn parse_records(bytes: &[u8], file: &Path) -> Result<Vec<GenerationRecord>, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        InputError::invalid(
            file,
            crate::fsutil::line_of(&String::from_utf8_lossy(&bytes[..at]), at),
            format!("not UTF-8 (invalid byte at offset {at})"),
        )
    })?;
    let mut out: Vec<GenerationRecord> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            return Err(InputError::invalid(
                file,
                n,
                "blank line (one JSON record a line)",
            ));
        }
        let rec: GenerationRecord =
            parse_json(line.as_bytes(), file).map_err(|e| at_line(e, file, n))?;
        rec.validate()
            .map_err(|m| InputError::invalid(file, n, m))?;
        if let Some(first) = seen.insert(rec.id.clone(), n) {
            return Err(InputError::invalid(
                file,
                n,
                format!(
                    "duplicate id '{}' (first on line {first})",
                    excerpt(&rec.id)
                ),
            ));
        }
        out.push(rec);
    }
    if out.is_empty() {
        return Err(InputError::invalid(file, 1, "no records"));
    }
    Ok(out)
}

/// A JSON error of one line, re-addressed to that line of the file.
fn at_line(e: InputError, file: &Path, line: usize) -> InputError {
    let msg = match e {
        InputError::Invalid {
            at: At::Field(field),
            msg,
            ..
        } if field == "." || field.is_empty() => msg,
        InputError::Invalid {
            at: At::Field(field),
            msg,
            ..
        } => format!("field '{field}': {msg}"),
        InputError::Invalid {
            at: At::Line(_) | At::File,
            msg,
            ..
        } => msg,
        InputError::Fs(e) => e.to_string(),
    };
    // serde_json counts lines within the one line it was given: keep only the column.
    let msg = match msg.rsplit_once(" at line 1 column ") {
        Some((head, col)) => format!("{head} (column {col})"),
        None => msg,
    };
    InputError::invalid(file, line, msg)
}

/// Reads a records file (at most [`MAX_RECORDS_BYTES`], bounded by the bytes read) and
/// returns its records with the SHA-256 of the bytes parsed (read once: a FIFO has no
/// second reading).
pub fn read_records(file: &Path) -> Result<(Vec<GenerationRecord>, String), InputError> {
    let bytes = read_bounded(file, MAX_RECORDS_BYTES)?;
    Ok((parse_records(&bytes, file)?, sha256_hex(&bytes)))
}

/// The JSONL bytes of `records` (one compact object a line, fields in schema order).
pub fn records_jsonl(records: &[GenerationRecord]) -> String {
    let mut out = String::new();
    for r in records {
        // A struct of strings, numbers and vectors always serializes.
        out.push_str(&serde_json::to_string(r).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Writes `records` to `file` atomically.
pub fn write_records(file: &Path, records: &[GenerationRecord]) -> Result<(), FsError> {
    atomic_write(file, records_jsonl(records).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"a","model":"m","variant":"base","prompt":"1+1","completion":"2","reference_answer":"2","decoding":{"strategy":"greedy"}}"#;

    fn err(text: &str) -> String {
        parse_records(text.as_bytes(), Path::new("r.jsonl"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_lines_round_trip() {
        let r = parse_records(format!("{GOOD}\n").as_bytes(), Path::new("r.jsonl")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(records_jsonl(&r), format!("{GOOD}\n"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let second = |l: &str| format!("{GOOD}\n{l}\n");
        for (text, want) in [
            (
                second(&GOOD.replace("\"id\":\"a\"", "\"id\":\"a\",\"extra\":1")),
                "r.jsonl:2: field 'extra': unknown field `extra`",
            ),
            (
                second(&GOOD.replace("\"prompt\":\"1+1\"", "\"prompt\":7")),
                "r.jsonl:2: field 'prompt': invalid type",
            ),
            (
                second(GOOD),
                "r.jsonl:2: duplicate id 'a' (first on line 1)",
            ),
            (
                second(&GOOD.replace(",\"decoding\":{\"strategy\":\"greedy\"}", "")),
                "r.jsonl:2: missing field `decoding`",
            ),
            (
                second(&GOOD.replace(
                    "\"strategy\":\"greedy\"",
                    "\"strategy\":\"greedy\",\"beam\":4",
                )),
                "r.jsonl:2: field 'decoding.beam': unknown field `beam`",
            ),
            (
                second(&GOOD.replace("\"id\":\"a\"", "\"id\":\"b\",\"token_entropies\":[0.1,-1]")),
                "r.jsonl:2: field 'token_entropies[1]'",
            ),
            (
                second(&GOOD.replace(
                    "\"id\":\"a\"",
                    "\"id\":\"b\",\"token_entropies\":[0.1],\"top1_probs\":[0.5,0.5]",
                )),
                "r.jsonl:2: token_entropies has 1 values",
            ),
            (
                second(&GOOD.replace("\"id\":\"a\"", "\"id\":\"b\",\"top1_probs\":[1.5]")),
                "r.jsonl:2: field 'top1_probs[0]'",
            ),
            (
                second(&GOOD.replace("\"id\":\"a\"", "\"id\":\" \"")),
                "r.jsonl:2: field 'id' is empty",
            ),
            (
                format!("{GOOD}\n\n{}\n", GOOD.replace("\"a\"", "\"b\"")),
                "r.jsonl:2: blank line",
            ),
            (second("{\"id\":"), "r.jsonl:2:"),
            (
                second(&GOOD.replace("\"id\":\"a\"", "\"id\":\"b\",\"id\":\"c\"")),
                "r.jsonl:2: duplicate field `id`",
            ),
            (
                second(&GOOD.replace("\"id\":\"a\"", "\"id\":\"b\",\"top1_probs\":[\"NaN\"]")),
                "r.jsonl:2: field 'top1_probs[0]': invalid type: string",
            ),
            (String::new(), "r.jsonl:1: no records"),
        ] {
            let e = err(&text);
            assert!(e.starts_with(want), "{e}\nwanted {want}");
        }
    }
}
