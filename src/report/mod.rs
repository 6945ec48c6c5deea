//! Reports: `report.json` (every case with its evidence), the summary matrix, and
//! failure tickets in Markdown.

mod drift;
mod environment;
mod matrix;
mod record;
mod ticket;

pub use drift::drift_matrix;
pub use environment::Environment;
pub use matrix::summary_matrix;
pub use record::{merge_run, read_report, write_run, CaseRecord, FileHash, Report, ReportError, REPORT_FORMAT};
pub use ticket::{dedup_tickets, ticket_file_name, ticket_markdown};
