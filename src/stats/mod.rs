//! Statistics that judge claims: per-position comparisons of two next-token
//! distributions, their aggregates, and free-running divergence. Public because a claim's
//! bound names a [`Statistic`], with its unit and better direction.

mod bootstrap;
mod compare;
mod statistic;
mod summary;

pub use bootstrap::{auroc, auroc_interval, bootstrap, Interval};
pub use compare::{
    compare_full, compare_to_oracle, first_difference, first_divergence, log_softmax,
    max_abs_delta, top_k, Divergence, PositionCompare,
};
pub use statistic::{
    Better, ChainStat, Dist, FileStat, Info, Measurement, OracleStat, ParentStat, PathStat, Role,
    Statistic, SweepStat, Unit,
};
pub use summary::{bootstrap_mean_interval, quantile, SetStats, Summary};
