//! [`execute`]: the one loop that judges a plan's cases and tells reporters; and
//! [`Execution`], the same loop driven case by case by a harness that owns the loop
//! itself (libtest-mimic's trials).

use super::{report, Plan};
use crate::claim::Case;
use crate::report::{CaseRecord, Event, Report, ReportError, Reporter};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Judges `cases` of `plan` in order and returns the run's report (partial when they are
/// not all of the plan's cases), having told every reporter each case's start and finish
/// and the run's end. The first reporter error is returned after the run.
pub fn execute(
    plan: Arc<Plan>,
    cases: &[&Case],
    reporters: Vec<Box<dyn Reporter>>,
) -> Result<Report, ReportError> {
    let run = Execution::new(plan, cases.len(), reporters);
    for case in cases {
        run.case(case);
    }
    run.finish()
}

/// A run in progress: cases may be judged from several threads at once.
pub struct Execution {
    plan: Arc<Plan>,
    reporters: Vec<Box<dyn Reporter>>,
    total: usize,
    started: AtomicUsize,
    records: Mutex<Vec<CaseRecord>>,
    errors: Mutex<Vec<ReportError>>,
}

impl Execution {
    /// A run of `total` cases of `plan`.
    pub fn new(plan: Arc<Plan>, total: usize, reporters: Vec<Box<dyn Reporter>>) -> Execution {
        Execution {
            plan,
            reporters,
            total,
            started: AtomicUsize::new(0),
            records: Mutex::default(),
            errors: Mutex::default(),
        }
    }

    /// Judges one case, tells the reporters, keeps its record for the report and returns it.
    pub fn case(&self, case: &Case) -> CaseRecord {
        let index = self.started.fetch_add(1, Ordering::SeqCst);
        self.tell(&Event::Started {
            case,
            index,
            total: self.total,
        });
        let record = self.plan.record(case, self.plan.judge.judge(case));
        self.tell(&Event::Finished { record: &record });
        lock(&self.records).push(record.clone());
        record
    }

    /// Ends the run: the report of every case judged, told to the reporters; the first
    /// reporter error of the whole run, if any.
    pub fn finish(&self) -> Result<Report, ReportError> {
        let records = std::mem::take(&mut *lock(&self.records));
        let rep = report(&self.plan.suite, records, self.plan.cases.len());
        self.tell(&Event::Done { report: &rep });
        match lock(&self.errors).drain(..).next() {
            Some(e) => Err(e),
            None => Ok(rep),
        }
    }

    fn tell(&self, event: &Event<'_>) {
        for r in &self.reporters {
            if let Err(e) = r.on(event) {
                lock(&self.errors).push(e);
            }
        }
    }
}

/// A lock whose holder panicked is still usable: the records it guards stay valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
