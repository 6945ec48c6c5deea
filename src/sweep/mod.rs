//! Severity sweeps of seeded bit flips ([`run`]): for each bit class and rate, several
//! seeds of damage measured against the clean parent over the evaluation slice
//! (perplexity ratio, mean and p99 KL, top-1 agreement), summarized with their spread
//! over seeds ([`summarize`]), written as CSV and plotted ([`svg`]).

mod measure;
mod plot;
mod table;

pub use measure::{run, Damage, Reference, SweepSpec};
pub use plot::{svg, Metric};
pub use table::{points_csv, rows_csv, summarize, Row, Spread};
