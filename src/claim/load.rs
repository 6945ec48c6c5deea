//! Reading `claims/*.toml` strictly: syntax, closed enums, and the rules between fields.

use super::schema::{Claim, ClaimFile, ClaimKind, Compare, Expect, Statistic};
use crate::fsutil::{read_text, FsError};
use crate::input::parse_toml;
use crate::runtime::Runtime;
use crate::variant::Variant;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why claims could not be loaded: every message names the file and the line.
pub type ClaimError = crate::input::InputError;

/// A claim together with where it was registered.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The claim as written.
    pub claim: Claim,
    /// The file it came from.
    pub file: PathBuf,
    /// The line of its `[[claim]]` header.
    pub line: usize,
}

/// Every claim of a folder (`*.toml`, sorted by file name), ids unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Registered>, ClaimError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FsError { path: dir.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in &files {
        all.extend(load_file(f)?);
    }
    if all.is_empty() {
        return Err(ClaimError::invalid(dir, 1, "no claims found (expected *.toml files with [[claim]] tables)"));
    }
    let mut seen: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for r in &all {
        if let Some((f, l)) = seen.insert(r.claim.id.clone(), (r.file.clone(), r.line)) {
            return Err(invalid(&r.file, r.line, format!("duplicate claim id '{}' (first at {}:{l})", r.claim.id, f.display())));
        }
    }
    Ok(all)
}

/// The claims of one file, checked.
pub fn load_file(file: &Path) -> Result<Vec<Registered>, ClaimError> {
    let text = read_text(file)?;
    parse_str(&text, file)
}

/// Parses claims from text; `file` is only used in messages.
pub fn parse_str(text: &str, file: &Path) -> Result<Vec<Registered>, ClaimError> {
    let parsed: ClaimFile = parse_toml(text, file)?;
    let headers = header_lines(text);
    parsed
        .claim
        .into_iter()
        .enumerate()
        .map(|(i, claim)| {
            let line = headers.get(i).copied().unwrap_or(1);
            check(&claim).map_err(|msg| invalid(file, line, format!("claim '{}': {msg}", claim.id)))?;
            Ok(Registered { claim, file: file.to_path_buf(), line })
        })
        .collect()
}

fn header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[claim]]"))
        .map(|(i, _)| i + 1)
        .collect()
}

fn invalid(file: &Path, line: usize, msg: String) -> ClaimError {
    ClaimError::invalid(file, line, msg)
}

