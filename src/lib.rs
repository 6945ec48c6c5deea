//! groundtruth: a harness that tries to falsify claims about tiny language models and the
//! tools that convert, quantize, corrupt and run them.
//!
//! Data flow: [`claim`] → cases → subjects ([`registry`]) → [`transform`] → [`run`] →
//! [`stats`] → [`outcome`] → [`report`].
//!
//! # Using it as a library
//!
//! [`Project`] finds a project; [`plan()`] resolves its claims, a suite and the model
//! registry into a [`Plan`] of [`Case`]s; [`execute`] judges them, telling each
//! [`Reporter`] every [`Event`]; a case ends in an [`Outcome`], a pass or fail carrying its
//! [`Evidence`]; [`Report`] is what `report.json` holds. [`judge_checkpoint`] judges any
//! checkpoint against an oracle and [`inspect()`] reads what a GGUF file holds.
//!
//! # What is public
//!
//! - Running claims: [`project`], [`plan`](mod@plan), [`claim`] (claims and their
//!   cases), [`judge`], [`outcome`] (outcomes and their evidence), [`report`], [`check`]
//!   (a checkpoint against an oracle), [`inspect`](mod@inspect), and [`registry`] (a
//!   project's models).
//! - The toolkits: [`model`] with [`gguf_guard`] (an untrusted GGUF validated before any
//!   reader parses it), [`tokenizer`], [`transform`] with [`stored`] (a model file's
//!   stored tensors, which bit flips address), [`oracle`], [`run`], and [`metrics`] (trace
//!   metrics of generation records).
//! - What cases and bounds are stated in: [`variant`] (what a case derives from its
//!   model), [`runtime`] (where and in what precision it runs), [`stats`] (the statistics
//!   a bound names), [`prompts`] (prompt sets), [`rng`] (the generator every seeded step
//!   draws from), and the input errors [`InputError`], [`FsError`] and [`JsonFileError`]
//!   (an oracle's or a report's).
//!
//! The rest — subjects and their caches, training, sweeps, integrity manifests, the command
//! line's internals, the leaf helpers (bounded input, quoting, the built-in project, the
//! memo) — is crate-private; the `groundtruth` binary reaches it through [`cli::main`].
#![warn(missing_docs)]
// A public item's signature names only types a user can name: the face stays whole.
#![warn(unnameable_types, private_interfaces, private_bounds)]

pub use check::judge_checkpoint;
pub use claim::{Case, ClaimSpec};
pub use fsutil::FsError;
pub use input::{At, InputError, JsonFileError};
pub use inspect::{inspect, Inspection};
pub use judge::{Judge, Verdict};
pub use outcome::{Evidence, Outcome};
pub use plan::{execute, plan, Plan};
pub use project::Project;
pub use report::{Event, Report, Reporter};
pub use subject::registry;

pub(crate) mod builtin;
pub(crate) mod chart;
pub mod check;
pub mod claim;
pub mod cli;
pub(crate) mod device;
pub(crate) mod excerpt;
pub(crate) mod flipspec;
pub(crate) mod fsutil;
pub mod gguf_guard;
pub(crate) mod input;
pub mod inspect;
pub(crate) mod integrity;
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
pub(crate) mod subject;
pub(crate) mod sweep;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tokenizer;
pub(crate) mod train;
pub mod transform;
pub mod variant;
