//! Pre-registered claims: the file schema ([`Claim`], as written), the resolved and typed
//! claim ([`ClaimSpec`], what judges read), loading, suites, expansion into [`Case`]s and
//! the rendered `CLAIMS.md`.

mod expand;
mod kind;
mod load;
pub mod number;
mod render;
mod schema;
mod spec;
pub mod suite;
mod sweep;

pub use expand::{case_name, expand, Case};
pub use kind::{
    CaseShape, ClaimKind, Compare, Compared, Fields, Kind, Paths, RoundTrip, RuntimeUse, StoredAs,
    TrainCheck, STORAGE_TYPES, STORED_AS_ORACLE,
};
pub use load::{load_dir, load_file, load_with_numbers, parse_str, ClaimError};
pub use render::claims_markdown;
pub use schema::{Basis, Bound, Claim, ClaimFile, Expect, Op, Subjects};
pub use spec::ClaimSpec;
