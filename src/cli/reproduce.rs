//! `groundtruth reproduce`: whether the registered metric numbers (claims/metrics/*.toml)
//! still hold, on committed records files or on records generated fresh from a seeded SFT.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::excerpt::excerpt;
use crate::fsutil::{atomic_write, sha256_hex};
use crate::judge::registered::{
    judge, parse_registered, registered_files, ticket, GenerateSource, Judged, RegisteredNumber,
    Source,
};
use crate::metrics::{
    read_records, records_jsonl, report, GenerationRecord, MetricsConfig, MetricsReport,
    METRICS_FILE,
};
use crate::plan::{EXIT_FALSIFIED, EXIT_HOLDS, EXIT_NOTHING_JUDGED};
use crate::project::Project;

/// What `groundtruth reproduce` was asked.
pub(super) struct Request<'a> {
    pub registered: &'a [PathBuf],
    pub id: Option<&'a str>,
    pub tickets: Option<&'a Path>,
    pub records_out: Option<&'a Path>,
}

/// One source's records, read or generated once, and scored once.
struct Scored {
    records: Vec<GenerationRecord>,
    sha256: String,
    report: MetricsReport,
}

/// The registered numbers of `files` (every `claims/metrics/*.toml` when none), ids unique
/// across files, only `id` when given.
fn load_numbers(
    project: &Project,
    files: &[PathBuf],
    id: Option<&str>,
) -> Result<Vec<(PathBuf, RegisteredNumber)>> {
    let files = match files.is_empty() {
        true => registered_files(&project.root)?,
        false => files.to_vec(),
    };
    let mut numbers: Vec<(PathBuf, RegisteredNumber)> = Vec::new();
    for f in &files {
        super::commands::given_file(
            f,
            "registered",
            "a file of [[number]] tables, as claims/metrics/*.toml",
        )?;
        for n in parse_registered(&crate::fsutil::read_text(f)?, f)? {
            if let Some((other, _)) = numbers.iter().find(|(_, m)| m.id == n.id) {
                bail!(
                    "{}: number '{}' is also registered in {}",
                    f.display(),
                    excerpt(&n.id),
                    other.display()
                );
            }
            numbers.push((f.clone(), n));
        }
    }
    if let Some(id) = id {
        numbers.retain(|(_, n)| n.id == id);
        if numbers.is_empty() {
            bail!(
                "no registered number has id '{}' (in {} file(s))",
                excerpt(id),
                files.len()
            );
        }
    }
    Ok(numbers)
}

/// The sources the numbers read, by key, each with the variants it must hold.
type Wanted<'a> = BTreeMap<String, (Source<'a>, BTreeSet<&'a str>)>;

/// One judged number: its file, the number, the judgement, its records' hash.
type JudgedNumber<'a> = (&'a Path, &'a RegisteredNumber, Judged, &'a str);

/// Judges the registered numbers (every file read, every record generated and every
/// number judged before anything is written), prints one line per number and a ticket per
/// number that did not behave as registered; exit 1 when there is one, 3 when nothing was
/// judged.
pub(super) fn run(project: &Project, req: &Request) -> Result<u8> {
    let cfg = MetricsConfig::load(&project.path(METRICS_FILE))?;
    let numbers = load_numbers(project, req.registered, req.id)?;
    let active: Vec<&(PathBuf, RegisteredNumber)> = numbers
        .iter()
        .filter(|(_, n)| n.retired.is_none())
        .collect();
    let wanted = wanted(&active)?;
    let scored = score(project, &wanted, &cfg)?;
    let mut judged: Vec<JudgedNumber> = Vec::new();
    for (file, n) in &active {
        let s = &scored[&n.source().map_err(|e| anyhow!("{e}"))?.key()];
        let j = judge(n, &s.records, &s.report, &cfg)
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        judged.push((file, n, j, &s.sha256));
    }
    for (_, n) in numbers.iter().filter(|(_, n)| n.retired.is_some()) {
        outln!(
            "{:<8} retired: {}",
            n.id,
            n.retired.as_deref().unwrap_or_default()
        );
    }
    if judged.is_empty() {
        errln!("nothing judged: every selected number is retired");
        return Ok(EXIT_NOTHING_JUDGED);
    }
    if let Some(dir) = req.records_out {
        write_generated(dir, &wanted, &scored)?;
    }
    let failed = print_judged(&judged, req.tickets, &cfg)?;
    errln!(
        "{} registered number(s) judged: {} as registered, {failed} not",
        judged.len(),
        judged.len() - failed
    );
    Ok(if failed == 0 {
        EXIT_HOLDS
    } else {
        EXIT_FALSIFIED
    })
}

