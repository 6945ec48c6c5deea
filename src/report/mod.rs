//! Reports: `report.json` (every case with its evidence), the summary matrix, failure
//! tickets in Markdown, `report.html` and JUnit XML.

mod drift;
mod environment;
pub mod html;
mod junit;
mod matrix;
mod record;
mod ticket;

pub use drift::drift_matrix;
pub use environment::Environment;
pub use matrix::summary_matrix;
pub use record::{merge_run, read_report, write_run, CaseRecord, FileHash, Report, ReportError, REPORT_FORMAT};
pub use junit::junit_xml;
pub use ticket::{dedup_tickets, fingerprint, ticket_file_name, ticket_markdown, Ticket};
