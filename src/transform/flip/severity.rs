//! [`Severity`]: how much damage a corruption does, a count of flips or a rate.

use super::engine::FlipError;

/// How much damage: a number of flips, or a rate per billion weights of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Exactly this many flips.
    Count(u64),
    /// round(rate · weights / 10^9) flips, where weights are the region's tensors' elements.
    Rate(u64),
}

impl Severity {
    /// The number of flips over `weights` weights.
    pub fn flips(self, weights: u64) -> Result<u64, FlipError> {
        match self {
            Severity::Count(n) => Ok(n),
            Severity::Rate(rate) => {
                let n =
                    ((u128::from(rate) * u128::from(weights) + 500_000_000) / 1_000_000_000) as u64;
                if n == 0 {
                    return Err(FlipError::RateTooLow { rate, weights });
                }
                Ok(n)
            }
        }
    }

    /// `count=N` or `rate=R`, as variant names and reports write it.
    pub fn name(self) -> String {
        match self {
            Severity::Count(n) => format!("count={n}"),
            Severity::Rate(r) => {
                // 1e6 reads better than 1000000 in variant names; parse accepts both.
                let (mut m, mut k) = (r, 0);
                while m % 10 == 0 && m > 0 {
                    m /= 10;
                    k += 1;
                }
                match k {
                    0..=2 => format!("rate={r}"),
                    _ => format!("rate={m}e{k}"),
                }
            }
        }
    }

    /// Parses `count=N` or `rate=R` (R in flips per billion weights, an integer ≥ 1,
    /// written out or as `Ne K`, e.g. `rate=1e6`).
    pub fn parse(s: &str) -> Result<Severity, String> {
        let bad = || {
            format!("severity '{s}': expected count=N or rate=R (flips per billion weights, e.g. rate=1e6)")
        };
        let (key, value) = s.split_once('=').ok_or_else(bad)?;
        let n = parse_integer(value).ok_or_else(bad)?;
        match (key, n) {
            (_, 0) => Err(format!("severity '{s}': zero flips corrupt nothing")),
            ("count", n) => Ok(Severity::Count(n)),
            ("rate", n) => Ok(Severity::Rate(n)),
            _ => Err(bad()),
        }
    }
}

impl Severity {
    /// A rate alone (`1e6`), as `--rates` lists them.
    pub fn parse_rate(s: &str) -> Result<u64, String> {
        match parse_integer(s) {
            Some(0) | None => Err(format!("rate '{s}': expected a whole number of flips per billion weights ≥ 1 (1000, 1e6)")),
            Some(n) => Ok(n),
        }
    }
}

/// `123` or `1e6` / `25e3` as an exact integer.
fn parse_integer(s: &str) -> Option<u64> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match s.split_once(['e', 'E']) {
        None if digits(s) => s.parse().ok(),
        Some((m, e)) if digits(m) && digits(e) => m
            .parse::<u64>()
            .ok()?
            .checked_mul(10u64.checked_pow(e.parse().ok()?)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_and_round() {
        assert_eq!(Severity::parse("count=3"), Ok(Severity::Count(3)));
        assert_eq!(Severity::parse("rate=1e6"), Ok(Severity::Rate(1_000_000)));
        assert_eq!(Severity::parse("rate=25e3"), Ok(Severity::Rate(25_000)));
        for bad in [
            "count=0",
            "count=-1",
            "rate=1.5",
            "rate=",
            "flips=3",
            "count",
            "rate=1e99",
        ] {
            assert!(Severity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Severity::Rate(1_000_000).flips(24_576).unwrap(), 25);
        assert!(matches!(
            Severity::Rate(1000).flips(100),
            Err(FlipError::RateTooLow {
                rate: 1000,
                weights: 100
            })
        ));
        assert_eq!(Severity::Count(7).name(), "count=7");
    }
}
