//! Reading `claims/*.toml` strictly: syntax and closed enums here, the rules between
//! fields in [`ClaimSpec::resolve`].

use super::schema::ClaimFile;
use super::spec::ClaimSpec;
use crate::fsutil::read_text;
use crate::input::parse_toml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why claims could not be loaded: every message names the file and the line.
pub type ClaimError = crate::input::InputError;

/// Every claim of a folder (`*.toml`, sorted by file name), ids unique.
pub fn load_dir(dir: &Path) -> Result<Vec<ClaimSpec>, ClaimError> {
    let files = crate::fsutil::toml_files(dir)?;
    let mut all = Vec::new();
    for f in &files {
        all.extend(load_file(f)?);
    }
    if all.is_empty() {
        return Err(ClaimError::invalid(
            dir,
            1,
            "no claims found (expected *.toml files with [[claim]] tables)",
        ));
    }
    let mut seen: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for r in &all {
        if let Some((f, l)) = seen.insert(r.id.clone(), (r.file.clone(), r.line)) {
            return Err(invalid(
                &r.file,
                r.line,
                format!(
                    "duplicate claim id '{}' (first at {}:{l})",
                    r.id,
                    f.display()
                ),
            ));
        }
    }
    Ok(all)
}

/// Every claim of `root`'s `claims/` ([`load_dir`]) and every registered number of its
/// `claims/metrics/` as a `metric_repro` claim, ids unique across both.
pub fn load_with_numbers(root: &Path, claims_dir: &Path) -> Result<Vec<ClaimSpec>, ClaimError> {
    let mut all = load_dir(claims_dir)?;
    for n in super::number::load_numbers(root)? {
        if let Some(c) = all.iter().find(|c| c.id == n.id) {
            return Err(invalid(
                &n.file,
                n.line,
                format!(
                    "number '{}' has the id of claim '{}' at {}:{}",
                    n.id,
                    c.id,
                    c.file.display(),
                    c.line
                ),
            ));
        }
        all.push(n);
    }
    Ok(all)
}

/// The claims of one file, checked.
pub fn load_file(file: &Path) -> Result<Vec<ClaimSpec>, ClaimError> {
    let text = read_text(file)?;
    parse_str(&text, file)
}

