//! [`ClaimSpec`]: a claim resolved from what its file says ([`Claim`]) into what a judge
//! needs, typed: the kind with its parameters ([`Kind`]), parsed variants, where it was
//! registered. Every rule between fields is checked here, once.

use super::kind::{
    ClaimKind, Compare, Compared, Kind, RuntimeUse, StoredAs, TrainCheck, STORAGE_TYPES,
    STORED_AS_ORACLE,
};
use super::schema::{Basis, Bound, Claim, Expect, Subjects};
use crate::runtime::Runtime;
use crate::stats::{Measurement, OracleStat, ParentStat, Role, Statistic};
use crate::variant::Variant;
use std::path::PathBuf;

/// A registered claim, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSpec {
    /// Stable identifier, unique across `claims/` (e.g. `QD-3`).
    pub id: String,
    /// The kind, with everything its judge dispatches on.
    pub kind: Kind,
    /// The claim in one sentence, as a reader would state it.
    pub statement: String,
    /// Model names from `configs/models.toml`.
    pub models: Vec<String>,
    /// The variants it is about (a chain, in order, for `quant_order`).
    pub variants: Vec<Variant>,
    /// The runtimes its cases run on (a case dimension; the CPU in f32 unless the claim
    /// names others), each once.
    pub runtimes: Vec<Runtime>,
    /// Prompt set file, when not the default.
    pub prompts: Option<String>,
    /// The falsification criterion.
    pub bound: Bound,
    /// Registered to hold or to fail.
    pub expect: Expect,
    /// Whether the bound is a prediction or was written after seeing numbers.
    pub basis: Basis,
    /// Why this bound.
    pub rationale: String,
    /// Registration date, `YYYY-MM-DD`.
    pub registered: String,
    /// Why and when it was withdrawn; a retired claim expands to no case.
    pub retired: Option<String>,
    /// The file it came from.
    pub file: PathBuf,
    /// The line of its `[[claim]]` header.
    pub line: usize,
}

impl ClaimSpec {
    /// Resolves `c`, registered at `file:line`; the error is the broken rule, naming the field.
    pub fn resolve(c: Claim, file: PathBuf, line: usize) -> Result<ClaimSpec, String> {
        check_text(&c)?;
        if c.kind == ClaimKind::MetricRepro {
            return Err(format!("kind 'metric_repro' is registered as [[number]] tables in {}/*.toml (a records file or generate source, a metric, a value with a tolerance or a bound on the interval), not as a [[claim]]", super::number::REGISTERED_DIR));
        }
        let role = c
            .bound
            .statistic
            .role_in(c.kind.measurement())
            .ok_or_else(|| not_measured(&c))?;
        if !c.bound.value.is_finite() {
            return Err("field 'bound.value' must be finite".into());
        }
        let compared = compared(&c)?;
        let check = train_check(&c)?;
        let stored_as = stored_as(&c)?;
        check_tie_margin(&c)?;
        let variants = variants(&c)?;
        super::sweep::validate(&c, &variants)?;
        let runtimes = runtimes(&c, check)?;
        let kind = kind(&c, role, compared, check, stored_as)?;
        Ok(ClaimSpec {
            id: c.id,
            kind,
            statement: c.statement,
            models: c.subjects.models,
            variants,
            runtimes,
            prompts: c.prompts,
            bound: c.bound,
            expect: c.expect,
            basis: c.basis,
            rationale: c.rationale,
            registered: c.registered,
            retired: c.retired,
            file,
            line,
        })
    }

    /// The claim as its file states it (what [`ClaimSpec::resolve`] read back).
    pub fn as_written(&self) -> Claim {
        let fields = self.kind.fields();
        Claim {
            id: self.id.clone(),
            kind: self.kind.claim_kind(),
            statement: self.statement.clone(),
            subjects: Subjects {
                models: self.models.clone(),
                variants: self.variants.iter().map(Variant::to_string).collect(),
            },
            prompts: self.prompts.clone(),
            compare: fields.compare,
            check: fields.check,
            stored_as: fields.stored_as.names(),
            tie_margin: fields.tie_margin,
            seeds: fields.seeds,
            runtimes: match self.runtimes.as_slice() {
                [Runtime::CPU] => vec![],
                rs => rs.to_vec(),
            },
            bound: self.bound.clone(),
            rationale: self.rationale.clone(),
            registered: self.registered.clone(),
            basis: self.basis,
            expect: self.expect,
            retired: self.retired.clone(),
        }
    }