/// The rules between fields that serde cannot express.
fn check(c: &Claim) -> Result<(), String> {
    let id_ok = !c.id.is_empty() && c.id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !id_ok {
        return Err("field 'id' must be non-empty ASCII letters, digits, '-' or '_'".into());
    }
    for (field, value) in [("statement", &c.statement), ("rationale", &c.rationale)] {
        if value.trim().is_empty() {
            return Err(format!("field '{field}' is empty"));
        }
    }
    check_date(&c.registered).map_err(|m| format!("field 'registered': {m}"))?;
    if !c.kind.statistics().contains(&c.bound.statistic) {
        let allowed: Vec<_> = c.kind.statistics().iter().map(|s| s.name()).collect();
        return Err(format!(
            "field 'bound.statistic': '{}' is not measured by kind '{}' (allowed: {})",
            c.bound.statistic.name(),
            c.kind.name(),
            allowed.join(", ")
        ));
    }
    if !c.bound.value.is_finite() {
        return Err("field 'bound.value' must be finite".into());
    }
    let needs_compare = matches!(c.kind, ClaimKind::Consistency | ClaimKind::RoundTrip);
    match (needs_compare, c.compare) {
        (true, None) => return Err(format!("field 'compare' is required for kind '{}'", c.kind.name())),
        (false, None) => {}
        (_, Some(cmp)) if cmp.kind() != c.kind => {
            return Err(format!("field 'compare': '{}' belongs to kind '{}', not '{}'", cmp.name(), cmp.kind().name(), c.kind.name()))
        }
        (_, Some(_)) => {}
    }
    match (c.kind, c.check) {
        (ClaimKind::TrainSanity, None) => return Err("field 'check' is required for kind 'train_sanity'".into()),
        (ClaimKind::TrainSanity, Some(check)) => {
            if c.bound.statistic != check.statistic() {
                return Err(format!(
                    "field 'bound.statistic': check '{}' measures '{}', not '{}'",
                    check.name(),
                    check.statistic().name(),
                    c.bound.statistic.name()
                ));
            }
            if c.subjects.variants.iter().any(|v| !Variant::parse(v).is_ok_and(|v| v == Variant::Base)) {
                return Err("field 'subjects.variants': kind 'train_sanity' is about the trained model itself (variants = [\"base\"])".into());
            }
        }
        (_, None) => {}
        (k, Some(_)) => return Err(format!("field 'check' is only allowed for kind 'train_sanity', not '{}'", k.name())),
    }
    check_stored_as(c)?;
    check_tie_margin(c)?;
    check_runtimes(c)?;
    if c.subjects.models.is_empty() {
        return Err("field 'subjects.models' is empty".into());
    }
    if c.subjects.variants.is_empty() {
        return Err("field 'subjects.variants' is empty".into());
    }
    check_chain(c)?;
    for v in &c.subjects.variants {
        let variant = crate::variant::Variant::parse(v).map_err(|e| format!("field 'subjects.variants': {e}"))?;
        match (c.kind, variant.is_corruption()) {
            (ClaimKind::CorruptionDetect, false) => {
                return Err(format!("field 'subjects.variants': '{v}' is not a corruption (kind corruption_detect)"))
            }
            // The base on another runtime against the base on the CPU is a runtime's drift;
            // the base on the CPU against itself would measure nothing.
            (ClaimKind::QuantDrift, _) if variant == Variant::Base && !c.runtimes.is_empty() && !c.runtimes.contains(&Runtime::CPU) => {}
            (ClaimKind::QuantDrift, _) if !variant.is_dtype_change() => {
                return Err(format!("field 'subjects.variants': '{v}' is not a quantization (kind quant_drift)"))
            }
            (ClaimKind::Consistency, _) if c.compare == Some(Compare::QuantMatmul) && (variant.is_dtype_change() && !variant.is_quantized()) => {
                return Err(format!("field 'subjects.variants': '{v}' has no quantized weights to compare (compare = quant_matmul)"))
            }
            (ClaimKind::QuantOrder, _) if !variant.is_dtype_change() => {
                return Err(format!("field 'subjects.variants': '{v}' is not a quantization (kind quant_order)"))
            }
            (ClaimKind::ReferenceAgreement, _) if !crate::transform::has_reference_quantizer(&variant) => {
                return Err(format!("field 'subjects.variants': '{v}' has no reference quantizer fixture (q4_0, q4_1, q5_0, q5_1, q8_0)"))
            }
            (ClaimKind::Structure | ClaimKind::RoundTrip, _) if variant.is_corruption() => {
                return Err(format!("field 'subjects.variants': '{v}' is a corruption; kind '{}' takes base or a storage type", c.kind.name()))
            }
            (ClaimKind::Structure, _) if variant == Variant::Base && c.bound.statistic == Statistic::LayoutMismatches => {
                return Err("field 'subjects.variants': 'base' compared with itself proves nothing (statistic layout_mismatches)".into())
            }
            _ => {}
        }
    }
    if c.expect == Expect::Fail && c.kind.is_exact_match() {
        // A registered negative claim must still be judged; nothing to reject, just documented.
    }
    Ok(())
}

