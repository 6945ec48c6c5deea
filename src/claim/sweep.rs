//! The rules of a `corruption_sweep` claim, checked once when it is loaded: its `seeds`,
//! and variants that differ in their severity alone (one bit class, region and storage
//! type), shaped as its statistic needs them.

use super::kind::ClaimKind;
use super::schema::Claim;
use crate::flipspec::Severity;
use crate::stats::{Measurement, Role, SweepStat};
use crate::variant::Variant;

/// More seeds per point than any sweep on two cores could run: a typo, not a sample.
const MAX_SEEDS: u64 = 100_000;

/// `seeds`: required by, and only allowed for, `corruption_sweep`; then the sweep's rules.
pub(super) fn validate(c: &Claim, variants: &[Variant]) -> Result<(), String> {
    match (c.kind, c.seeds) {
        (ClaimKind::CorruptionSweep, None) => {
            Err("field 'seeds' is required for kind 'corruption_sweep' (seeds per point)".into())
        }
        (ClaimKind::CorruptionSweep, Some(n)) => rules(c, variants, n),
        (_, None) => Ok(()),
        (k, Some(_)) => Err(format!(
            "field 'seeds' is only allowed for kind 'corruption_sweep', not '{}'",
            k.name()
        )),
    }
}

fn rules(c: &Claim, variants: &[Variant], seeds: u64) -> Result<(), String> {
    if !(1..=MAX_SEEDS).contains(&seeds) {
        return Err(format!(
            "field 'seeds': {seeds} is not between 1 and {MAX_SEEDS}"
        ));
    }
    let fail = |why: String| Err(format!("field 'subjects.variants': {why}"));
    if let Some(v) = c.subjects.variants.iter().find(|v| v.contains('~')) {
        return fail(format!(
            "'{v}' names a seed; a sweep measures every variant at seeds 0..{seeds} (field 'seeds')"
        ));
    }
    let mut severities = Vec::with_capacity(variants.len());
    for v in variants {
        let (
            Variant::Flip { storage, spec, .. },
            Variant::Flip {
                storage: s0,
                spec: p0,
                ..
            },
        ) = (v, &variants[0])
        else {
            return fail(format!("'{v}' is not a seeded bit flip"));
        };
        if (storage, spec.bits, spec.region) != (s0, p0.bits, p0.region) {
            return fail(format!("'{v}' differs from '{}' in more than its severity: a sweep varies the severity of one bit class in one region", variants[0]));
        }
        severities.push(spec.severity);
    }
    match c.bound.statistic.role_in(Measurement::Sweep) {
        Some(Role::Sweep(SweepStat::RateOrderViolations)) => ordered(&severities, seeds),
        Some(Role::Sweep(SweepStat::VulnerableShare)) => match severities.as_slice() {
            [Severity::Count(1)] => Ok(()),
            _ => fail("statistic vulnerable_share samples single flips: exactly one variant, with severity count=1".into()),
        },
        other => Err(format!(
            "field 'bound.statistic': '{}' has no role in kind 'corruption_sweep' ({other:?})",
            c.bound.statistic.name()
        )),
    }
}

/// A rate axis: at least two points, one kind of severity, strictly ascending, and a
/// spread (two seeds or more) to judge an inversion against.
fn ordered(severities: &[Severity], seeds: u64) -> Result<(), String> {
    if severities.len() < 2 {
        return Err("field 'subjects.variants': statistic rate_order_violations orders at least two severities".into());
    }
    if seeds < 2 {
        return Err(
            "field 'seeds': statistic rate_order_violations needs a spread: at least 2 seeds"
                .into(),
        );
    }
    for w in severities.windows(2) {
        let same_kind = matches!(
            (w[0], w[1]),
            (Severity::Count(_), Severity::Count(_)) | (Severity::Rate(_), Severity::Rate(_))
        );
        if !same_kind || w[0] >= w[1] {
            return Err(format!(
                "field 'subjects.variants': severities must be all counts or all rates, strictly ascending ({} then {})",
                w[0].name(),
                w[1].name()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::claim::parse_str;
    use std::path::Path;

    const GOOD: &str = "[[claim]]\nid = \"S\"\nkind = \"corruption_sweep\"\nstatement = \"s\"\n\
        subjects = { models = [\"m\"], variants = [\"flip-mantissa@rate=1e6\", \"flip-mantissa@rate=1e7\"] }\n\
        seeds = 3\nbound = { statistic = \"rate_order_violations\", op = \"==\", value = 0 }\n\
        rationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\n";

    fn err(text: &str) -> String {
        parse_str(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_sweep_claim_reads_and_its_rules_are_enforced() {
        let spec = &parse_str(GOOD, Path::new("x.toml")).unwrap()[0];
        assert_eq!(spec.as_written().seeds, Some(3));
        assert!(err(&GOOD.replace("seeds = 3\n", "")).contains("field 'seeds' is required"));
        assert!(err(&GOOD.replace("seeds = 3", "seeds = 1")).contains("at least 2 seeds"));
        assert!(err(&GOOD.replace("seeds = 3", "seeds = 0")).contains("not between"));
        assert!(err(&GOOD.replace("rate=1e7\"", "rate=1e7~1\"")).contains("names a seed"));
        assert!(err(&GOOD.replace("rate=1e7", "rate=1e5")).contains("strictly ascending"));
        assert!(err(&GOOD.replace("rate=1e7", "count=3")).contains("all counts or all rates"));
        assert!(err(&GOOD.replace("mantissa@rate=1e7", "exp@rate=1e7"))
            .contains("more than its severity"));
        assert!(
            err(&GOOD.replace("mantissa@rate=1e7", "mantissa:norm@rate=1e7"))
                .contains("more than its severity")
        );
        assert!(err(&GOOD.replace("\"flip-mantissa@rate=1e7\"", "\"q8_0\""))
            .contains("not a seeded bit flip"));
        let share = GOOD
            .replace("rate_order_violations", "vulnerable_share")
            .replace("op = \"==\", value = 0", "op = \">=\", value = 0.5");
        assert!(err(&share).contains("exactly one variant, with severity count=1"));
        let one = share.replace(
            "[\"flip-mantissa@rate=1e6\", \"flip-mantissa@rate=1e7\"]",
            "[\"flip-exp-msb@count=1\"]",
        );
        assert!(parse_str(&one, Path::new("x.toml")).is_ok());
        assert!(err(&one.replace("count=1", "count=2")).contains("count=1"));
        // Elsewhere `seeds` is refused, and a sweep statistic needs the sweep kind.
        let detect = "[[claim]]\nid = \"D\"\nkind = \"corruption_detect\"\nstatement = \"s\"\n\
            subjects = { models = [\"m\"], variants = [\"flip-exp\"] }\nseeds = 2\n\
            bound = { statistic = \"kl_max\", op = \">\", value = 1 }\n\
            rationale = \"r\"\nregistered = \"2026-11-29\"\nbasis = \"prior\"\n";
        assert!(err(detect).contains("only allowed for kind 'corruption_sweep'"));
        assert!(err(&detect
            .replace("seeds = 2\n", "")
            .replace("kl_max", "vulnerable_share"))
        .contains("not measured by kind 'corruption_detect'"));
    }
}
