//! How many flips a [`Severity`] makes over a region.

use super::engine::FlipError;
use crate::flipspec::Severity;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_rounds_over_the_regions_weights() {
        assert_eq!(Severity::Rate(1_000_000).flips(24_576).unwrap(), 25);
        assert!(matches!(
            Severity::Rate(1000).flips(100),
            Err(FlipError::RateTooLow {
                rate: 1000,
                weights: 100
            })
        ));
        assert_eq!(Severity::Count(7).flips(1).unwrap(), 7);
    }
}