/// Parses claims from text; `file` is only used in messages.
pub fn parse_str(text: &str, file: &Path) -> Result<Vec<ClaimSpec>, ClaimError> {
    let parsed: ClaimFile = parse_toml(text, file)?;
    let headers = header_lines(text);
    parsed
        .claim
        .into_iter()
        .enumerate()
        .map(|(i, claim)| {
            let line = headers.get(i).copied().unwrap_or(1);
            let id = claim.id.clone();
            ClaimSpec::resolve(claim, file.to_path_buf(), line)
                .map_err(|msg| invalid(file, line, format!("claim '{id}': {msg}")))
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
        parse_str(text, Path::new("claims/x.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_a_good_claim() {
        let r = parse_str(GOOD, Path::new("claims/x.toml")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].line, 2);
        assert_eq!(r[0].expect, super::super::schema::Expect::Hold);
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
        assert!(
            e.starts_with("claims/x.toml:2: claim 'QD-1': field 'bound.statistic'"),
            "{e}"
        );
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
            .replace(
                "kind = \"quant_drift\"",
                "kind = \"train_sanity\"\ncheck = \"init_loss\"",
            )
            .replace("variants = [\"q8_0\"]", "variants = [\"base\"]")
            .replace("kl_mean", "loss_gap_nats");
        assert!(parse_str(&ts, Path::new("claims/x.toml")).is_ok());
        assert!(
            err(&ts.replace("check = \"init_loss\"\n", "")).contains("field 'check' is required")
        );
        assert!(err(&ts.replace("init_loss", "overfit")).contains("measures 'final_loss'"));
        assert!(err(&ts.replace("\"base\"", "\"q8_0\"")).contains("trained model itself"));
        assert!(
            err(&GOOD.replace("registered", "check = \"reload\"\nregistered"))
                .contains("only allowed for kind 'train_sanity'")
        );
        assert!(err(&ts.replace("init_loss", "vibes")).contains("vibes"));
    }

    #[test]
    fn basis_is_required_and_closed() {
        let e = err(&GOOD.replace("basis = \"prior\"\n", ""));
        assert!(e.contains("basis"), "{e}");
        let e = err(&GOOD.replace("\"prior\"", "\"guessed\""));
        assert!(e.contains("guessed"), "{e}");
        let observed = parse_str(
            &GOOD.replace("\"prior\"", "\"observed\""),
            Path::new("claims/x.toml"),
        )
        .unwrap();
        assert_eq!(observed[0].basis, super::super::schema::Basis::Observed);
    }

    #[test]
    fn stored_as_is_closed_and_fits_the_kind() {
        let drift = GOOD
            .replace("quant_drift", "oracle_drift")
            .replace("\"q8_0\"]", "\"base\"]");
        let with = |s: &str| drift.replace("registered", &format!("stored_as = {s}\nregistered"));
        assert!(parse_str(&with("[\"q8_0\", \"q4_k\"]"), Path::new("claims/x.toml")).is_ok());
        assert!(err(&with("[\"q9_9\"]")).contains("not a storage type"));
        assert!(err(&with("[\"oracle\"]")).contains("not a storage type"));
        assert!(err(&with("[\"q8_0\", \"q8_0\"]")).contains("listed twice"));
        let parity = drift
            .replace("oracle_drift", "oracle_parity")
            .replace("registered", "stored_as = [\"oracle\"]\nregistered");
        assert!(parse_str(&parity, Path::new("claims/x.toml")).is_ok());
        assert!(err(&parity.replace("[\"oracle\"]", "[\"q8_0\"]")).contains("takes [\"oracle\"]"));
        assert!(
            err(&GOOD.replace("registered", "stored_as = [\"q8_0\"]\nregistered"))
                .contains("only allowed for")
        );
    }

    #[test]
    fn greedy_match_or_tie_needs_a_registered_margin() {
        let g = GOOD
            .replace("quant_drift", "greedy_parity")
            .replace("\"q8_0\"]", "\"base\"]")
            .replace(
                "statistic = \"kl_mean\", op = \"<=\", value = 0.01",
                "statistic = \"greedy_match_or_tie\", op = \">=\", value = 1",
            );
        assert!(err(&g).contains("field 'tie_margin' is required"));
        assert!(parse_str(
            &g.replace("registered", "tie_margin = 0.05\nregistered"),
            Path::new("claims/x.toml")
        )
        .is_ok());
        assert!(
            err(&g.replace("registered", "tie_margin = -1.0\nregistered")).contains("tie_margin")
        );
        // A retired claim keeps what it was registered with.
        assert!(parse_str(
            &g.replace(
                "registered",
                "retired = \"2026-11-28: superseded\"\nregistered"
            ),
            Path::new("claims/x.toml")
        )
        .is_ok());
        assert!(
            err(&GOOD.replace("registered", "tie_margin = 0.05\nregistered"))
                .contains("only allowed with statistic")
        );
    }

    #[test]
    fn missing_field_is_an_error() {
        let e = err(&GOOD.replace(
            "rationale = \"llama.cpp reports 0.0014 for Q8_0 on an 8B model\"\n",
            "",
        ));
        assert!(e.contains("rationale"), "{e}");
    }

    #[test]
    fn runtimes_are_typed_once_each_and_only_where_a_judge_runs_the_subject() {
        let with = |rt: &str| GOOD.replace("basis", &format!("runtimes = [{rt}]\nbasis"));
        let ok = parse_str(
            &with("\"cpu\", \"cuda\", \"cuda-bf16\""),
            Path::new("claims/x.toml"),
        )
        .unwrap();
        assert_eq!(
            ok[0].runtimes.iter().map(|r| r.label()).collect::<Vec<_>>(),
            ["cpu", "cuda", "cuda-bf16"]
        );
        assert_eq!(
            parse_str(GOOD, Path::new("claims/x.toml")).unwrap()[0].runtimes,
            [crate::runtime::Runtime::CPU]
        );
        assert!(err(&with("\"cuda:1\"")).contains("the GPU ordinal is the run's --device"));
        assert!(err(&with("\"gpu\"")).contains("expected cpu, cuda"));
        assert!(err(&with("\"cuda\", \"cuda\"")).contains("'cuda' is listed twice"));
        let structure = with("\"cuda\"")
            .replace("quant_drift", "structure")
            .replace("kl_mean", "bad_tensors");
        assert!(
            err(&structure).contains("kind 'structure' does not run the subject"),
            "{}",
            err(&structure)
        );
        // The base against itself on the CPU measures nothing; on another runtime it is
        // that runtime's drift.
        let base = |rt: &str| with(rt).replace("[\"q8_0\"]", "[\"base\"]");
        assert!(err(&GOOD.replace("[\"q8_0\"]", "[\"base\"]")).contains("is not a quantization"));
        assert!(err(&base("\"cpu\", \"cuda\"")).contains("is not a quantization"));
        assert!(parse_str(&base("\"cuda\", \"cpu-bf16\""), Path::new("claims/x.toml")).is_ok());
    }

    #[test]
    fn training_checks_take_only_the_runtimes_they_can_honour() {
        let claim = |check: &str, stat: &str, rt: &str| {
            format!(
                "[[claim]]\nid = \"TS-99\"\nkind = \"train_sanity\"\ncheck = \"{check}\"\nstatement = \"s\"\nsubjects = {{ models = [\"tiny_1m\"] }}\nbound = {{ statistic = \"{stat}\", op = \"<=\", value = 0.5 }}\nruntimes = [{rt}]\nrationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\n"
            )
        };
        let ok = |c: &str| {
            parse_str(c, Path::new("claims/x.toml")).unwrap()[0]
                .runtimes
                .len()
        };
        assert_eq!(
            ok(&claim("overfit", "final_loss", "\"cuda\", \"cuda-bf16\"")),
            2
        );
        assert_eq!(ok(&claim("seed_hash", "bit_mismatches", "\"cpu-bf16\"")), 1);
        assert_eq!(ok(&claim("grad_check", "rel_grad_error", "\"cuda\"")), 1);
        let e = err(&claim("grad_check", "rel_grad_error", "\"cuda-bf16\""));
        assert!(
            e.contains("runs in f32 whatever the precision") && e.contains("'cuda'"),
            "{e}"
        );
        let e = err(&claim("reproduces_committed", "bit_mismatches", "\"cuda\""));
        assert!(e.contains("numbers made on the CPU"), "{e}");
        let e = err(&claim(
            "val_loss_repro",
            "val_loss_delta",
            "\"cpu\", \"cpu-bf16\"",
        ));
        assert!(e.contains("numbers made on the CPU"), "{e}");
    }
}