    /// The falsification criterion in words: the bound (`kl_mean <= 0.01`), or for a
    /// registered number its registration (`sc_rate = 0.8 ± 0% (relative)`).
    pub fn criterion(&self) -> String {
        match &self.kind {
            Kind::MetricRepro(n) => {
                format!("{} (judged as {})", n.criterion(), self.bound.render())
            }
            Kind::TokenizerParity
            | Kind::GreedyParity { .. }
            | Kind::OracleParity { .. }
            | Kind::OracleDrift { .. }
            | Kind::QuantDrift(_)
            | Kind::CorruptionDetect(_)
            | Kind::CorruptionSweep { .. }
            | Kind::Consistency(..)
            | Kind::Determinism
            | Kind::QuantOrder(_)
            | Kind::ReferenceAgreement
            | Kind::RoundTrip(_)
            | Kind::Structure(_)
            | Kind::TrainSanity(_) => self.bound.render(),
        }
    }

    /// Whether it is about `model`'s `variant`.
    pub fn covers(&self, model: &str, variant: Variant) -> bool {
        self.models.iter().any(|m| m == model) && self.variants.contains(&variant)
    }
}

fn check_text(c: &Claim) -> Result<(), String> {
    let id_ok = !c.id.is_empty()
        && c.id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !id_ok {
        return Err("field 'id' must be non-empty ASCII letters, digits, '-' or '_'".into());
    }
    for (field, value) in [("statement", &c.statement), ("rationale", &c.rationale)] {
        if value.trim().is_empty() {
            return Err(format!("field '{field}' is empty"));
        }
    }
    check_date(&c.registered).map_err(|m| format!("field 'registered': {m}"))
}

fn not_measured(c: &Claim) -> String {
    let allowed: Vec<_> = c.kind.statistics().iter().map(|s| s.name()).collect();
    format!(
        "field 'bound.statistic': '{}' is not measured by kind '{}' (allowed: {})",
        c.bound.statistic.name(),
        c.kind.name(),
        allowed.join(", ")
    )
}

/// The `compare` field: required by, and only allowed for, the kinds it belongs to.
fn compared(c: &Claim) -> Result<Option<Compared>, String> {
    let owner = |cmp: Compare| match cmp.resolve() {
        Compared::Paths(_) => ClaimKind::Consistency,
        Compared::Files(_) => ClaimKind::RoundTrip,
    };
    match c.compare {
        None if matches!(
            c.kind.measurement(),
            Measurement::Paths | Measurement::RoundTrip
        ) =>
        {
            Err(format!(
                "field 'compare' is required for kind '{}'",
                c.kind.name()
            ))
        }
        None => Ok(None),
        Some(cmp) if owner(cmp) != c.kind => Err(format!(
            "field 'compare': '{}' belongs to kind '{}', not '{}'",
            cmp.name(),
            owner(cmp).name(),
            c.kind.name()
        )),
        Some(cmp) => Ok(Some(cmp.resolve())),
    }
}

/// The `check` field: required by `train_sanity` (whose statistic it fixes), refused elsewhere.
fn train_check(c: &Claim) -> Result<Option<TrainCheck>, String> {
    match (c.kind, c.check) {
        (ClaimKind::TrainSanity, None) => {
            Err("field 'check' is required for kind 'train_sanity'".into())
        }
        (ClaimKind::TrainSanity, Some(check)) => {
            if c.bound.statistic != check.statistic() {
                return Err(format!(
                    "field 'bound.statistic': check '{}' measures '{}', not '{}'",
                    check.name(),
                    check.statistic().name(),
                    c.bound.statistic.name()
                ));
            }
            if c.subjects
                .variants
                .iter()
                .any(|v| !Variant::parse(v).is_ok_and(|v| v == Variant::Base))
            {
                return Err("field 'subjects.variants': kind 'train_sanity' is about the trained model itself (variants = [\"base\"])".into());
            }
            Ok(Some(check))
        }
        (_, None) => Ok(None),
        (k, Some(_)) => Err(format!(
            "field 'check' is only allowed for kind 'train_sanity', not '{}'",
            k.name()
        )),
    }
}

