//! The bookkeeping every pre-registered record carries — a `[[claim]]` and a registered
//! `[[number]]` alike: why its bound, when it was written, whether before or after seeing
//! numbers, whether it is expected to hold, and whether a run retired it.
//!
//! The fields are declared once, by `registered_record!`, inside each record's struct
//! rather than in a `#[serde(flatten)]` sub-struct: serde does not support
//! `deny_unknown_fields` together with `flatten`, and a flattened struct is read through
//! a buffer that loses the TOML line numbers the load errors name.

/// Declares a registered record's struct: the fields written in the invocation, then the
/// registration fields (`rationale`, `registered`, `basis`, `expect`, `retired`), in that
/// order — the order they serialize in.
macro_rules! registered_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($field)*
            /// Why this bound (or number), written before the run that tests it.
            pub rationale: String,
            /// Registration date, `YYYY-MM-DD`.
            pub registered: String,
            /// Whether the bound was written before any run that tests it (`prior`) or after
            /// its author had seen numbers it judges (`observed`). Required: a reader must
            /// never have to guess whether a bound is a prediction or a fitted regression
            /// guard.
            pub basis: $crate::claim::Basis,
            /// `hold` for ordinary records, `fail` for registered negative claims.
            #[serde(default)]
            pub expect: $crate::claim::Expect,
            /// Set when a run falsified the record and it was withdrawn: the date and what
            /// was observed. A retired record stays on file (and in CLAIMS.md) but is no
            /// longer judged; a corrected prediction is a new record with its own id and
            /// date.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub retired: Option<String>,
        }
    };
}

pub(crate) use registered_record;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::claim::{parse_str, Basis, Expect};

    const CLAIM: &str = "[[claim]]\nid = \"T-1\"\nkind = \"oracle_drift\"\nstatement = \"s\"\n\
        subjects = { models = [\"tiny_1m\"] }\n\
        bound = { statistic = \"kl_mean\", op = \"<=\", value = 0.01 }\n\
        rationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"observed\"\n";
    const NUMBER: &str = "[[number]]\nid = \"T-1\"\nstatement = \"s\"\nrecords = \"r.jsonl\"\n\
        model = \"m\"\nvariant = \"a\"\nmetric = \"sc_rate\"\nvalue = 0.5\ntolerance = 0.1\n\
        rationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"observed\"\n";

    fn number(text: &str) -> Result<crate::claim::number::RegisteredNumber, String> {
        crate::claim::number::parse_registered(text, Path::new("n.toml"))
            .map(|mut v| v.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_records_read_the_same_fields_with_the_same_defaults() {
        let c = parse_str(CLAIM, Path::new("c.toml")).unwrap().remove(0);
        let n = number(NUMBER).unwrap();
        for (rationale, registered, basis, expect, retired) in [
            (&c.rationale, &c.registered, c.basis, c.expect, &c.retired),
            (&n.rationale, &n.registered, n.basis, n.expect, &n.retired),
        ] {
            assert_eq!(
                (rationale.as_str(), registered.as_str()),
                ("r", "2026-11-29")
            );
            assert_eq!(
                (basis, expect, retired),
                (Basis::Observed, Expect::Hold, &None)
            );
        }
        let retired = "retired = \"2026-11-30: falsified\"\n";
        let n = number(&format!("{NUMBER}expect = \"fail\"\n{retired}")).unwrap();
        assert_eq!(n.expect, Expect::Fail);
        assert_eq!(n.retired.as_deref(), Some("2026-11-30: falsified"));
    }

    #[test]
    fn both_records_refuse_a_missing_basis_and_an_unknown_field() {
        let no_basis = |t: &str| t.replace("basis = \"observed\"\n", "");
        let e = parse_str(&no_basis(CLAIM), Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("basis"), "{e}");
        let e = number(&no_basis(NUMBER)).unwrap_err();
        assert!(e.contains("basis"), "{e}");
        let e = parse_str(
            &format!("{CLAIM}rationale_2 = \"x\"\n"),
            Path::new("c.toml"),
        );
        assert!(e.unwrap_err().to_string().contains("rationale_2"));
        assert!(number(&format!("{NUMBER}rationale_2 = \"x\"\n"))
            .unwrap_err()
            .contains("rationale_2"));
    }
}
