//! Reports: `report.json` (every case with its evidence), the summary matrix, failure
//! tickets in Markdown, `report.html` and JUnit XML, and the [`Reporter`]s that write
//! them as a run's [`Event`]s arrive.

mod drift;
mod environment;
mod events;
mod flips;
pub mod html;
mod junit;
mod matrix;
mod record;
mod ticket;

pub use crate::fsutil::FileHash;
pub use drift::drift_matrix;
pub use environment::Environment;
pub use events::{Event, Junit, Reporter, RunFiles, StepSummary, Tickets};
pub use junit::junit_xml;
pub use matrix::summary_matrix;
pub use record::{
    merge_run, read_report, write_run, CaseRecord, Report, ReportError, REPORT_FORMAT,
};
pub use ticket::{dedup_tickets, fingerprint, ticket_file_name, ticket_markdown, Ticket};