/// Which variants each source must hold.
fn wanted<'a>(active: &[&'a (PathBuf, RegisteredNumber)]) -> Result<Wanted<'a>> {
    let mut wanted: Wanted = BTreeMap::new();
    for (_, n) in active {
        let src = n.source().map_err(|e| anyhow!("number '{}': {e}", n.id))?;
        wanted
            .entry(src.key())
            .or_insert_with(|| (src, BTreeSet::new()))
            .1
            .extend(n.variants());
    }
    Ok(wanted)
}

/// Each source's records (read, or generated for the variants it must hold), their hash
/// and their metrics, once per source.
fn score(
    project: &Project,
    wanted: &Wanted,
    cfg: &MetricsConfig,
) -> Result<BTreeMap<String, Scored>> {
    let mut scored: BTreeMap<String, Scored> = BTreeMap::new();
    for (key, (src, variants)) in wanted {
        let (records, sha256) = match src {
            Source::File(p) => read_records(&project.path(p))?,
            Source::Generate(g) => {
                let r = generated(project, g, variants)?;
                let sha = sha256_hex(records_jsonl(&r).as_bytes());
                (r, sha)
            }
        };
        let report = report(&records, &sha256, cfg);
        scored.insert(
            key.clone(),
            Scored {
                records,
                sha256,
                report,
            },
        );
    }
    Ok(scored)
}

/// Prints one line per judged number and each ticket (written into `tickets` when given);
/// returns how many numbers did not behave as registered.
fn print_judged(
    judged: &[JudgedNumber],
    tickets: Option<&Path>,
    cfg: &MetricsConfig,
) -> Result<usize> {
    let mut written = Vec::new();
    for (file, n, j, sha) in judged {
        let mark = if j.passed { "ok  " } else { "FAIL" };
        outln!(
            "{mark} {:<8} {}/{}: registered {}; observed {:.6} [{:.6}, {:.6}] (n {}): {}",
            n.id,
            n.model,
            n.variant,
            j.registered,
            j.observed,
            j.ci[0],
            j.ci[1],
            j.n,
            j.verdict
        );
        if !j.passed {
            written.push((n.id.clone(), ticket(n, j, file, sha, cfg)));
        }
    }
    for (id, t) in &written {
        outln!("\n{t}");
        if let Some(dir) = tickets {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: create the tickets folder", dir.display()))?;
            atomic_write(&dir.join(format!("{id}.md")), t.as_bytes())?;
        }
    }
    Ok(written.len())
}

/// Writes each generated source's records to `dir/<recipe>-<sha256 prefix>.jsonl`.
fn write_generated(dir: &Path, wanted: &Wanted, scored: &BTreeMap<String, Scored>) -> Result<()> {
    for (key, (src, _)) in wanted {
        if let Source::Generate(g) = src {
            let s = &scored[key];
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: create the records folder", dir.display()))?;
            let path = dir.join(format!("{}-{}.jsonl", g.sft, &s.sha256[..12]));
            atomic_write(&path, records_jsonl(&s.records).as_bytes())?;
            errln!("wrote {} records to {}", s.records.len(), path.display());
        }
    }
    Ok(())
}

/// Records of `variants` of SFT recipe `g.sft` (fine-tuned now unless cached) on the
/// held-out problems `g` names.
fn generated(
    project: &Project,
    g: &GenerateSource,
    variants: &BTreeSet<&str>,
) -> Result<Vec<GenerationRecord>> {
    let mut out = Vec::new();
    for v in variants {
        errln!("generating records of {}/{v}", g.sft);
        out.extend(crate::run::sft_records(project, g, v)?);
    }
    Ok(out)
}
