//! groundtruth: a harness that tries to falsify claims about tiny language models and the
//! tools that convert, quantize, corrupt and run them.
//!
//! Data flow: [`claim`] → cases → [`subject`] → [`transform`] → [`run`] → [`stats`] →
//! [`outcome`] → [`report`].
//!
//! # Using it as a library
//!
//! [`Project`] finds a project; [`plan()`] resolves its claims, a suite and the model
//! registry into a [`Plan`] of [`Case`]s; [`execute`] judges them, telling each
//! [`Reporter`] every [`Event`]; a case ends in an [`Outcome`], a pass or fail carrying its
//! [`Evidence`]; [`Report`] is what `report.json` holds. [`judge_checkpoint`] judges any
//! checkpoint against an oracle and [`inspect()`] reads what a GGUF file holds. The
//! toolkits — [`model`], [`tokenizer`], [`transform`], [`oracle`], [`run`] — are public
//! too; the leaf helpers (bounded input, quoting, the built-in project, the memo) are not.
#![warn(missing_docs)]

pub use check::judge_checkpoint;
pub use claim::{Case, ClaimSpec};
pub use inspect::{inspect, Inspection};
pub use judge::{Judge, Verdict};
pub use outcome::{Evidence, Outcome};
pub use plan::{execute, plan, Plan};
pub use project::Project;
pub use report::{Event, Report, Reporter};

pub(crate) mod builtin;
pub mod check;
pub mod claim;
pub mod cli;
pub mod device;
pub(crate) mod excerpt;
pub(crate) mod flipspec;
pub mod fsutil;
pub mod gguf_guard;
pub(crate) mod input;
pub mod inspect;
pub mod integrity;
pub(crate) mod jsonnum;
pub mod judge;
pub(crate) mod memo;
pub mod metrics;
pub mod model;
pub mod oracle;
pub mod outcome;
pub mod plan;
pub(crate) mod problems;
pub mod project;
pub mod prompts;
pub mod report;
pub mod rng;
pub mod run;
pub mod runtime;
pub mod stats;
pub mod stored;
pub mod subject;
pub mod sweep;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tokenizer;
pub mod train;
pub mod transform;
pub mod variant;
