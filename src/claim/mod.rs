//! Pre-registered claims: the schema ([`Claim`]), loading, suites, expansion into
//! [`Case`]s and the rendered `CLAIMS.md`.

mod expand;
mod load;
mod render;
mod schema;
mod statistic;
pub mod suite;

pub use expand::{case_name, expand, Case};
pub use load::{load_dir, load_file, parse_str, ClaimError, Registered};
pub use render::claims_markdown;
pub use schema::{STORAGE_TYPES, STORED_AS_ORACLE, Basis, Bound, Claim, ClaimFile, ClaimKind, Compare, Expect, Op, Statistic, Subjects, TrainCheck};
