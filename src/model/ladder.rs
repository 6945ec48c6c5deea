//! The model ladder (`configs/ladder.toml`) and the parameter-count solver ([`solve`]).
//!
//! The solver's rule, deterministic and documented so a rung's shape can be predicted:
//! 1. Candidate widths: multiples of 32 up to 224, then multiples of 256 up to 4096
//!    (rows stay whole GGML blocks: 32 for legacy quants, 256 for K-quants above 256);
//!    depths 1 to 96. Pins from the ladder file replace a grid.
//! 2. `head_dim` is the largest of 64, 32, 16, 8 dividing `hidden` with at least 4 heads;
//!    KV heads are `heads / 3` when 3 divides `heads` and `heads >= 6`, else `heads / 2`
//!    when even and `>= 4`, else `heads` (plain multi-head attention).
//! 3. `intermediate` ranges over multiples of 32 (256 from width 256 on) between
//!    `hidden / 2` and `4 * hidden`.
//! 4. Embeddings are tied (the vocabulary is shared and large next to these models).
//! 5. Among candidates whose exact count is within `tolerance` of the target, the lowest
//!    `|ln(aspect / 64)| + |ln(intermediate / (8/3 · hidden))| + |ln(count / target)|`
//!    wins, where aspect is `hidden / layers` (64 is GPT-2/Pythia's ratio); ties go to the
//!    smaller (hidden, layers, intermediate). No candidate: an error, never a guess.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::config::LlamaConfig;
use super::error::{io_err, ModelError, Result};

/// Shape choices a rung fixes instead of leaving them to the solver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    /// Residual width.
    pub hidden: Option<usize>,
    /// Number of blocks.
    pub layers: Option<usize>,
    /// Query heads.
    pub heads: Option<usize>,
    /// Key/value heads.
    pub kv_heads: Option<usize>,
    /// SwiGLU width.
    pub intermediate: Option<usize>,
}

/// The tokenizer every rung shares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// Number of token ids (rows of the embedding).
    pub size: usize,
    /// Path of the shared `tokenizer.json`, relative to the repository root, once built.
    pub tokenizer: Option<String>,
    /// Beginning-of-sequence id, if the tokenizer defines one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id, if the tokenizer defines one.
    pub eos_token_id: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    rms_norm_eps: f64,
    rope_theta: f64,
    max_position_embeddings: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RungSpec {
    name: String,
    target: u64,
    #[serde(default)]
    pin: Pins,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LadderFile {
    tolerance: f64,
    vocabulary: Vocabulary,
    defaults: Defaults,
    rung: Vec<RungSpec>,
}

/// One model size: its name, the parameter count asked for, and the solved config.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    /// `tiny_1m`, `small_8m`, ...
    pub name: String,
    /// Requested parameter count.
    pub target: u64,
    /// The solved architecture; `config.param_count()` is the realized count.
    pub config: LlamaConfig,
}

/// The resolved ladder.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    /// Allowed relative distance of a realized count from its target.
    pub tolerance: f64,
    /// The shared vocabulary.
    pub vocabulary: Vocabulary,
    /// Rungs in file order.
    pub rungs: Vec<Rung>,
}

impl Ladder {
    /// The rung called `name`.
    pub fn rung(&self, name: &str) -> Option<&Rung> {
        self.rungs.iter().find(|r| r.name == name)
    }
}

/// Reads and solves a ladder file.
pub fn load_ladder(path: &Path) -> Result<Ladder> {
    let text = crate::fsutil::read_text(path).map_err(|e| io_err("read", path)(e.source))?;
    parse_ladder(&text, path)
}

/// Parses (strictly: unknown fields are errors) and solves ladder TOML; `path` only
/// labels errors.
pub fn parse_ladder(text: &str, path: &Path) -> Result<Ladder> {
    let perr = |reason: String| ModelError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let file: LadderFile = toml::from_str(text).map_err(|e| perr(e.to_string()))?;
    if !(file.tolerance > 0.0 && file.tolerance < 1.0) {
        return Err(perr(format!(
            "field `tolerance`: {} is not in (0, 1)",
            file.tolerance
        )));
    }
    let mut rungs: Vec<Rung> = Vec::new();
    for spec in file.rung {
        if rungs.iter().any(|r| r.name == spec.name) {
            return Err(perr(format!(
                "field `rung.name`: duplicate rung `{}`",
                spec.name
            )));
        }
        let mut config = solve_with(spec.target, file.vocabulary.size, file.tolerance, &spec.pin)
            .map_err(|e| perr(format!("rung `{}`: {e}", spec.name)))?;
        config.rms_norm_eps = file.defaults.rms_norm_eps;
        config.rope_theta = file.defaults.rope_theta;
        config.max_position_embeddings = file.defaults.max_position_embeddings;
        config.bos_token_id = file.vocabulary.bos_token_id;
        config.eos_token_id = file.vocabulary.eos_token_id;
        config
            .validate()
            .map_err(|e| perr(format!("rung `{}`: {e}", spec.name)))?;
        rungs.push(Rung {
            name: spec.name,
            target: spec.target,
            config,
        });
    }
    Ok(Ladder {
        tolerance: file.tolerance,
        vocabulary: file.vocabulary,
        rungs,
    })
}

fn head_dim_for(hidden: usize) -> Option<usize> {
    [64, 32, 16, 8]
        .into_iter()
        .find(|hd| hidden.is_multiple_of(*hd) && hidden / hd >= 4)
}

fn kv_heads_for(heads: usize) -> usize {
    if heads >= 6 && heads.is_multiple_of(3) {
        heads / 3
    } else if heads >= 4 && heads.is_multiple_of(2) {
        heads / 2
    } else {
        heads
    }
}

