//! Resolving raw inputs (claims, suite, registry, prompts) into the [`Plan`] a run
//! executes, and executing it ([`execute`]): one loop for `groundtruth run`, the claims
//! harness and `groundtruth check`, telling [`Reporter`](crate::report::Reporter)s what happens.

mod execute;

pub use execute::{execute, Execution};

use crate::claim::{self, Case, ClaimSpec};
use crate::judge::{Judge, SkipPolicy, Verdict};
use crate::project::{Project, MODELS_FILE};
use crate::report::{CaseRecord, Environment, Report, REPORT_FORMAT};
use crate::subject::registry;
use std::sync::Arc;

/// Seed of every seeded step of a run (bootstrap resampling); recorded in the report.
pub(crate) const RUN_SEED: u64 = 20_261_122;

/// Exit code: every judged claim behaved as registered.
pub const EXIT_HOLDS: u8 = 0;
/// Exit code: at least one claim was falsified.
pub const EXIT_FALSIFIED: u8 = 1;
/// Exit code: bad input (a malformed file, a missing file, a case that errored).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: nothing was judged (every case skipped): never a silent success.
pub const EXIT_NOTHING_JUDGED: u8 = 3;

/// Why a plan could not be made. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Claims, suite, registry or prompt set.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// The suite selects nothing.
    #[error("{file}: suite '{suite}' selects no cases")]
    Empty {
        /// The suite file.
        file: String,
        /// Its name.
        suite: String,
    },
}

/// What a run executes.
pub struct Plan {
    /// Where the claims, registry and outputs are.
    pub project: Project,
    /// Suite name.
    pub suite: String,
    /// The cases, in registration order.
    pub cases: Vec<Case>,
    /// Shared state for judging them.
    pub judge: Arc<Judge>,
    /// The one-line command that reruns a case (`{case}` stands for its name).
    pub reproduce: String,
}

impl Plan {
    /// A plan of `cases` judged by `judge`, rerun through the claims harness.
    pub fn new(project: Project, suite: &str, cases: Vec<Case>, judge: Judge) -> Plan {
        let reproduce = harness_command(suite);
        Plan {
            project,
            suite: suite.into(),
            cases,
            judge: Arc::new(judge),
            reproduce,
        }
    }

    /// The report's record of `case`, judged as `verdict`.
    pub fn record(&self, case: &Case, verdict: Verdict) -> CaseRecord {
        let registered_at = format!(
            "{}:{}",
            self.project.display(&case.claim.file),
            case.claim.line
        );
        CaseRecord::new(
            case,
            verdict,
            registered_at,
            self.reproduce.replace("{case}", &case.name),
        )
    }
}

/// Loads claims, the suite, the registry and prompt ids, and expands the cases.
pub fn plan(project: &Project, suite: &str) -> Result<Plan, PlanError> {
    plan_with(project, suite, None, crate::device::DeviceSpec::Cuda(0))
}

/// [`plan`], with the one-line command that reruns a case (`{case}` stands for its name)
/// instead of the test harness's, and the GPU that CUDA cases use (`--device`).
pub(crate) fn plan_with(
    project: &Project,
    suite: &str,
    reproduce: Option<String>,
    gpu: crate::device::DeviceSpec,
) -> Result<Plan, PlanError> {
    let all = claim::load_with_numbers(&project.root, &project.claims_dir())?;
    let suite_def = claim::suite::load(&project.suites_dir(), suite)?;
    let suite_file = project.suites_dir().join(format!("{suite}.toml"));
    let selected: Vec<ClaimSpec> = claim::suite::select(&suite_def, &suite_file, &all)?;
    let registry = registry::load(&project.path(MODELS_FILE))?;
    let names: Vec<String> = registry.iter().map(|m| m.name.clone()).collect();
    let cases = expand(project, &selected, &names)?;
    if cases.is_empty() {
        return Err(PlanError::Empty {
            file: project.display(&suite_file),
            suite: suite.into(),
        });
    }
    let judge = Arc::new(
        Judge::new(project.clone(), registry, all, RUN_SEED)
            .with_policy(SkipPolicy::from_env())
            .with_gpu(gpu),
    );
    let reproduce = reproduce.unwrap_or_else(|| harness_command(suite));
    Ok(Plan {
        project: project.clone(),
        suite: suite.into(),
        cases,
        judge,
        reproduce,
    })
}

/// Expands `claims` into cases over the registered models `names`, reading each prompt set
/// a claim names from `project`.
pub fn expand(
    project: &Project,
    claims: &[ClaimSpec],
    names: &[String],
) -> Result<Vec<Case>, claim::ClaimError> {
    claim::expand(claims, names, |file| {
        crate::prompts::load(&project.path(file))
            .map(|ps| ps.into_iter().map(|p| p.id).collect())
            .map_err(|e| e.to_string())
    })
}

/// The command that reruns one case of `suite` through the claims harness.
fn harness_command(suite: &str) -> String {
    format!("GROUNDTRUTH_SUITE={suite} cargo test --release --test claims -- --exact '{{case}}'")
}

/// The report of a run's records, out of `planned` cases in the plan.
pub fn report(suite: &str, mut cases: Vec<CaseRecord>, planned: usize) -> Report {
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let partial = cases.len() < planned;
    Report {
        format: REPORT_FORMAT.into(),
        suite: suite.into(),
        seed: RUN_SEED,
        environment: Environment::current(),
        run: run_id(),
        planned,
        partial,
        cases,
    }
}

/// This run's id: nextest's `NEXTEST_RUN_ID`, shared by the processes of one nextest run,
/// else the time and process id (a run of its own, never merged with another).
pub(crate) fn run_id() -> String {
    std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{t}-{}", std::process::id())
    })
}

/// The exit code of a finished run.
pub fn exit_code(report: &Report) -> u8 {
    match report.counts() {
        (_, _, _, e) if e > 0 => EXIT_BAD_INPUT,
        (_, f, _, _) if f > 0 => EXIT_FALSIFIED,
        (0, 0, _, _) => EXIT_NOTHING_JUDGED,
        _ => EXIT_HOLDS,
    }
}

#[cfg(test)]
mod tests;
