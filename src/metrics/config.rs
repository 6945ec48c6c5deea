//! [`MetricsConfig`] (`configs/metrics.toml`): the four trace tags, the answer rule, the
//! numeric tolerance and the bootstrap's seed, resamples and confidence. Read strictly:
//! an unknown field or a bad value is an error naming the file and line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::input::{parse_toml, InputError};

/// The project's metrics configuration file.
pub const METRICS_FILE: &str = "configs/metrics.toml";

/// The four tags of a reasoning trace, in the order they must occur.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// Opens the thought block.
    pub thought_open: String,
    /// Closes the thought block.
    pub thought_close: String,
    /// Opens the solution block.
    pub solution_open: String,
    /// Closes the solution block.
    pub solution_close: String,
}

impl Default for Tags {
    fn default() -> Self {
        Tags {
            thought_open: "<|begin_of_thought|>".into(),
            thought_close: "<|end_of_thought|>".into(),
            solution_open: "<|begin_of_solution|>".into(),
            solution_close: "<|end_of_solution|>".into(),
        }
    }
}

impl Tags {
    /// The tags in their required order.
    pub fn in_order(&self) -> [&str; 4] {
        [
            &self.thought_open,
            &self.thought_close,
            &self.solution_open,
            &self.solution_close,
        ]
    }

    /// Non-empty, and no tag inside another (occurrences would be counted twice).
    fn validate(&self) -> Result<(), String> {
        let t = self.in_order();
        if let Some(e) = t.iter().find(|s| s.trim().is_empty()) {
            return Err(format!("tag '{e}' is empty"));
        }
        for (i, a) in t.iter().enumerate() {
            for (j, b) in t.iter().enumerate() {
                if i != j && b.contains(a) {
                    return Err(format!(
                        "tag '{a}' occurs inside tag '{b}', so occurrences could not be counted"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How the answer is found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerRule {
    /// The content of the last `\boxed{…}` if there is one, else the last number
    /// (`-?\d+(\.\d+)?`).
    BoxedElseLastNumber,
    /// Only the content of the last `\boxed{…}`.
    Boxed,
    /// Only the last number.
    LastNumber,
}

/// The seeded bootstrap of every interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Seed of the resampler (each model × variant group draws from its own stream).
    pub seed: u64,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// Coverage of the percentile interval, in (0, 1).
    pub confidence: f64,
}

/// `configs/metrics.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The trace tags.
    pub tags: Tags,
    /// Where a trace's final answer is read from.
    pub answer_rule: AnswerRule,
    /// Two numeric answers are equal when they differ by at most this (absolute).
    pub tolerance: f64,
    /// Seed, resamples and coverage of every interval.
    pub bootstrap: BootstrapConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            tags: Tags::default(),
            answer_rule: AnswerRule::BoxedElseLastNumber,
            tolerance: 1e-6,
            bootstrap: BootstrapConfig {
                seed: 20_261_128,
                resamples: 2000,
                confidence: 0.95,
            },
        }
    }
}

impl MetricsConfig {
    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<MetricsConfig, InputError> {
        let cfg: MetricsConfig = parse_toml(text, file)?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(1, |i| i + 1)
        };
        cfg.tags
            .validate()
            .map_err(|m| InputError::invalid(file, line_of("[tags]"), m))?;
        if !(cfg.tolerance.is_finite() && cfg.tolerance >= 0.0) {
            return Err(InputError::invalid(
                file,
                line_of("tolerance"),
                format!("tolerance {} is not a non-negative number", cfg.tolerance),
            ));
        }
        let b = cfg.bootstrap;
        if b.resamples == 0 {
            return Err(InputError::invalid(
                file,
                line_of("resamples"),
                "resamples must be at least 1",
            ));
        }
        if !(b.confidence > 0.0 && b.confidence < 1.0) {
            return Err(InputError::invalid(
                file,
                line_of("confidence"),
                format!("confidence {} is not in (0, 1)", b.confidence),
            ));
        }
        Ok(cfg)
    }

    /// Reads `file`.
    pub fn load(file: &Path) -> Result<MetricsConfig, InputError> {
        let text = crate::fsutil::read_text(file)?;
        Self::parse(&text, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_file_is_the_default() {
        let p = crate::project::Project::from_manifest().path(METRICS_FILE);
        assert_eq!(MetricsConfig::load(&p).unwrap(), MetricsConfig::default());
    }

    #[test]
    fn bad_values_name_file_and_line() {
        let text =
            std::fs::read_to_string(crate::project::Project::from_manifest().path(METRICS_FILE))
                .unwrap();
        let f = Path::new("m.toml");
        for (from, to, want) in [
            ("tolerance = 1e-6", "tolerance = -1.0", "tolerance -1"),
            ("confidence = 0.95", "confidence = 1.5", "confidence 1.5"),
            (
                "answer_rule = \"boxed_else_last_number\"",
                "answer_rule = \"first_number\"",
                "unknown variant",
            ),
            (
                "resamples = 2000",
                "resamples = 2000\nextra = 1",
                "unknown field",
            ),
            (
                "solution_close = \"<|end_of_solution|>\"",
                "solution_close = \"<|begin_of_solution|>x\"",
                "occurs inside",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let e = MetricsConfig::parse(&text.replace(from, to), f)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("m.toml:") && e.contains(want), "{e}");
        }
    }
}