/// `runtimes`: each once; other than the CPU only for kinds that run the subject there, and
/// not for a statistic that never runs it.
fn check_runtimes(c: &Claim) -> Result<(), String> {
    let r = &c.runtimes;
    if let Some((_, dup)) = r.iter().enumerate().find(|(i, x)| r[..*i].contains(x)) {
        return Err(format!("field 'runtimes': '{}' is listed twice", dup.label()));
    }
    let Some(other) = r.iter().find(|x| **x != Runtime::CPU) else { return Ok(()) };
    if !c.kind.runs_on_runtime() {
        return Err(format!("field 'runtimes': kind '{}' does not run the subject on a runtime, so '{}' would change nothing (only 'cpu')", c.kind.name(), other.label()));
    }
    if c.bound.statistic == Statistic::ConfigMismatches {
        return Err(format!("field 'runtimes': statistic config_mismatches reads the checkpoint's config and runs nothing on '{}'", other.label()));
    }
    Ok(())
}

/// `stored_as` selects checkpoints for oracle kinds: `["oracle"]` for parity kinds, a list
/// of storage types for drift, nothing else.
fn check_stored_as(c: &Claim) -> Result<(), String> {
    use super::schema::{STORAGE_TYPES, STORED_AS_ORACLE};
    let s = &c.stored_as;
    if s.is_empty() {
        return Ok(());
    }
    if let Some(dup) = s.iter().enumerate().find(|(i, x)| s[..*i].contains(x)) {
        return Err(format!("field 'stored_as': '{}' is listed twice", dup.1));
    }
    match c.kind {
        ClaimKind::GreedyParity | ClaimKind::OracleParity => {
            if s.len() != 1 || s[0] != STORED_AS_ORACLE {
                return Err(format!("field 'stored_as': kind '{}' takes [\"{STORED_AS_ORACLE}\"] (checkpoints stored as the oracle's own type)", c.kind.name()));
            }
        }
        ClaimKind::OracleDrift => {
            if let Some(bad) = s.iter().find(|t| !STORAGE_TYPES.contains(&t.as_str())) {
                return Err(format!("field 'stored_as': '{bad}' is not a storage type (allowed: {})", STORAGE_TYPES.join(", ")));
            }
        }
        ClaimKind::TokenizerParity
        | ClaimKind::QuantDrift
        | ClaimKind::CorruptionDetect
        | ClaimKind::Consistency
        | ClaimKind::Determinism
        | ClaimKind::QuantOrder
        | ClaimKind::ReferenceAgreement
        | ClaimKind::RoundTrip
        | ClaimKind::Structure
        | ClaimKind::TrainSanity => {
            return Err(format!("field 'stored_as' is only allowed for greedy_parity, oracle_parity and oracle_drift, not '{}'", c.kind.name()))
        }
    }
    Ok(())
}

/// A near-tie is forgiven only within a registered margin: `greedy_match_or_tie` needs
/// one (a retired claim keeps what it was registered with), no other statistic takes one.
fn check_tie_margin(c: &Claim) -> Result<(), String> {
    match (c.bound.statistic == Statistic::GreedyMatchOrTie, c.tie_margin) {
        (true, None) if c.retired.is_none() => Err("field 'tie_margin' is required for statistic 'greedy_match_or_tie' (the near-tie margin in nats)".into()),
        (true, None) => Ok(()),
        (true, Some(m)) if !(m.is_finite() && m >= 0.0) => Err(format!("field 'tie_margin': {m} is not a finite number ≥ 0")),
        (true, Some(_)) => Ok(()),
        (false, None) => Ok(()),
        (false, Some(_)) => Err(format!("field 'tie_margin' is only allowed with statistic 'greedy_match_or_tie', not '{}'", c.bound.statistic.name())),
    }
}

/// A chain compares variants with each other: at least two, none twice.
fn check_chain(c: &Claim) -> Result<(), String> {
    if !c.kind.per_chain() {
        return Ok(());
    }
    let v = &c.subjects.variants;
    if v.len() < 2 {
        return Err(format!("field 'subjects.variants': kind '{}' orders a chain of at least two variants, found {}", c.kind.name(), v.len()));
    }
    if let Some(dup) = v.iter().enumerate().find(|(i, x)| v[..*i].contains(x)) {
        return Err(format!("field 'subjects.variants': '{}' is listed twice", dup.1));
    }
    Ok(())
}

