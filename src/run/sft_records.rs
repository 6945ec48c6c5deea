//! Records of a registered number's `generate` source: the SFT recipe fine-tuned once per
//! source version (cached), a variant applied to it, the held-out problems generated.
//! One place for the claims harness's `metric_repro` cases and `groundtruth reproduce`.

use std::error::Error;

use super::{generate_records, Labels};
use crate::claim::number::GenerateSource;
use crate::metrics::{Decoding, GenerationRecord};
use crate::model::{Llama, LoadOptions};
use crate::problems::Split;
use crate::project::Project;
use crate::train::{SftConfig, SFT_FILE};
use crate::variant::Variant;

/// Why a generate source's records could not be made: what was being done, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SftRecordsError {
    /// What was being done (`sft recipe 'tiny_1m-arith': variant q8_0`).
    pub what: String,
    /// Why it failed.
    #[source]
    pub source: Box<dyn Error + Send + Sync>,
}

fn failed<E: Into<Box<dyn Error + Send + Sync>>>(
    what: String,
) -> impl FnOnce(E) -> SftRecordsError {
    move |e| SftRecordsError {
        what,
        source: e.into(),
    }
}

/// The records of `variant` (a harness variant name) of `g`'s SFT recipe on its held-out
/// problems, labelled `g.sft`/`variant`: greedy, or the seeds' sampling recipe from `g.seed`.
pub fn sft_records(
    project: &Project,
    g: &GenerateSource,
    variant: &str,
) -> Result<Vec<GenerationRecord>, SftRecordsError> {
    let sft_file = project.path(SFT_FILE);
    let cfg = SftConfig::load(&sft_file).map_err(failed(sft_file.display().to_string()))?;
    let problems = cfg
        .problems
        .problems(Split::HeldOut, &g.levels, g.problems, g.seed)
        .map_err(failed(sft_file.display().to_string()))?;
    let run = crate::subject::ensure_sft(project, &g.sft)
        .map_err(failed(format!("sft recipe '{}'", g.sft)))?;
    let at = || run.dir.display().to_string();
    let weights = crate::model::load_hf_folder(&run.dir).map_err(failed(at()))?;
    let tok = crate::tokenizer::HfTokenizer::from_folder(&run.dir).map_err(failed(at()))?;
    let used: Vec<u32> = problems
        .iter()
        .map(|p| crate::tokenizer::TextTokenizer::encode(&tok, &p.prompt()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed(format!("{}: tokenize the problems", at())))?
        .concat();
    let what = || format!("sft recipe '{}': variant {variant}", g.sft);
    let v = Variant::parse(variant).map_err(failed(what()))?;
    let crate::transform::Applied { weights: w, .. } =
        crate::transform::apply(&weights, &v, &used).map_err(failed(what()))?;
    let llama = Llama::load(&w, &LoadOptions::default()).map_err(failed(what()))?;
    let decoding = match g.sample {
        true => Decoding::seeds_recipe(g.seed, g.max_new_tokens),
        false => Decoding::greedy(Some(g.max_new_tokens)),
    };
    generate_records(
        &llama,
        &tok,
        &problems,
        &decoding,
        Labels {
            model: &g.sft,
            variant,
        },
        super::DEFAULT_BATCH,
        &mut |_| {},
    )
    .map_err(failed(what()))
}
