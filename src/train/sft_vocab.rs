//! The SFT vocabulary: the base tokenizer with the trace tags and an end token appended
//! as special tokens, and the base weights with as many new embedding rows.
//!
//! The frozen tokenizer's ids keep their meaning (the new ids come after the last one),
//! so text without tags tokenizes exactly as before; the pretraining tokenizer file is
//! never rewritten. New rows: the mean of the base rows plus seeded uniform noise at the
//! init's scale (std 0.02), one stream per token, so they start at an average logit and
//! differ from each other.

use candle_core::{Device, Tensor};
use tokenizers::{AddedToken, Tokenizer};

use super::error::{Ctx, TrainError};
use crate::model::{Weight, Weights, INIT_HALF_WIDTH};
use crate::rng::SeededRng;

/// The tokenizer.json of `base_json` with `specials` appended (ids `vocab`, `vocab + 1`, …)
/// and their ids. A special already present, or a base whose largest id + 1 is not `vocab`,
/// is an error: the new ids must be exactly the new rows.
pub fn extend_tokenizer(
    base_json: &str,
    specials: &[&str],
    vocab: usize,
) -> Result<(String, Vec<u32>), TrainError> {
    let mut tok = Tokenizer::from_bytes(base_json.as_bytes())
        .map_err(|e| TrainError::Tokenizer(e.to_string()))?;
    let have = tok.get_vocab(true);
    let size = have.values().max().map_or(0, |&m| m as usize + 1);
    if size != vocab {
        return Err(TrainError::Spec(format!(
            "the base tokenizer has {size} ids, the model's embedding {vocab} rows"
        )));
    }
    if let Some(s) = specials.iter().find(|s| have.contains_key(**s)) {
        return Err(TrainError::Spec(format!(
            "special token '{s}' is already in the base tokenizer"
        )));
    }
    let added: Vec<AddedToken> = specials
        .iter()
        .map(|s| AddedToken::from(s.to_string(), true))
        .collect();
    tok.add_special_tokens(added)
        .map_err(|e| TrainError::Tokenizer(e.to_string()))?;
    let ids: Vec<u32> = specials
        .iter()
        .map(|s| tok.token_to_id(s).unwrap_or(u32::MAX))
        .collect();
    let want: Vec<u32> = (vocab..vocab + specials.len()).map(|i| i as u32).collect();
    if ids != want {
        return Err(TrainError::Spec(format!(
            "special tokens got ids {ids:?}, expected {want:?}"
        )));
    }
    let json = tok
        .to_string(false)
        .map_err(|e| TrainError::Tokenizer(e.to_string()))?;
    Ok((json, ids))
}

/// `base` with `n` rows appended to the embedding (and to an untied output projection)
/// and `vocab_size` and `eos_token_id` updated.
pub fn extend_weights(
    base: &Weights,
    n: usize,
    eos: u32,
    seed: u64,
) -> Result<Weights, TrainError> {
    let mut w = base.to_f32()?;
    let names: &[&str] = match w.config.tie_word_embeddings {
        true => &["model.embed_tokens.weight"],
        false => &["model.embed_tokens.weight", "lm_head.weight"],
    };
    for name in names {
        let t = w.get(name)?.to_f32_tensor(&Device::Cpu)?;
        let (rows, d) = t.dims2().ctx(name)?;
        let data: Vec<f32> = t.flatten_all().and_then(|t| t.to_vec1()).ctx(name)?;
        // The mean row in f64, summed in row order: the same bits on every machine.
        let mut mean = vec![0f64; d];
        for row in data.chunks(d) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += f64::from(x);
            }
        }
        let mut out = data;
        for k in 0..n {
            let mut rng = SeededRng::for_stream(seed, &format!("sft-vocab/{name}/{k}"));
            out.extend(
                mean.iter()
                    .map(|m| (*m / rows as f64) as f32 + rng.uniform_sym(INIT_HALF_WIDTH)),
            );
        }
        let grown = Tensor::from_vec(out, (rows + n, d), &Device::Cpu).ctx(name)?;
        w.tensors.insert(name.to_string(), Weight::Float(grown));
    }
    w.config.vocab_size += n;
    w.config.eos_token_id = Some(eos);
    w.check_complete()?;
    Ok(w)
}

/// `tokenizer_config.json` naming the end token as EOS (what [`crate::tokenizer::HfTokenizer::from_folder`] reads).
pub fn tokenizer_config(end_token: &str) -> String {
    let v = serde_json::json!({ "eos_token": end_token, "add_bos_token": false });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{HfTokenizer, TextTokenizer};

    fn frozen() -> String {
        std::fs::read_to_string(
            crate::project::Project::from_manifest().path("configs/tokenizer.json"),
        )
        .unwrap()
    }

    #[test]
    fn specials_come_after_the_frozen_ids_and_plain_text_is_unchanged() {
        let base = frozen();
        let specials = [
            "<|begin_of_thought|>",
            "<|end_of_thought|>",
            "<|end_of_text|>",
        ];
        let (json, ids) = extend_tokenizer(&base, &specials, 16000).unwrap();
        assert_eq!(ids, [16000, 16001, 16002]);
        let old = HfTokenizer::new(Tokenizer::from_bytes(base.as_bytes()).unwrap());
        let new = HfTokenizer::new(Tokenizer::from_bytes(json.as_bytes()).unwrap());
        let text = "Compute: (7 + 5) * 3\nROMEO: what light 12 - 4 = 8";
        assert_eq!(old.encode(text).unwrap(), new.encode(text).unwrap());
        let tagged = new
            .encode("<|begin_of_thought|>\n7 + 5 = 12<|end_of_thought|>")
            .unwrap();
        assert_eq!(tagged.first(), Some(&16000));
        assert_eq!(tagged.last(), Some(&16001));
        assert_eq!(
            new.decode(&tagged).unwrap(),
            "<|begin_of_thought|>\n7 + 5 = 12<|end_of_thought|>"
        );
        assert_eq!(
            json,
            extend_tokenizer(&base, &specials, 16000).unwrap().0,
            "deterministic bytes"
        );
        assert!(extend_tokenizer(&base, &specials, 16001).is_err());
        assert!(extend_tokenizer(&json, &specials, 16003)
            .unwrap_err()
            .to_string()
            .contains("already"));
    }

    #[test]
    fn new_rows_are_deterministic_and_old_rows_untouched() {
        let mut cfg = crate::train::tests::micro_config();
        cfg.vocab_size = 40;
        let base = crate::model::seeded(&cfg, 3).unwrap();
        let a = extend_weights(&base, 5, 44, 9).unwrap();
        assert_eq!(a.config.vocab_size, 45);
        assert_eq!(a.config.eos_token_id, Some(44));
        cfg.tie_word_embeddings = false;
        let untied = extend_weights(&crate::model::seeded(&cfg, 3).unwrap(), 5, 44, 9).unwrap();
        assert_eq!(untied.get("lm_head.weight").unwrap().shape(), [45, 32]);
        assert_eq!(
            a.sha256().unwrap(),
            extend_weights(&base, 5, 44, 9).unwrap().sha256().unwrap()
        );
        assert_ne!(
            a.sha256().unwrap(),
            extend_weights(&base, 5, 44, 10).unwrap().sha256().unwrap()
        );
        let e = |w: &Weights| {
            w.get("model.embed_tokens.weight")
                .unwrap()
                .to_f32_tensor(&Device::Cpu)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        };
        let (old, new) = (e(&base), e(&a));
        assert_eq!(&new[..40], &old[..]);
        assert_ne!(new[40], new[41]);
    }
}
