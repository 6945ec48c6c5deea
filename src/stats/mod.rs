//! Statistics that judge claims: per-position comparisons of two next-token
//! distributions, their aggregates, and free-running divergence. Public because a claim's
//! bound names a [`Statistic`], with its unit and better direction.

mod bootstrap;
mod compare;
mod statistic;
mod summary;

pub use bootstrap::Interval;
pub(crate) use bootstrap::{auroc, auroc_interval, bootstrap};
pub(crate) use compare::{
    compare_full, compare_to_oracle, first_difference, first_divergence, log_softmax,
    max_abs_delta, top_k,
};
pub use compare::{Divergence, PositionCompare};
pub use statistic::{
    Better, ChainStat, Dist, FileStat, Info, Measurement, OracleStat, ParentStat, PathStat, Role,
    Statistic, SweepStat, Unit,
};
pub(crate) use summary::{bootstrap_mean_interval, quantile};
pub use summary::{SetStats, Summary};