/// `stored_as` selects checkpoints for oracle kinds: `["oracle"]` for parity kinds, a list
/// of storage types for drift, nothing else.
fn stored_as(c: &Claim) -> Result<StoredAs, String> {
    let s = &c.stored_as;
    if s.is_empty() {
        return Ok(StoredAs::Unrestricted);
    }
    if let Some(dup) = s.iter().enumerate().find(|(i, x)| s[..*i].contains(x)) {
        return Err(format!("field 'stored_as': '{}' is listed twice", dup.1));
    }
    match (c.kind.is_exact_match(), c.kind.measurement()) {
        (true, _) if s.len() != 1 || s[0] != STORED_AS_ORACLE => {
            Err(format!("field 'stored_as': kind '{}' takes [\"{STORED_AS_ORACLE}\"] (checkpoints stored as the oracle's own type)", c.kind.name()))
        }
        (true, _) => Ok(StoredAs::OraclesOwn),
        (false, Measurement::Oracle) => match s.iter().find(|t| !STORAGE_TYPES.contains(&t.as_str())) {
            Some(bad) => Err(format!("field 'stored_as': '{bad}' is not a storage type (allowed: {})", STORAGE_TYPES.join(", "))),
            None => Ok(StoredAs::Types(s.clone())),
        },
        (false, _) => Err(format!("field 'stored_as' is only allowed for greedy_parity, oracle_parity and oracle_drift, not '{}'", c.kind.name())),
    }
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

/// The subjects, parsed, and the rules between a kind and its variants.
fn variants(c: &Claim) -> Result<Vec<Variant>, String> {
    if c.subjects.models.is_empty() {
        return Err("field 'subjects.models' is empty".into());
    }
    if c.subjects.variants.is_empty() {
        return Err("field 'subjects.variants' is empty".into());
    }
    check_chain(c)?;
    let mut out = Vec::with_capacity(c.subjects.variants.len());
    for v in &c.subjects.variants {
        let variant = Variant::parse(v).map_err(|e| format!("field 'subjects.variants': {e}"))?;
        check_variant(c, v, variant)?;
        out.push(variant);
    }
    Ok(out)
}

/// `runtimes`: each once; other than the CPU only for kinds that run the subject there, and
/// not for a statistic that never runs it. None written: the CPU in f32.
fn runtimes(c: &Claim, check: Option<TrainCheck>) -> Result<Vec<Runtime>, String> {
    let r = &c.runtimes;
    if let Some((_, dup)) = r.iter().enumerate().find(|(i, x)| r[..*i].contains(x)) {
        return Err(format!(
            "field 'runtimes': '{}' is listed twice",
            dup.label()
        ));
    }
    if let Some(other) = r.iter().find(|x| **x != Runtime::CPU) {
        if !c.kind.runs_on_runtime() {
            return Err(format!("field 'runtimes': kind '{}' does not run the subject on a runtime, so '{}' would change nothing (only 'cpu')", c.kind.name(), other.label()));
        }
        if c.bound.statistic == Statistic::ConfigMismatches {
            return Err(format!("field 'runtimes': statistic config_mismatches reads the checkpoint's config and runs nothing on '{}'", other.label()));
        }
    }
    if let Some(check) = check {
        train_check_runtimes(check, r)?;
    }
    Ok(match r.is_empty() {
        true => vec![Runtime::CPU],
        false => r.clone(),
    })
}

/// The runtimes a training check can honour ([`TrainCheck::on_runtime`]).
fn train_check_runtimes(check: TrainCheck, r: &[Runtime]) -> Result<(), String> {
    use crate::runtime::Precision;
    let refused = r.iter().find(|x| match check.on_runtime() {
        RuntimeUse::CpuOnly => **x != Runtime::CPU,
        RuntimeUse::Device => x.precision != Precision::F32,
        RuntimeUse::DeviceAndPrecision => false,
    });
    match (refused, check.on_runtime()) {
        (None, _) => Ok(()),
        (Some(x), RuntimeUse::CpuOnly) => Err(format!("field 'runtimes': check {} compares with numbers made on the CPU in f32, so '{}' would change the question (only 'cpu')", check.name(), x.label())),
        (Some(x), _) => Err(format!("field 'runtimes': check {} runs in f32 whatever the precision, so '{}' would be a label nothing uses (use '{}')", check.name(), x.label(), Runtime { precision: Precision::F32, ..*x }.label())),
    }
}

/// A chain compares variants with each other: at least two, none twice.
fn check_chain(c: &Claim) -> Result<(), String> {
    // A sweep's variants are checked with its statistic (`super::sweep::validate`).
    if c.kind.cases() != super::kind::CaseShape::PerChain || c.kind == ClaimKind::CorruptionSweep {
        return Ok(());
    }
    let v = &c.subjects.variants;
    if v.len() < 2 {
        return Err(format!("field 'subjects.variants': kind '{}' orders a chain of at least two variants, found {}", c.kind.name(), v.len()));
    }
    if let Some(dup) = v.iter().enumerate().find(|(i, x)| v[..*i].contains(x)) {
        return Err(format!(
            "field 'subjects.variants': '{}' is listed twice",
            dup.1
        ));
    }
    Ok(())
}

/// Whether `variant` (written `v`) is something the claim's kind can judge.
fn check_variant(c: &Claim, v: &str, variant: Variant) -> Result<(), String> {
    let fail = |why: String| Err(format!("field 'subjects.variants': {why}"));
    match c.kind {
        ClaimKind::CorruptionDetect if !variant.is_corruption() => fail(format!(
            "'{v}' is not a corruption (kind corruption_detect)"
        )),
        ClaimKind::CorruptionSweep if !matches!(variant, Variant::Flip { .. }) => fail(format!(
            "'{v}' is not a seeded bit flip [DTYPE+]flip-BITS[:REGION]@SEVERITY (kind corruption_sweep)"
        )),
        // The base on another runtime against the base on the CPU is a runtime's drift;
        // the base on the CPU against itself would measure nothing.
        ClaimKind::QuantDrift
            if variant == Variant::Base
                && !c.runtimes.is_empty()
                && !c.runtimes.contains(&Runtime::CPU) =>
        {
            Ok(())
        }
        ClaimKind::QuantDrift if !variant.is_dtype_change() => {
            fail(format!("'{v}' is not a quantization (kind quant_drift)"))
        }
        ClaimKind::Consistency
            if c.compare == Some(Compare::QuantMatmul)
                && (variant.is_dtype_change() && !variant.is_quantized()) =>
        {
            fail(format!(
                "'{v}' has no quantized weights to compare (compare = quant_matmul)"
            ))
        }
        ClaimKind::QuantOrder if !variant.is_dtype_change() => {
            fail(format!("'{v}' is not a quantization (kind quant_order)"))
        }
        ClaimKind::ReferenceAgreement if !crate::transform::has_reference_quantizer(&variant) => {
            fail(format!(
                "'{v}' has no reference quantizer fixture (q4_0, q4_1, q5_0, q5_1, q8_0)"
            ))
        }
        ClaimKind::Structure | ClaimKind::RoundTrip if variant.is_corruption() => fail(format!(
            "'{v}' is a corruption; kind '{}' takes base or a storage type",
            c.kind.name()
        )),
        ClaimKind::Structure
            if variant == Variant::Base && c.bound.statistic == Statistic::LayoutMismatches =>
        {
            fail("'base' compared with itself proves nothing (statistic layout_mismatches)".into())
        }
        ClaimKind::TokenizerParity
        | ClaimKind::GreedyParity
        | ClaimKind::OracleParity
        | ClaimKind::OracleDrift
        | ClaimKind::QuantDrift
        | ClaimKind::CorruptionDetect
        | ClaimKind::CorruptionSweep
        | ClaimKind::Consistency
        | ClaimKind::Determinism
        | ClaimKind::QuantOrder
        | ClaimKind::ReferenceAgreement
        | ClaimKind::RoundTrip
        | ClaimKind::Structure
        | ClaimKind::TrainSanity
        | ClaimKind::MetricRepro => Ok(()),
    }
}

/// The typed kind, from the pieces already checked: the statistic's role in the kind's
/// measurement, the comparison, the training check and the checkpoint selection. Each
/// `else` is unreachable after those checks and kept as an error, never a guess.
fn kind(
    c: &Claim,
    role: Role,
    compared: Option<Compared>,
    check: Option<TrainCheck>,
    stored_as: StoredAs,
) -> Result<Kind, String> {
    let mismatch = || role_mismatch(c);
    Ok(match c.kind {
        ClaimKind::TokenizerParity => Kind::TokenizerParity,
        ClaimKind::GreedyParity => Kind::GreedyParity {
            stored_as,
            tie_margin: c.tie_margin,
        },
        ClaimKind::OracleParity => Kind::OracleParity {
            stored_as,
            stat: oracle_stat(c, role)?,
        },
        ClaimKind::OracleDrift => Kind::OracleDrift {
            stored_as,
            stat: oracle_stat(c, role)?,
        },
        ClaimKind::QuantDrift => Kind::QuantDrift(parent_stat(c, role)?),
        ClaimKind::CorruptionDetect => Kind::CorruptionDetect(parent_stat(c, role)?),
        ClaimKind::Consistency => {
            let (Role::Paths(stat), Some(Compared::Paths(paths))) = (role, compared) else {
                return Err(mismatch());
            };
            Kind::Consistency(paths, stat)
        }
        ClaimKind::Determinism => Kind::Determinism,
        ClaimKind::QuantOrder => {
            let Role::Chain(stat) = role else {
                return Err(mismatch());
            };
            Kind::QuantOrder(stat)
        }
        ClaimKind::ReferenceAgreement => Kind::ReferenceAgreement,
        ClaimKind::RoundTrip => {
            let Some(Compared::Files(r)) = compared else {
                return Err(mismatch());
            };
            Kind::RoundTrip(r)
        }
        ClaimKind::Structure => {
            let Role::File(stat) = role else {
                return Err(mismatch());
            };
            Kind::Structure(stat)
        }
        ClaimKind::TrainSanity => Kind::TrainSanity(check.ok_or_else(mismatch)?),
        ClaimKind::CorruptionSweep => {
            let (Role::Sweep(stat), Some(seeds)) = (role, c.seeds) else {
                return Err(mismatch());
            };
            Kind::CorruptionSweep { stat, seeds }
        }
        // Refused at the top of `resolve`: numbers are ClaimSpecs made by `number::spec`.
        ClaimKind::MetricRepro => return Err(mismatch()),
    })
}

/// The error for a statistic the claim's kind does not measure (as `bound.statistic`
/// was written, or not in the role the kind needs).
fn role_mismatch(c: &Claim) -> String {
    format!(
        "field 'bound.statistic': '{}' has no role in kind '{}'",
        c.bound.statistic.name(),
        c.kind.name()
    )
}

/// `role` as a statistic measured against the oracle.
fn oracle_stat(c: &Claim, role: Role) -> Result<OracleStat, String> {
    let Role::Oracle(s) = role else {
        return Err(role_mismatch(c));
    };
    Ok(s)
}

/// `role` as a statistic measured against the parent.
fn parent_stat(c: &Claim, role: Role) -> Result<ParentStat, String> {
    let Role::Parent(s) = role else {
        return Err(role_mismatch(c));
    };
    Ok(s)
}

pub(super) fn check_date(s: &str) -> Result<(), String> {
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
    use crate::claim::ClaimFile;
    use std::path::Path;

    #[test]
    fn every_registered_claim_reads_back_as_written() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("claims");
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in [root.clone(), root.join("check")] {
            files.extend(crate::fsutil::toml_files(&dir).unwrap());
        }
        assert!(files.len() > 5);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let raw: ClaimFile = crate::input::parse_toml(&text, &f).unwrap();
            for c in raw.claim {
                let spec = ClaimSpec::resolve(c.clone(), f.clone(), 1).unwrap();
                assert_eq!(spec.as_written(), c, "{}", c.id);
            }
        }
    }

    #[test]
    fn the_kind_carries_what_its_judge_dispatches_on() {
        let text = "[[claim]]\nid = \"X\"\nkind = \"consistency\"\ncompare = \"kv_cache\"\nstatement = \"s\"\nsubjects = { models = [\"m\"] }\n\
                    bound = { statistic = \"kl_max\", op = \"<=\", value = 1e-6 }\nrationale = \"r\"\nregistered = \"2026-11-28\"\nbasis = \"prior\"\n";
        let spec = &crate::claim::parse_str(text, Path::new("x.toml")).unwrap()[0];
        assert_eq!(
            spec.kind,
            Kind::Consistency(
                super::super::kind::Paths::KvCache,
                crate::stats::PathStat::Dist(crate::stats::Dist::KlMax)
            )
        );
        assert_eq!(spec.variants, vec![Variant::Base]);
        let e = crate::claim::parse_str(
            &text.replace("kv_cache", "gguf_reimport"),
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'gguf_reimport' belongs to kind 'round_trip', not 'consistency'"),
            "{e}"
        );
    }
}
