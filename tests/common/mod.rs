//! Helpers shared by the planted-fault tests: a scratch project, claim text, and judging
//! a claims file against the registry.
#![allow(dead_code)]

pub mod hostile;
pub mod installed;
mod need;
pub use need::need_file;

/// The fetched SmolLM2-135M-Instruct Q4_1 GGUF, or `None` (a failure under CI; see
/// [`need_file`]).
pub fn smollm2() -> Option<PathBuf> {
    need_file(
        &groundtruth::project::models_cache().join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        "ci/fetch-models.sh",
    )
}

use groundtruth::claim::{load_dir, parse_str, Case, ClaimSpec};
use groundtruth::judge::{Judge, SkipPolicy};
use groundtruth::plan::{Execution, Plan};
use groundtruth::project::{Project, MODELS_FILE};
use groundtruth::registry::{self, ModelEntry};
use groundtruth::report::CaseRecord;
use std::path::{Path, PathBuf};

pub struct Setup {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Setup {
    /// The scratch project's root.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// A scratch copy of what a run reads (claims, suites, configs, oracles, the committed
/// default model, quantizer fixtures), so planted faults never touch the checkout.
pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let src = Project::from_manifest();
    let subs = [
        "claims",
        "suites",
        "configs",
        "data",
        "models/tiny_1m",
        "oracles/tiny-seeded",
        "oracles/tiny-seeded-gguf",
        "oracles/tiny_1m",
        "tests/fixtures/quant-ref",
    ];
    for sub in subs {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(src.path(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let root = dir.path().to_path_buf();
    Setup { _dir: dir, root }
}

pub fn claim(id: &str, kind: &str, variants: &str, bound: &str, extra: &str) -> String {
    claim_on("tiny-seeded", id, kind, variants, bound, extra)
}

/// A claim on `model`.
pub fn claim_on(
    model: &str,
    id: &str,
    kind: &str,
    variants: &str,
    bound: &str,
    extra: &str,
) -> String {
    format!(
        "[[claim]]\nid = \"{id}\"\nkind = \"{kind}\"\nstatement = \"planted\"\nsubjects = {{ models = [\"{model}\"], variants = [{variants}] }}\n\
         bound = {{ {bound} }}\nrationale = \"planted fault\"\nregistered = \"2026-11-22\"\nbasis = \"prior\"\n{extra}\n"
    )
}

/// Every claim registered in the checkout's `claims/` and `claims/check/`.
pub fn registered_claims() -> Vec<ClaimSpec> {
    let dir = Project::from_manifest().claims_dir();
    let mut all = load_dir(&dir).unwrap();
    all.extend(load_dir(&dir.join("check")).unwrap());
    all
}

/// The registered claim `id`, as TOML, about `models` (and `variants`, when given) instead
/// of its own subjects: the same kind, statement, bound and rationale, judged on a planted
/// subject registered under another name.
pub fn registered_on(id: &str, models: &[&str], variants: Option<&[&str]>) -> String {
    let mut c = registered_claims()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("claim {id} is not registered"))
        .as_written();
    c.subjects.models = models.iter().map(|m| m.to_string()).collect();
    if let Some(v) = variants {
        c.subjects.variants = v.iter().map(|m| m.to_string()).collect();
    }
    toml::to_string(&groundtruth::claim::ClaimFile { claim: vec![c] }).unwrap()
}

/// The registered claim `id`, as TOML, exactly as registered.
pub fn registered(id: &str) -> String {
    let c = registered_claims()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("claim {id} is not registered"))
        .as_written();
    toml::to_string(&groundtruth::claim::ClaimFile { claim: vec![c] }).unwrap()
}

/// Judges the claims in `toml` (as a run would: every registered claim is known to the
/// judge, so preconditions such as a parent's parity claims apply) on the scratch project.
pub fn judge_all(
    root: &Path,
    toml: &str,
    registry_edit: impl FnOnce(&mut Vec<ModelEntry>),
) -> Vec<CaseRecord> {
    judge_all_under(
        SkipPolicy::Registered { forbid: false },
        root,
        toml,
        registry_edit,
    )
}

/// [`judge_all`] under a given skip policy.
pub fn judge_all_under(
    policy: SkipPolicy,
    root: &Path,
    toml: &str,
    registry_edit: impl FnOnce(&mut Vec<ModelEntry>),
) -> Vec<CaseRecord> {
    let project = Project::new(root);
    let file = root.join("claims/planted.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, toml).unwrap();
    let claims = parse_str(toml, &file).unwrap();
    let mut reg = registry::load(&project.path(MODELS_FILE)).unwrap();
    registry_edit(&mut reg);
    let names: Vec<String> = reg.iter().map(|m| m.name.clone()).collect();
    let cases: Vec<Case> = groundtruth::plan::expand(&project, &claims, &names).unwrap();
    let mut known = claims.clone();
    known.extend(
        registered_claims()
            .into_iter()
            .filter(|r| !claims.iter().any(|c| c.id == r.id)),
    );
    let judge = Judge::new(project.clone(), reg, known, 1).with_policy(policy);
    judge_in_order(Plan::new(project, "planted", cases, judge))
}

/// Every case of `plan`, judged in order through the runner, with no reporter.
pub fn judge_in_order(plan: Plan) -> Vec<CaseRecord> {
    let plan = std::sync::Arc::new(plan);
    let run = Execution::new(plan.clone(), plan.cases.len(), vec![]);
    plan.cases.iter().map(|c| run.case(c)).collect()
}

pub fn labels(records: &[CaseRecord]) -> Vec<&'static str> {
    records.iter().map(|r| r.outcome.label()).collect()
}

/// tiny-seeded's weights, as the registry builds them.
pub fn tiny_weights() -> groundtruth::model::Weights {
    let project = Project::from_manifest();
    let text = std::fs::read_to_string(project.path("configs/tiny-seeded.json")).unwrap();
    let cfg =
        groundtruth::model::LlamaConfig::from_hf_json(&text, Path::new("configs/tiny-seeded.json"))
            .unwrap();
    groundtruth::model::seeded(&cfg, 20261122).unwrap()
}

/// Registers the GGUF at `path` as model `name` (its hash taken now), optionally judged
/// against `oracle`.
pub fn register_gguf(reg: &mut Vec<ModelEntry>, name: &str, path: &Path, oracle: Option<&str>) {
    let sha256 = sha256_file(path).unwrap();
    reg.push(ModelEntry {
        name: name.into(),
        description: "planted".into(),
        oracle: oracle.map(String::from),
        seeded: None,
        gguf: Some(registry::GgufSource {
            file: path.display().to_string(),
            sha256: Some(sha256),
            fetch: None,
        }),
        folder: None,
        export: None,
        trained: None,
        hub: None,
    });
}

/// Makes tiny-seeded a registered GGUF that was never fetched (`no-such-model.gguf`).
// A Vec, not a slice: it is passed as the registry-edit hook, an FnOnce(&mut Vec<ModelEntry>).
#[allow(clippy::ptr_arg)]
pub fn unfetched(reg: &mut Vec<ModelEntry>) {
    let m = reg.iter_mut().find(|m| m.name == "tiny-seeded").unwrap();
    m.seeded = None;
    m.gguf = Some(registry::GgufSource {
        file: "no-such-model.gguf".into(),
        sha256: Some("0".repeat(64)),
        fetch: Some("ci/fetch-models.sh".into()),
    });
}

/// The lowercase hex SHA-256 of `bytes`, as registries and manifests write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// [`sha256_hex`] of the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(sha256_hex(&std::fs::read(path)?))
}
