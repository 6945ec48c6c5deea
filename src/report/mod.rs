//! Reports: `report.json` (every case with its evidence), the summary matrix, failure
//! tickets in Markdown, `report.html` and JUnit XML, and the [`Reporter`]s that write
//! them as a run's [`Event`]s arrive.

mod drift;
mod environment;
mod events;
mod flips;
pub(crate) mod html;
mod junit;
mod matrix;
mod record;
mod ticket;

pub use crate::fsutil::FileHash;
pub(crate) use drift::drift_matrix;
pub use environment::Environment;
pub use events::{Event, Junit, Reporter, RunFiles, StepSummary, Tickets};
pub(crate) use junit::junit_xml;
pub(crate) use matrix::summary_matrix;
pub(crate) use record::read_report;
pub use record::{CaseRecord, Report, ReportError, REPORT_FORMAT};
pub(crate) use ticket::{dedup_tickets, ticket_file_name};
pub use ticket::{ticket_markdown, Ticket};
