//! Reading the project's TOML and JSON inputs strictly, with errors that name the file and
//! the line (TOML) or the field path (JSON). One error type for every such file, and the
//! one strict JSON reader every JSON input goes through: a document followed by anything
//! but whitespace (a second document, trailing text) is refused, and messages quote file
//! content only as a short excerpt.

use crate::excerpt::one_line;
use crate::fsutil::{line_of, read_bounded, read_text, FsError};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Why an input file could not be used: unreadable, or a problem at a place in it. The one
/// error type of every project input (claims, suites, registry, prompts, configs, oracles,
/// reports), so every message reads `file:line: message` or `file: field 'f': message`.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file breaks its schema or a rule between fields.
    #[error("{}{at}: {msg}", file.display())]
    Invalid {
        /// The input file, as the caller named it (so the message shows the path the user gave).
        file: PathBuf,
        /// Where in it.
        at: At,
        /// What is wrong.
        msg: String,
    },
}

/// Where in an input file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// The file as a whole (the message names the field when there is one).
    File,
    /// A 1-based line (TOML).
    Line(usize),
    /// The dotted path of a field (JSON).
    Field(String),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::File => Ok(()),
            At::Line(n) => write!(f, ":{n}"),
            At::Field(field) => write!(f, ": field '{field}'"),
        }
    }
}

impl InputError {
    /// A rule broken at `line` of `file`.
    pub fn invalid(file: &Path, line: usize, msg: impl Into<String>) -> InputError {
        InputError::Invalid {
            file: file.to_path_buf(),
            at: At::Line(line),
            msg: msg.into(),
        }
    }

    /// A field of `file` that breaks its schema.
    pub fn field(file: &Path, field: impl Into<String>, msg: impl Into<String>) -> InputError {
        InputError::Invalid {
            file: file.to_path_buf(),
            at: At::Field(field.into()),
            msg: msg.into(),
        }
    }

    /// A rule `file` breaks (the message names the field).
    pub fn file(file: &Path, msg: impl Into<String>) -> InputError {
        InputError::Invalid {
            file: file.to_path_buf(),
            at: At::File,
            msg: msg.into(),
        }
    }

    /// The message without the file name, for errors that name the file themselves.
    pub fn detail(&self) -> String {
        match self {
            InputError::Fs(e) => e.source.to_string(),
            InputError::Invalid {
                at: At::Line(line),
                msg,
                ..
            } => format!("line {line}: {msg}"),
            InputError::Invalid {
                at: At::Field(field),
                msg,
                ..
            } => format!("field '{field}': {msg}"),
            InputError::Invalid {
                at: At::File, msg, ..
            } => msg.clone(),
        }
    }
}

/// Reads a TOML file into `T`; returns the text too, for later line lookups.
pub fn read_toml<T: DeserializeOwned>(file: &Path) -> Result<(T, String), InputError> {
    let text = read_text(file)?;
    Ok((parse_toml(&text, file)?, text))
}

/// Parses TOML text; `file` is only used in messages.
pub fn parse_toml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, InputError> {
    toml::from_str(text).map_err(|e| {
        InputError::invalid(
            file,
            e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            one_line(e.message()),
        )
    })
}

/// Any JSON value, parsed only to check it: every string is decoded (valid UTF-8, valid
/// escapes, no lone surrogates), unlike [`serde::de::IgnoredAny`], which skips strings
/// unread. For handing a document to a library that panics on what it cannot decode.
pub struct WellFormed;

impl<'de> serde::Deserialize<'de> for WellFormed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<WellFormed, D::Error> {
        d.deserialize_any(WellFormedVisitor)
    }
}

struct WellFormedVisitor;

