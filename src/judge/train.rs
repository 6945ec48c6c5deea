//! `train_sanity` claims: each check of [`crate::train`]'s sanity measurements, run on the
//! model's registered recipe (configs/recipes.toml) and, where the check is about a trained
//! model, on the cached checkpoint of that recipe.

use super::{Judge, Stop};
use crate::claim::{Case, TrainCheck};
use crate::model::{load_hf_folder, seeded, Llama, LoadOptions};
use crate::outcome::{Evidence, Outcome};
use crate::report::FileHash;
use crate::rng::SeededRng;
use crate::tokenizer::TextTokenizer;
use crate::train::{self as tr, TrainError, TrainSpec, Trained};
use std::path::PathBuf;

/// Every training failure is an error, a missing corpus included: the corpus is part of
/// the checkout, so its absence is a broken setup, never a reason to skip.
fn stop(e: TrainError) -> Stop {
    Stop::Error(e.to_string())
}

/// A scratch folder under the output folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(judge: &Judge, case: &Case) -> Scratch {
        let name: String = case
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Scratch(
            judge
                .project
                .out_dir()
                .join("tmp")
                .join(format!("{name}.{}", std::process::id())),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Judge {
    pub(super) fn train_sanity(
        &self,
        case: &Case,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        let claim = &case.claim.claim;
        let check = claim
            .check
            .ok_or_else(|| Stop::Error("train_sanity claim without 'check'".into()))?;
        let entry = self.entry(&case.model)?;
        let recipe = entry
            .recipe()
            .ok_or_else(|| Stop::Error(format!("model '{}' is not trained by the harness (its registry entry needs `trained = {{ recipe = ... }}` or a folder with `recipe`)", case.model)))?
            .to_string();
        let (spec, _) = TrainSpec::from_recipe(&self.project, &recipe).map_err(stop)?;
        for f in [tr::RECIPES_FILE, tr::LADDER_FILE] {
            files.push(self.hash_file(&self.project.path(f))?);
        }
        files.push(FileHash {
            path: format!("{} (tokenizer)", spec.rung),
            sha256: spec.tokenizer_sha256(),
        });
        files.push(FileHash {
            path: self.project.display(&spec.corpus.path),
            sha256: spec.corpus.sha256.clone(),
        });
        let data = tr::data_for(&spec).map_err(stop)?;
        let h = spec.hyper;
        let windows = data.val_windows(h.seq_len);
        let ln_v = (spec.config.vocab_size as f64).ln();
        let val_desc = format!(
            "{} validation windows × {} tokens",
            windows.len(),
            h.seq_len
        );
        let (observed, n, also, path): (f64, usize, Vec<(String, f64)>, String) = match check {
            TrainCheck::InitLoss => {
                let loss = tr::loss_of(
                    &seeded(&spec.config, h.seed).map_err(|e| stop(e.into()))?,
                    &windows,
                    h.batch,
                )
                .map_err(stop)?;
                let sigma2 = spec.config.hidden_size as f64 * 0.02f64.powi(2);
                (
                    (loss - ln_v).abs(),
                    windows.len() * h.seq_len,
                    named(&[
                        ("init_loss", loss),
                        ("ln_vocab", ln_v),
                        ("predicted_gap", sigma2 / 2.0),
                    ]),
                    format!("seeded init (seed {}), {val_desc}, f32 fast path", h.seed),
                )
            }
            TrainCheck::Overfit => {
                let recipes =
                    tr::load_recipes(&self.project.path(tr::RECIPES_FILE)).map_err(stop)?;
                let o = recipes.overfit;
                let text = &spec.corpus.text;
                let mut end = o.text_bytes.min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let tokens = spec
                    .tokenizer()
                    .map_err(stop)?
                    .encode(&text[..end])
                    .map_err(|e| Stop::Error(e.to_string()))?;
                let r = tr::overfit(&spec.config, &tokens, &o, None).map_err(stop)?;
                (
                    r.final_loss,
                    r.tokens,
                    named(&[("first_loss", r.first_loss), ("unigram_entropy_text", tr::unigram_entropy(&tokens))]),
                    format!("{} architecture on the first {end} corpus bytes ({} tokens) repeated, {} steps × {} × {} tokens, lr {}", spec.rung, r.tokens, o.steps, o.batch, o.seq_len, o.lr),
                )
            }
            TrainCheck::GradCheck => {
                let recipes =
                    tr::load_recipes(&self.project.path(tr::RECIPES_FILE)).map_err(stop)?;
                let g = recipes.grad_check;
                let ws = data.val_windows(g.seq_len);
                if ws.len() < g.batch {
                    return Err(Stop::Error(format!(
                        "validation split has {} windows of {} tokens, grad_check needs {}",
                        ws.len(),
                        g.seq_len,
                        g.batch
                    )));
                }
                let tokens: Vec<u32> = ws[..g.batch]
                    .iter()
                    .flat_map(|w| w.iter().copied())
                    .collect();
                let r = tr::grad_check(&spec.config, &tokens, &g, None).map_err(stop)?;
                (
                    r.max_rel_error,
                    r.coords,
                    // Every tensor's error, so a near miss shows where it is.
                    r.per_tensor
                        .iter()
                        .map(|(name, e)| (format!("rel_error {name}"), *e))
                        .collect(),
                    format!(
                        "f64, seeded init, worst tensor {}, {} coordinates, h = {}",
                        r.worst, r.coords, g.h
                    ),
                )
            }
            TrainCheck::Reload => {
                let t = self.trained(&recipe, files)?;
                let reference = t.summary.final_val_loss.ok_or_else(|| {
                    Stop::Error("the run recorded no final validation loss".into())
                })?;
                let weights = load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?;
                let scratch = Scratch::new(self, case);
                let r = tr::reload_check(&weights, reference, &windows, h.batch, &|w| {
                    tr::save_and_load(w, &scratch.0)
                })
                .map_err(stop)?;
                (
                    r.mismatches() as f64,
                    weights.param_count() as usize + 1,
                    named(&[
                        ("weight_mismatches", r.weight_mismatches as f64),
                        ("loss_at_end_of_training", r.reference_loss),
                        ("loss_after_reload", r.reloaded_loss),
                    ]),
                    format!("checkpoint → save_hf_folder → load_hf_folder; {val_desc}"),
                )
            }
            TrainCheck::Sampling => {
                let t = self.trained(&recipe, files)?;
                let recipes =
                    tr::load_recipes(&self.project.path(tr::RECIPES_FILE)).map_err(stop)?;
                let s = recipes.sampling;
                let model = Llama::load(
                    &load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?,
                    &LoadOptions::default(),
                )
                .map_err(|e| stop(e.into()))?;
                let prompt = spec
                    .tokenizer()
                    .map_err(stop)?
                    .encode(&s.prompt)
                    .map_err(|e| Stop::Error(e.to_string()))?;
                let check = tr::sampling_mismatches(
                    &mut |seed| {
                        tr::sample(
                            &model,
                            &prompt,
                            s.tokens,
                            s.temperature,
                            &mut SeededRng::new(seed),
                        )
                    },
                    s.seed,
                )
                .map_err(stop)?;
                (
                    check.violations() as f64,
                    s.tokens,
                    named(&[
                        ("same_seed_mismatches", check.same_seed_mismatches as f64),
                        ("other_seed_differs", f64::from(u8::from(check.other_seed_differs))),
                    ]),
                    format!(
                        "{} tokens after {:?} at temperature {}, seed {}",
                        s.tokens, s.prompt, s.temperature, s.seed
                    ),
                )
            }
            TrainCheck::SeedHash => {
                let t = self.trained(&recipe, files)?;
                let scratch = Scratch::new(self, case);
                let again =
                    tr::train(&spec, &data, &tr::RunOptions::new(&scratch.0)).map_err(stop)?;
                let a = load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?;
                let b = load_hf_folder(&scratch.0).map_err(|e| stop(e.into()))?;
                let diff = tr::weight_mismatches(&a, &b).map_err(stop)?;
                let same_file = again.model_file_sha256.is_some()
                    && again.model_file_sha256 == t.summary.model_file_sha256;
                (
                    diff as f64,
                    a.param_count() as usize,
                    named(&[
                        (
                            "weights_sha256_equal",
                            f64::from(u8::from(again.weights_sha256 == t.summary.weights_sha256)),
                        ),
                        ("model_file_sha256_equal", f64::from(u8::from(same_file))),
                    ]),
                    format!(
                        "cached run {} vs a fresh run {} ({} steps)",
                        short(&t.summary.weights_sha256),
                        short(&again.weights_sha256),
                        h.steps
                    ),
                )
            }
            TrainCheck::BeatsUnigram => {
                let t = self.trained(&recipe, files)?;
                let val = tr::loss_of(
                    &load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?,
                    &windows,
                    h.batch,
                )
                .map_err(stop)?;
                let hu = tr::unigram_entropy(&data.train);
                let xent =
                    tr::unigram_cross_entropy(&data.train, &data.val, spec.config.vocab_size);
                (
                    hu - val,
                    windows.len() * h.seq_len,
                    named(&[
                        ("val_loss", val),
                        ("unigram_entropy_train", hu),
                        ("unigram_xent_val_add_one", xent),
                    ]),
                    format!("trained checkpoint, {val_desc}"),
                )
            }
            TrainCheck::ReproducesCommitted => self.reproduces_committed(&case.model, &recipe, files)?,
            TrainCheck::ValLossRepro => {
                let t = self.trained(&recipe, files)?;
                let registered = t.recipe.registered_val_loss.ok_or_else(|| {
                    Stop::Error(format!(
                        "recipe '{recipe}' has no `registered_val_loss` in {}",
                        tr::RECIPES_FILE
                    ))
                })?;
                let val = tr::loss_of(
                    &load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?,
                    &windows,
                    h.batch,
                )
                .map_err(stop)?;
                (
                    (val - registered).abs(),
                    windows.len() * h.seq_len,
                    named(&[("val_loss", val), ("registered_val_loss", registered)]),
                    format!("trained checkpoint, {val_desc}"),
                )
            }
        };
        let mut ev: Evidence = self.evidence_for(
            case,
            observed,
            n,
            &format!("train_sanity {}: {path}", check.name()),
        );
        ev.also = also;
        Ok(Outcome::judge(ev))
    }

    /// A fresh training of `recipe` (the cached one) against the model's committed folder:
    /// weights that differ in any bit, plus one when the files' SHA-256 differ.
    fn reproduces_committed(&self, model: &str, recipe: &str, files: &mut Vec<FileHash>) -> Result<(f64, usize, Vec<(String, f64)>, String), Stop> {
        let folder = self.entry(model)?.folder.as_ref().ok_or_else(|| Stop::Error(format!("model '{model}' has no committed folder to reproduce (configs/models.toml: `folder = {{ path, sha256, recipe }}`)")))?;
        let dir = self.project.path(&folder.path);
        let committed = self.hash_file(&dir.join("model.safetensors"))?;
        files.push(committed.clone());
        let t = self.trained(recipe, files)?;
        let a = load_hf_folder(&dir).map_err(|e| stop(e.into()))?;
        let b = load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?;
        let diff = tr::weight_mismatches(&a, &b).map_err(stop)?;
        let same_file = t.summary.model_file_sha256.as_deref() == Some(committed.sha256.as_str());
        // The bytes are the claim: equal weights in a file whose metadata differs count too.
        Ok((
            (diff + usize::from(!same_file)) as f64,
            a.param_count() as usize + 1,
            named(&[("weight_mismatches", diff as f64), ("model_file_sha256_equal", f64::from(u8::from(same_file)))]),
            format!("committed {} ({}) vs a fresh training of recipe {recipe} ({})", folder.path, short(&committed.sha256), short(t.summary.model_file_sha256.as_deref().unwrap_or("?"))),
        ))
    }

    /// The recipe's cached checkpoint (trained now if absent), its files recorded.
    fn trained(&self, recipe: &str, files: &mut Vec<FileHash>) -> Result<Trained, Stop> {
        let t = tr::ensure_trained(&self.project, recipe).map_err(stop)?;
        files.push(self.hash_file(&t.dir.join("model.safetensors"))?);
        Ok(t)
    }
}

fn named(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}