fn check_date(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && (1..=12).contains(&parts[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&parts[2].parse::<u32>().unwrap_or(0));
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not a YYYY-MM-DD date"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[claim]]
id = "QD-1"
kind = "quant_drift"
statement = "Q8_0 keeps mean KL under 0.01"
subjects = { models = ["tiny-seeded"], variants = ["q8_0"] }
bound = { statistic = "kl_mean", op = "<=", value = 0.01 }
rationale = "llama.cpp reports 0.0014 for Q8_0 on an 8B model"
registered = "2026-11-22"
basis = "prior"
"#;

    fn err(text: &str) -> String {
        parse_str(text, Path::new("claims/x.toml")).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_good_claim() {
        let r = parse_str(GOOD, Path::new("claims/x.toml")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].line, 2);
        assert_eq!(r[0].claim.expect, Expect::Hold);
    }

    #[test]
    fn unknown_kind_names_file_and_line() {
        let e = err(&GOOD.replace("quant_drift", "vibes"));
        assert!(e.starts_with("claims/x.toml:4:"), "{e}");
        assert!(e.contains("vibes"), "{e}");
    }

    #[test]
    fn unknown_operator_and_statistic_are_errors() {
        assert!(err(&GOOD.replace("\"<=\"", "\"~\"")).starts_with("claims/x.toml:7:"));
        assert!(err(&GOOD.replace("kl_mean", "kl_average")).contains("kl_average"));
    }

    #[test]
    fn unknown_field_is_an_error() {
        let e = err(&GOOD.replace("registered", "tolerance = 3\nregistered"));
        assert!(e.contains("tolerance"), "{e}");
    }

    #[test]
    fn statistic_must_fit_kind() {
        let e = err(&GOOD.replace("kl_mean", "token_mismatches"));
        assert!(e.starts_with("claims/x.toml:2: claim 'QD-1': field 'bound.statistic'"), "{e}");
    }

    #[test]
    fn bad_date_and_variant_are_errors() {
        assert!(err(&GOOD.replace("2026-11-22", "yesterday")).contains("registered"));
        assert!(err(&GOOD.replace("\"q8_0\"", "\"q9_9\"")).contains("q9_9"));
        assert!(err(&GOOD.replace("\"q8_0\"", "\"flip-exp\"")).contains("not a quantization"));
    }

    #[test]
    fn train_sanity_needs_a_check_that_measures_its_statistic() {
        let ts = GOOD
            .replace("kind = \"quant_drift\"", "kind = \"train_sanity\"\ncheck = \"init_loss\"")
            .replace("variants = [\"q8_0\"]", "variants = [\"base\"]")
            .replace("kl_mean", "loss_gap_nats");
        assert!(parse_str(&ts, Path::new("claims/x.toml")).is_ok());
        assert!(err(&ts.replace("check = \"init_loss\"\n", "")).contains("field 'check' is required"));
        assert!(err(&ts.replace("init_loss", "overfit")).contains("measures 'final_loss'"));
        assert!(err(&ts.replace("\"base\"", "\"q8_0\"")).contains("trained model itself"));
        assert!(err(&GOOD.replace("registered", "check = \"reload\"\nregistered")).contains("only allowed for kind 'train_sanity'"));
        assert!(err(&ts.replace("init_loss", "vibes")).contains("vibes"));
    }

    #[test]
    fn basis_is_required_and_closed() {
        let e = err(&GOOD.replace("basis = \"prior\"\n", ""));
        assert!(e.contains("basis"), "{e}");
        let e = err(&GOOD.replace("\"prior\"", "\"guessed\""));
        assert!(e.contains("guessed"), "{e}");
        let observed = parse_str(&GOOD.replace("\"prior\"", "\"observed\""), Path::new("claims/x.toml")).unwrap();
        assert_eq!(observed[0].claim.basis, super::super::schema::Basis::Observed);
    }

    #[test]
    fn stored_as_is_closed_and_fits_the_kind() {
        let drift = GOOD.replace("quant_drift", "oracle_drift").replace("\"q8_0\"]", "\"base\"]");
        let with = |s: &str| drift.replace("registered", &format!("stored_as = {s}\nregistered"));
        assert!(parse_str(&with("[\"q8_0\", \"q4_k\"]"), Path::new("claims/x.toml")).is_ok());
        assert!(err(&with("[\"q9_9\"]")).contains("not a storage type"));
        assert!(err(&with("[\"oracle\"]")).contains("not a storage type"));
        assert!(err(&with("[\"q8_0\", \"q8_0\"]")).contains("listed twice"));
        let parity = drift.replace("oracle_drift", "oracle_parity").replace("registered", "stored_as = [\"oracle\"]\nregistered");
        assert!(parse_str(&parity, Path::new("claims/x.toml")).is_ok());
        assert!(err(&parity.replace("[\"oracle\"]", "[\"q8_0\"]")).contains("takes [\"oracle\"]"));
        assert!(err(&GOOD.replace("registered", "stored_as = [\"q8_0\"]\nregistered")).contains("only allowed for"));
    }

    #[test]
    fn greedy_match_or_tie_needs_a_registered_margin() {
        let g = GOOD
            .replace("quant_drift", "greedy_parity")
            .replace("\"q8_0\"]", "\"base\"]")
            .replace("statistic = \"kl_mean\", op = \"<=\", value = 0.01", "statistic = \"greedy_match_or_tie\", op = \">=\", value = 1");
        assert!(err(&g).contains("field 'tie_margin' is required"));
        assert!(parse_str(&g.replace("registered", "tie_margin = 0.05\nregistered"), Path::new("claims/x.toml")).is_ok());
        assert!(err(&g.replace("registered", "tie_margin = -1.0\nregistered")).contains("tie_margin"));
        // A retired claim keeps what it was registered with.
        assert!(parse_str(&g.replace("registered", "retired = \"2026-11-28: superseded\"\nregistered"), Path::new("claims/x.toml")).is_ok());
        assert!(err(&GOOD.replace("registered", "tie_margin = 0.05\nregistered")).contains("only allowed with statistic"));
    }

    #[test]
    fn missing_field_is_an_error() {
        let e = err(&GOOD.replace("rationale = \"llama.cpp reports 0.0014 for Q8_0 on an 8B model\"\n", ""));
        assert!(e.contains("rationale"), "{e}");
    }

    #[test]
    fn runtimes_are_typed_once_each_and_only_where_a_judge_runs_the_subject() {
        let with = |rt: &str| GOOD.replace("basis", &format!("runtimes = [{rt}]\nbasis"));
        let ok = parse_str(&with("\"cpu\", \"cuda\", \"cuda-bf16\""), Path::new("claims/x.toml")).unwrap();
        assert_eq!(ok[0].claim.case_runtimes().iter().map(|r| r.label()).collect::<Vec<_>>(), ["cpu", "cuda", "cuda-bf16"]);
        assert_eq!(parse_str(GOOD, Path::new("claims/x.toml")).unwrap()[0].claim.case_runtimes(), [Runtime::CPU]);
        assert!(err(&with("\"cuda:1\"")).contains("the GPU ordinal is the run's --device"));
        assert!(err(&with("\"gpu\"")).contains("expected cpu, cuda"));
        assert!(err(&with("\"cuda\", \"cuda\"")).contains("'cuda' is listed twice"));
        let structure = with("\"cuda\"").replace("quant_drift", "structure").replace("kl_mean", "bad_tensors");
        assert!(err(&structure).contains("kind 'structure' does not run the subject"), "{}", err(&structure));
        // The base against itself on the CPU measures nothing; on another runtime it is
        // that runtime's drift.
        let base = |rt: &str| with(rt).replace("[\"q8_0\"]", "[\"base\"]");
        assert!(err(&GOOD.replace("[\"q8_0\"]", "[\"base\"]")).contains("is not a quantization"));
        assert!(err(&base("\"cpu\", \"cuda\"")).contains("is not a quantization"));
        assert!(parse_str(&base("\"cuda\", \"cpu-bf16\""), Path::new("claims/x.toml")).is_ok());
    }
}
