//! Pre-registered claims: the file schema ([`Claim`], as written), the resolved and typed
//! claim ([`ClaimSpec`], what judges read), loading, suites, expansion into [`Case`]s and
//! the rendered `CLAIMS.md`.

mod expand;
mod kind;
mod load;
pub mod number;
mod registration;
mod render;
mod schema;
mod spec;
pub(crate) mod suite;
mod sweep;

pub(crate) use expand::case_name;
pub use expand::{expand, Case};
pub(crate) use kind::STORED_AS_ORACLE;
pub use kind::{
    CaseShape, ClaimKind, Compare, Compared, Fields, Kind, Paths, RoundTrip, RuntimeUse, StoredAs,
    TrainCheck,
};
pub(crate) use load::load_with_numbers;
pub use load::{load_dir, load_file, parse_str, ClaimError};
pub(crate) use render::claims_markdown;
pub use schema::{Basis, Bound, Claim, ClaimFile, Expect, Op, Subjects};
pub use spec::ClaimSpec;