impl<'de> serde::de::Visitor<'de> for WellFormedVisitor {
    type Value = WellFormed;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }
    fn visit_i64<E>(self, _: i64) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }
    fn visit_u64<E>(self, _: u64) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }
    fn visit_f64<E>(self, _: f64) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }
    fn visit_str<E>(self, _: &str) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }
    fn visit_unit<E>(self) -> Result<WellFormed, E> {
        Ok(WellFormed)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<WellFormed, A::Error> {
        while seq.next_element::<WellFormed>()?.is_some() {}
        Ok(WellFormed)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<WellFormed, A::Error> {
        while map.next_entry::<WellFormed, WellFormed>()?.is_some() {}
        Ok(WellFormed)
    }
}

/// Reads a JSON file of at most `limit` bytes into `T` (see [`parse_json`]).
pub fn read_json<T: DeserializeOwned>(file: &Path, limit: u64) -> Result<T, InputError> {
    parse_json(&read_bounded(file, limit)?, file)
}

/// Parses one JSON document into `T`, naming the offending field's path on error;
/// anything after the document but whitespace is an error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], file: &Path) -> Result<T, InputError> {
    // The path names keys from the file, so it is quoted like any file content.
    let schema = |field: String, msg: String| {
        InputError::field(file, crate::excerpt::excerpt(&field), one_line(&msg))
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de)
        .map_err(|e| schema(e.path().to_string(), e.inner().to_string()))?;
    de.end().map_err(|e| {
        InputError::invalid(
            file,
            e.line(),
            format!(
                "trailing content after the JSON document (column {})",
                e.column()
            ),
        )
    })?;
    Ok(value)
}

/// Why a JSON file the harness both reads and writes (an oracle, a report) could not be
/// read or written: the file, what it holds, or serialising the value for it.
#[derive(Debug, thiserror::Error)]
pub enum JsonFileError {
    /// Unreadable or unwritable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Not JSON, not the file's schema, or well-formed JSON that breaks one of its rules
    /// (the message starts with the field).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The value could not be serialised.
    #[error("{}: {source}", file.display())]
    Serialize {
        /// The file it was for.
        file: PathBuf,
        /// serde's error.
        source: serde_json::Error,
    },
}

/// Writes `value` to `path` as pretty JSON with a trailing newline, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), JsonFileError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|source| JsonFileError::Serialize {
            file: path.to_path_buf(),
            source,
        })?;
    text.push('\n');
    crate::fsutil::atomic_write(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        a: u32,
    }

    #[test]
    fn json_with_trailing_content_is_refused() {
        let p = Path::new("x.json");
        assert!(parse_json::<Doc>(b"{\"a\": 1}\n  \n", p).is_ok());
        for bad in [
            &b"{\"a\": 1} {\"a\": 2}"[..],
            b"{\"a\": 1}\ngarbage",
            b"{\"a\": 1}]",
        ] {
            let e = parse_json::<Doc>(bad, p).unwrap_err().to_string();
            assert!(
                e.starts_with("x.json:") && e.contains("trailing content"),
                "{e}"
            );
        }
    }

    #[test]
    fn well_formed_decodes_every_string() {
        let p = Path::new("t.json");
        assert!(parse_json::<WellFormed>(
            br#"{"a": [1, -2, 2.5, "x\u00e9", null, true, {"b": {}}]}"#,
            p
        )
        .is_ok());
        for bad in [
            &b"{\"type\": \"B\x8e\x8beLevel\"}"[..],
            br#"{"a": "\udfff"}"#,
            br#"{"a": "\q"}"#,
        ] {
            assert!(
                parse_json::<WellFormed>(bad, p).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            // serde's IgnoredAny skips strings unread and accepts what a decoder rejects.
            assert!(
                bad == br#"{"a": "\q"}"# || parse_json::<serde::de::IgnoredAny>(bad, p).is_ok()
            );
        }
    }

    #[test]
    fn messages_quote_content_briefly() {
        let long = format!("{{\"b{}\": 1}}", "x".repeat(1 << 20));
        let e = parse_json::<Doc>(long.as_bytes(), Path::new("x.json"))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 2000, "{} bytes", e.len());
    }
}