/// The solver, honouring `pins`.
pub fn solve_with(target: u64, vocab: usize, tolerance: f64, pins: &Pins) -> Result<LlamaConfig> {
    let fail = |reason: String| ModelError::Solver { target, reason };
    if target == 0 || vocab == 0 || !(tolerance > 0.0 && tolerance < 1.0) {
        return Err(fail(format!(
            "need target > 0, vocab > 0, 0 < tolerance < 1 (vocab {vocab}, tolerance {tolerance})"
        )));
    }
    let hiddens: Vec<usize> = match pins.hidden {
        Some(h) => vec![h],
        None => (32..=224)
            .step_by(32)
            .chain((256..=4096).step_by(256))
            .collect(),
    };
    let layers: Vec<usize> = match pins.layers {
        Some(l) => vec![l],
        None => (1..=96).collect(),
    };
    let t = target as f64;
    let mut best: Option<(f64, LlamaConfig)> = None;
    for &h in &hiddens {
        let heads = match pins.heads {
            Some(n) => n,
            None => match head_dim_for(h) {
                Some(hd) => h / hd,
                None => continue,
            },
        };
        let kv = pins.kv_heads.unwrap_or_else(|| kv_heads_for(heads));
        let step = if h >= 256 { 256 } else { 32 };
        let inters: Vec<usize> = match pins.intermediate {
            Some(i) => vec![i],
            None => ((h / 2).div_ceil(step) * step..=4 * h)
                .step_by(step)
                .collect(),
        };
        for &l in &layers {
            for &i in &inters {
                let cfg = LlamaConfig {
                    vocab_size: vocab,
                    hidden_size: h,
                    intermediate_size: i,
                    num_hidden_layers: l,
                    num_attention_heads: heads,
                    num_key_value_heads: kv,
                    rms_norm_eps: 1e-5,
                    rope_theta: 10_000.0,
                    max_position_embeddings: 2048,
                    tie_word_embeddings: true,
                    bos_token_id: None,
                    eos_token_id: None,
                };
                if cfg.validate().is_err() {
                    continue;
                }
                let p = cfg.param_count() as f64;
                if (p / t - 1.0).abs() > tolerance {
                    continue;
                }
                let score = ((h as f64 / l as f64) / 64.0).ln().abs()
                    + (i as f64 / (8.0 * h as f64 / 3.0)).ln().abs()
                    + (p / t).ln().abs();
                // Strictly lower wins, so the first (smallest) candidate keeps a tie.
                if best.as_ref().is_none_or(|(s, _)| score < *s) {
                    best = Some((score, cfg));
                }
            }
        }
    }
    best.map(|(_, c)| c).ok_or_else(|| {
        fail(format!(
            "no shape within ±{:.1}% (vocab {vocab} alone costs {} per unit of width; pins {pins:?})",
            tolerance * 100.0,
            vocab
        ))
    })
}

/// A Markdown table of the rungs: target, realized count, shape and embedding share.
pub fn ladder_table(rungs: &[Rung]) -> String {
    let mut s = String::from(
        "| rung | target | realized | Δ | hidden | layers | heads | kv_heads | intermediate | embedding share |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rungs {
        let c = &r.config;
        let p = c.param_count();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:+.2}% | {} | {} | {} | {} | {} | {:.1}% |",
            r.name,
            r.target,
            p,
            (p as f64 / r.target as f64 - 1.0) * 100.0,
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.intermediate_size,
            c.embedding_params() as f64 / p as f64 * 100.0
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::seeded;
    use proptest::prelude::*;

    const LADDER: &str = include_str!("../../configs/ladder.toml");

    #[test]
    fn shipped_ladder_parses_and_lands_within_tolerance() {
        let ladder = parse_ladder(LADDER, Path::new("configs/ladder.toml")).unwrap();
        let names: Vec<&str> = ladder.rungs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["tiny_1m", "small_8m", "mid_50m", "large_150m", "xl_350m"]
        );
        for r in &ladder.rungs {
            let p = r.config.param_count() as f64;
            assert!(
                (p / r.target as f64 - 1.0).abs() <= ladder.tolerance,
                "{}",
                r.name
            );
            assert_eq!(r.config.vocab_size, 16_000);
        }
        println!("{}", ladder_table(&ladder.rungs));
    }

    #[test]
    fn unknown_fields_and_impossible_targets_are_named() {
        let bad = LADDER.replacen("tolerance = 0.05", "tolerence = 0.05", 1);
        let e = parse_ladder(&bad, Path::new("l.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("l.toml") && e.contains("tolerence"), "{e}");
        let bad = LADDER.replacen("name = \"tiny_1m\"", "name = \"tiny_1m\"\nwidth = 3", 1);
        let e = parse_ladder(&bad, Path::new("l.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("width"), "{e}");
        let e = solve_with(100_000, 16_000, 0.05, &Pins::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("100000"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn solved_count_is_within_tolerance(target in 1_000_000u64..400_000_000) {
            let c = solve_with(target, 16_000, 0.05, &Pins::default()).unwrap();
            let rel = c.param_count() as f64 / target as f64 - 1.0;
            prop_assert!(rel.abs() <= 0.05, "target {target}: {c:?}");
            prop_assert!(c.validate().is_ok());
            prop_assert_eq!(c.hidden_size % 32, 0);
            prop_assert_eq!(c.intermediate_size % 32, 0);
        }

        #[test]
        fn predicted_count_equals_built_model(target in 1_000_000u64..6_000_000) {
            let c = solve_with(target, 16_000, 0.05, &Pins::default()).unwrap();
            let w = seeded(&c, 0).unwrap();
            prop_assert_eq!(w.param_count(), c.param_count());
        }
    }
}
