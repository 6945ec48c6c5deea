//! `groundtruth bench generate`: records/s and tokens/s of greedy GenerationRecords on
//! held-out arithmetic problems at each batch size, per model, with the records of every
//! batch size checked equal to batch 1's (batching must not change a token). A benchmark,
//! never a test: the figures depend on the machine and its load, printed alongside.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::metrics::{Decoding, GenerationRecord};
use crate::model::{Llama, LoadOptions};
use crate::plan::{EXIT_HOLDS, EXIT_NOTHING_JUDGED};
use crate::problems::{Problem, Split};
use crate::project::Project;
use crate::run::{generate_records, Labels};
use crate::train::{SftConfig, SFT_FILE};

/// What `bench generate` was asked.
pub(super) struct Request<'a> {
    pub models: &'a [String],
    pub small_8m: Option<&'a Path>,
    pub batches: &'a [usize],
    pub problems: usize,
    pub max_new_tokens: u64,
}

/// Where a model named on the command line is, or why it is not here.
fn locate(project: &Project, name: &str, small_8m: Option<&Path>) -> Result<PathBuf, String> {
    match name {
        "tiny_1m" => Ok(project.path("models/tiny_1m")),
        "small_8m" => match small_8m {
            Some(p) => Ok(p.to_path_buf()),
            None => newest_trained(&project.out_dir().join("models/trained"), "small_8m-").ok_or_else(|| {
                format!("no trained small_8m in {} (the full suite's claims on small_8m train it there; or train one with `groundtruth train --recipe small_8m --out DIR`, tens of minutes on 2 cores, and pass --small-8m DIR)", project.display(&project.out_dir().join("models/trained")))
            }),
        },
        "smollm2" => {
            let p = crate::project::models_cache().join("SmolLM2-135M-Instruct.Q4_1.gguf");
            match p.is_file() {
                true => Ok(p),
                false => Err(format!("{} is not fetched: run ci/fetch-models.sh", p.display())),
            }
        }
        path => Ok(PathBuf::from(path)),
    }
}

/// The most recently written `prefix*` folder holding a `model.safetensors`.
fn newest_trained(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                && p.join("model.safetensors").is_file()
        })
        .max_by_key(|p| {
            std::fs::metadata(p.join("model.safetensors"))
                .and_then(|m| m.modified())
                .ok()
        })
}

/// Runs the benchmark: one table row per model × batch size.
pub(super) fn run(project: &Project, req: &Request) -> Result<u8> {
    if req.batches.is_empty() || req.batches.contains(&0) || req.problems == 0 {
        bail!("--batches must list sizes of at least 1, --problems at least 1");
    }
    let cfg = SftConfig::load(&project.path(SFT_FILE))?;
    let problems = cfg
        .problems
        .problems(Split::HeldOut, &[1, 2], req.problems, 20261129)
        .map_err(|e| anyhow::anyhow!("{}: {e}", project.path(SFT_FILE).display()))?;
    outln!(
        "bench generate: greedy records of {} held-out level-1/2 problems, {} new tokens at most (EOS stops a record early), {} threads, load average {} at start",
        problems.len(),
        req.max_new_tokens,
        rayon::current_num_threads(),
        super::bench::load_average()
    );
    outln!("| model | batch | records | tokens | seconds | records/s | tokens/s | vs batch {} | same records |", req.batches[0]);
    outln!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut measured = 0;
    for name in req.models {
        match locate(project, name, req.small_8m) {
            Ok(path) => {
                bench_model(name, &path, &problems, req)?;
                measured += 1;
            }
            Err(why) => outln!("| {name} | – | – | – | – | – | – | – | not measured: {why} |"),
        }
    }
    outln!("load average at end {}", super::bench::load_average());
    Ok(if measured == 0 {
        EXIT_NOTHING_JUDGED
    } else {
        EXIT_HOLDS
    })
}

/// Times `generate_records` on `path` at each batch size (after one untimed warm-up).
fn bench_model(name: &str, path: &Path, problems: &[Problem], req: &Request) -> Result<()> {
    let read = super::ppl::load_weights(path)?;
    let llama = Llama::load(&read.weights, &LoadOptions::default())
        .with_context(|| format!("{}", path.display()))?;
    let decoding = Decoding::greedy(Some(req.max_new_tokens));
    let labels = Labels {
        model: name,
        variant: "base",
    };
    let gen = |ps: &[Problem], batch: usize| -> Result<(Vec<GenerationRecord>, f64)> {
        let t0 = Instant::now();
        let r = generate_records(
            &llama,
            read.tokenizer.as_ref(),
            ps,
            &decoding,
            labels,
            batch,
            &mut |_| {},
        )?;
        Ok((r, t0.elapsed().as_secs_f64()))
    };
    gen(&problems[..problems.len().min(2)], 1)?;
    let mut first: Option<(Vec<GenerationRecord>, f64)> = None;
    for &batch in req.batches {
        let (records, secs) = gen(problems, batch)?;
        let tokens: usize = records
            .iter()
            .map(|r| r.token_entropies.as_ref().map_or(0, Vec::len))
            .sum();
        let (speedup, same) = match &first {
            None => ("1.00×".to_string(), "–".to_string()),
            Some((r0, s0)) => (
                format!("{:.2}×", s0 / secs),
                (if *r0 == records { "yes" } else { "NO" }).to_string(),
            ),
        };
        outln!(
            "| {name} | {batch} | {} | {tokens} | {secs:.2} | {:.2} | {:.0} | {speedup} | {same} |",
            records.len(),
            records.len() as f64 / secs,
            tokens as f64 / secs
        );
        if let Some((r0, _)) = &first {
            if *r0 != records {
                bail!("{name}: batch {batch} changed the records of batch {}: batching must not change a token", req.batches[0]);
            }
        } else {
            first = Some((records, secs));
        }
    }
    Ok(())
}
