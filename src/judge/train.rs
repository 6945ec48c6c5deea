//! `train_sanity` claims: each check of [`crate::train`]'s sanity measurements, run on the
//! model's registered recipe (configs/recipes.toml) and, where the check is about a trained
//! model, on the cached checkpoint of that recipe.

use super::{Context, Judge, JudgeError, Stop};
use crate::claim::{Case, TrainCheck};
use crate::fsutil::FileHash;
use crate::model::{load_hf_folder, seeded, Llama, LoadOptions};
use crate::outcome::{Evidence, Outcome};
use crate::run::{generate, Options, Sampler, Sampling};
use crate::runtime::Runtime;
use crate::tokenizer::TextTokenizer;
use crate::train::{self as tr, Data, TrainError, TrainSpec, Trained};
use candle_core::Device;
use std::path::PathBuf;
use std::sync::Arc;

/// Every training failure is an error, a missing corpus included: the corpus is part of
/// the checkout, so its absence is a broken setup, never a reason to skip.
fn stop(e: TrainError) -> Stop {
    Stop::Error(JudgeError::failed("", e))
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

/// What one check measured.
type Measured = (f64, usize, Vec<(String, f64)>, String);

/// What every check of a model's recipe shares.
struct Setup {
    recipe: String,
    /// The recipe on the case's runtime (`spec.runtime`).
    spec: TrainSpec,
    data: Arc<Data>,
    /// The runtime's device, opened.
    device: Device,
}

impl Setup {
    fn windows(&self) -> Vec<&[u32]> {
        self.data.val_windows(self.spec.hyper.seq_len)
    }

    fn val_desc(&self) -> String {
        format!(
            "{} validation windows × {} tokens",
            self.windows().len(),
            self.spec.hyper.seq_len
        )
    }

    fn val_tokens(&self) -> usize {
        self.windows().len() * self.spec.hyper.seq_len
    }

    /// Where the measurement ran, for the numerical path ("" on the CPU in f32, whose
    /// evidence reads as it did before runtimes existed).
    fn on(&self) -> String {
        match self.spec.runtime == Runtime::CPU {
            true => String::new(),
            false => format!(" on {}", self.spec.runtime.label()),
        }
    }
}

impl Judge {
    pub(super) fn train_sanity(
        &self,
        case: &Case,
        check: TrainCheck,
        files: &mut Vec<FileHash>,
    ) -> Result<Outcome, Stop> {
        // The device is opened before anything trains: no GPU here is a skip saying so.
        let run = self.runtime_of(case)?;
        let device = run.load_options()?.device;
        let runtime = Runtime {
            device: run.device,
            precision: run.precision,
        };
        let s = self.train_setup(&case.model, runtime, device, files)?;
        let (observed, n, also, path): Measured = match check {
            TrainCheck::InitLoss => self.init_loss(&s)?,
            TrainCheck::Overfit => self.overfit(&s)?,
            TrainCheck::GradCheck => self.grad_check(&s)?,
            TrainCheck::Reload => self.reload(case, &s, files)?,
            TrainCheck::Sampling => self.sampling(&s, files)?,
            TrainCheck::SeedHash => self.seed_hash(case, &s, files)?,
            TrainCheck::BeatsUnigram => self.beats_unigram(&s, files)?,
            TrainCheck::ReproducesCommitted => self.reproduces_committed(&case.model, &s, files)?,
            TrainCheck::ValLossRepro => self.val_loss_repro(&s, files)?,
        };
        let mut ev: Evidence = self.evidence_for(
            case,
            observed,
            n,
            &format!("train_sanity {}{}: {path}", check.name(), s.on()),
        );
        ev.also = also;
        Ok(Outcome::judge(ev))
    }

    /// The model's recipe on `runtime`, its spec and data, with the files they come from
    /// recorded. The case's runtime replaces the recipe's: a claim says where it trains.
    fn train_setup(
        &self,
        model: &str,
        runtime: Runtime,
        device: Device,
        files: &mut Vec<FileHash>,
    ) -> Result<Setup, Stop> {
        let entry = self.entry(model)?;
        let recipe = entry
            .recipe()
            .ok_or_else(|| Stop::rule(format!("model '{model}' is not trained by the harness (its registry entry needs `trained = {{ recipe = ... }}` or a folder with `recipe`)")))?
            .to_string();
        let (spec, _) = TrainSpec::from_recipe(&self.project, &recipe).map_err(stop)?;
        let spec = spec.on(runtime);
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
        Ok(Setup {
            recipe,
            spec,
            data,
            device,
        })
    }

    fn recipes(&self) -> Result<tr::Recipes, Stop> {
        tr::load_recipes(&self.project.path(tr::RECIPES_FILE)).map_err(stop)
    }

    /// Validation loss of the seeded init against ln(vocab).
    fn init_loss(&self, s: &Setup) -> Result<Measured, Stop> {
        let h = s.spec.hyper;
        let ln_v = (s.spec.config.vocab_size as f64).ln();
        let loss = tr::loss_of_on(
            &seeded(&s.spec.config, h.seed).map_err(|e| stop(e.into()))?,
            &s.windows(),
            h.batch,
            &s.device,
        )
        .map_err(stop)?;
        let sigma2 = s.spec.config.hidden_size as f64 * 0.02f64.powi(2);
        let also = named(&[
            ("init_loss", loss),
            ("ln_vocab", ln_v),
            ("predicted_gap", sigma2 / 2.0),
        ]);
        Ok((
            (loss - ln_v).abs(),
            s.val_tokens(),
            also,
            format!(
                "seeded init (seed {}), {}, f32 fast path",
                h.seed,
                s.val_desc()
            ),
        ))
    }

    /// The architecture drives the loss on a short repeated text towards zero.
    fn overfit(&self, s: &Setup) -> Result<Measured, Stop> {
        let o = self.recipes()?.overfit;
        let text = &s.spec.corpus.text;
        let mut end = o.text_bytes.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let tokens = s
            .spec
            .tokenizer()
            .map_err(stop)?
            .encode(&text[..end])
            .or_stop()?;
        let r = tr::overfit_on(&s.spec.config, &tokens, &o, None, s.spec.runtime).map_err(stop)?;
        let also = named(&[
            ("first_loss", r.first_loss),
            ("unigram_entropy_text", tr::unigram_entropy(&tokens)),
        ]);
        let path = format!(
            "{} architecture on the first {end} corpus bytes ({} tokens) repeated, {} steps × {} × {} tokens, lr {}",
            s.spec.rung, r.tokens, o.steps, o.batch, o.seq_len, o.lr
        );
        Ok((r.final_loss, r.tokens, also, path))
    }

    /// Backpropagation against central finite differences.
    fn grad_check(&self, s: &Setup) -> Result<Measured, Stop> {
        let g = self.recipes()?.grad_check;
        let ws = s.data.val_windows(g.seq_len);
        if ws.len() < g.batch {
            return Err(Stop::rule(format!(
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
        let r = tr::grad_check_on(&s.spec.config, &tokens, &g, None, &s.device).map_err(stop)?;
        // Every tensor's error, so a near miss shows where it is.
        let also = r
            .per_tensor
            .iter()
            .map(|(name, e)| (format!("rel_error {name}"), *e))
            .collect();
        Ok((
            r.max_rel_error,
            r.coords,
            also,
            format!(
                "f64, seeded init, worst tensor {}, {} coordinates, h = {}",
                r.worst, r.coords, g.h
            ),
        ))
    }

    /// Save → reload keeps every weight bit and the loss.
    fn reload(&self, case: &Case, s: &Setup, files: &mut Vec<FileHash>) -> Result<Measured, Stop> {
        let t = self.trained(s, files)?;
        let reference = t
            .summary
            .final_val_loss
            .ok_or_else(|| Stop::rule("the run recorded no final validation loss"))?;
        let weights = load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?;
        let scratch = Scratch::new(self, case);
        let r = tr::reload_check(
            &weights,
            reference,
            &s.windows(),
            s.spec.hyper.batch,
            &s.device,
            &|w| tr::save_and_load(w, &scratch.0),
        )
        .map_err(stop)?;
        let also = named(&[
            ("weight_mismatches", r.weight_mismatches as f64),
            ("loss_at_end_of_training", r.reference_loss),
            ("loss_after_reload", r.reloaded_loss),
        ]);
        Ok((
            r.mismatches() as f64,
            weights.param_count() as usize + 1,
            also,
            format!(
                "checkpoint → save_hf_folder → load_hf_folder; {}",
                s.val_desc()
            ),
        ))
    }

    /// Seeded sampling repeats itself, and another seed gives other tokens.
    fn sampling(&self, s: &Setup, files: &mut Vec<FileHash>) -> Result<Measured, Stop> {
        let t = self.trained(s, files)?;
        let c = self.recipes()?.sampling;
        let model = Llama::load(
            &load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?,
            &LoadOptions {
                device: s.device.clone(),
                ..LoadOptions::default()
            },
        )
        .map_err(|e| stop(e.into()))?;
        let tok = s.spec.tokenizer().map_err(stop)?;
        let prompt = tok.encode(&c.prompt).or_stop()?;
        let opts = |seed| Options {
            max_new: c.tokens,
            eos: None,
            sampler: Sampler::Seeded(Sampling::temperature(seed, c.temperature)),
        };
        let check = tr::sampling_mismatches(
            &mut |seed| generate(&model, &tok, &prompt, &opts(seed)).map(|g| g.tokens),
            c.seed,
        )?;
        let also = named(&[
            ("same_seed_mismatches", check.same_seed_mismatches as f64),
            (
                "other_seed_differs",
                f64::from(u8::from(check.other_seed_differs)),
            ),
        ]);
        Ok((
            check.violations() as f64,
            c.tokens,
            also,
            format!(
                "{} tokens after {:?} at temperature {}, seed {}",
                c.tokens, c.prompt, c.temperature, c.seed
            ),
        ))
    }

    /// Two trainings with one seed give the same weights.
    fn seed_hash(
        &self,
        case: &Case,
        s: &Setup,
        files: &mut Vec<FileHash>,
    ) -> Result<Measured, Stop> {
        let t = self.trained(s, files)?;
        let scratch = Scratch::new(self, case);
        let again = tr::train(&s.spec, &s.data, &tr::RunOptions::new(&scratch.0)).map_err(stop)?;
        let a = load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?;
        let b = load_hf_folder(&scratch.0).map_err(|e| stop(e.into()))?;
        let diff = tr::weight_mismatches(&a, &b).map_err(stop)?;
        let same_file = again.model_file_sha256.is_some()
            && again.model_file_sha256 == t.summary.model_file_sha256;
        let also = named(&[
            (
                "weights_sha256_equal",
                f64::from(u8::from(again.weights_sha256 == t.summary.weights_sha256)),
            ),
            ("model_file_sha256_equal", f64::from(u8::from(same_file))),
        ]);
        let path = format!(
            "cached run {} vs a fresh run {} ({} steps)",
            short(&t.summary.weights_sha256),
            short(&again.weights_sha256),
            s.spec.hyper.steps
        );
        Ok((diff as f64, a.param_count() as usize, also, path))
    }

    /// Held-out loss below the training text's unigram entropy.
    fn beats_unigram(&self, s: &Setup, files: &mut Vec<FileHash>) -> Result<Measured, Stop> {
        let val = self.trained_val_loss(s, files)?;
        let hu = tr::unigram_entropy(&s.data.train);
        let xent = tr::unigram_cross_entropy(&s.data.train, &s.data.val, s.spec.config.vocab_size);
        let also = named(&[
            ("val_loss", val),
            ("unigram_entropy_train", hu),
            ("unigram_xent_val_add_one", xent),
        ]);
        Ok((
            hu - val,
            s.val_tokens(),
            also,
            format!("trained checkpoint, {}", s.val_desc()),
        ))
    }

    /// Final validation loss reproduces the registered one.
    fn val_loss_repro(&self, s: &Setup, files: &mut Vec<FileHash>) -> Result<Measured, Stop> {
        let t = self.trained(s, files)?;
        let registered = t.recipe.registered_val_loss.ok_or_else(|| {
            Stop::rule(format!(
                "recipe '{}' has no `registered_val_loss` in {}",
                s.recipe,
                tr::RECIPES_FILE
            ))
        })?;
        let val = tr::loss_of(
            &load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?,
            &s.windows(),
            s.spec.hyper.batch,
        )
        .map_err(stop)?;
        let also = named(&[("val_loss", val), ("registered_val_loss", registered)]);
        Ok((
            (val - registered).abs(),
            s.val_tokens(),
            also,
            format!("trained checkpoint, {}", s.val_desc()),
        ))
    }

    /// The cached checkpoint's loss on the validation windows.
    fn trained_val_loss(&self, s: &Setup, files: &mut Vec<FileHash>) -> Result<f64, Stop> {
        let t = self.trained(s, files)?;
        tr::loss_of_on(
            &load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?,
            &s.windows(),
            s.spec.hyper.batch,
            &s.device,
        )
        .map_err(stop)
    }

    /// A fresh training of `recipe` (the cached one) against the model's committed folder:
    /// weights that differ in any bit, plus one when the files' SHA-256 differ.
    fn reproduces_committed(
        &self,
        model: &str,
        s: &Setup,
        files: &mut Vec<FileHash>,
    ) -> Result<Measured, Stop> {
        let recipe = &s.recipe;
        let folder = self.entry(model)?.folder.as_ref().ok_or_else(|| Stop::rule(format!("model '{model}' has no committed folder to reproduce (configs/models.toml: `folder = {{ path, sha256, recipe }}`)")))?;
        let dir = self.project.path(&folder.path);
        let committed = self.hash_file(&dir.join("model.safetensors"))?;
        files.push(committed.clone());
        let t = self.trained(s, files)?;
        let a = load_hf_folder(&dir).map_err(|e| stop(e.into()))?;
        let b = load_hf_folder(&t.dir).map_err(|e| stop(e.into()))?;
        let diff = tr::weight_mismatches(&a, &b).map_err(stop)?;
        let same_file = t.summary.model_file_sha256.as_deref() == Some(committed.sha256.as_str());
        // The bytes are the claim: equal weights in a file whose metadata differs count too.
        Ok((
            (diff + usize::from(!same_file)) as f64,
            a.param_count() as usize + 1,
            named(&[
                ("weight_mismatches", diff as f64),
                ("model_file_sha256_equal", f64::from(u8::from(same_file))),
            ]),
            format!(
                "committed {} ({}) vs a fresh training of recipe {recipe} ({})",
                folder.path,
                short(&committed.sha256),
                short(t.summary.model_file_sha256.as_deref().unwrap_or("?"))
            ),
        ))
    }

    /// The recipe's cached checkpoint on the case's runtime (trained now if absent), its
    /// files recorded.
    fn trained(&self, s: &Setup, files: &mut Vec<FileHash>) -> Result<Trained, Stop> {
        let t =
            tr::ensure_trained_on(&self.project, &s.recipe, Some(s.spec.runtime)).map_err(stop)?;
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
