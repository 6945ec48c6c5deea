//! A sweep's points summarized per (bit class, rate) over its seeds ([`Row`], [`summarize`])
//! and written as CSV ([`points_csv`], [`rows_csv`]).

use super::measure::Point;
use crate::transform::flip::BitClass;
use serde::Serialize;

/// The spread of one metric over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median over seeds (the lower middle value for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (infinite values sort last; NaN is not expected: an
    /// unscorable model's perplexity is infinite, see `measure`).
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        match v.as_slice() {
            [] => Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            },
            s => Spread {
                median: s[(s.len() - 1) / 2],
                min: s[0],
                max: s[s.len() - 1],
            },
        }
    }
}

/// One (bit class, rate) over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Bit class.
    pub bits: BitClass,
    /// Flips per billion weights.
    pub rate: u64,
    /// Seeds measured.
    pub seeds: usize,
    /// Flips per seed (the same for every seed: a rate fixes the count).
    pub flips: usize,
    /// Perplexity ratio.
    pub ppl_ratio: Spread,
    pub kl_mean: Spread,
    pub kl_p99: Spread,
    /// Top-1 agreement.
    pub top1: Spread,
}

/// Rows in the points' (bits, rate) order.
pub fn summarize(points: &[Point]) -> Vec<Row> {
    let mut keys: Vec<(BitClass, u64)> = Vec::new();
    for p in points {
        if !keys.contains(&(p.bits, p.rate)) {
            keys.push((p.bits, p.rate));
        }
    }
    keys.into_iter()
        .map(|(bits, rate)| {
            let ps: Vec<&Point> = points
                .iter()
                .filter(|p| p.bits == bits && p.rate == rate)
                .collect();
            let spread =
                |f: fn(&Point) -> f64| Spread::of(&ps.iter().map(|p| f(p)).collect::<Vec<_>>());
            Row {
                bits,
                rate,
                seeds: ps.len(),
                flips: ps[0].flips,
                ppl_ratio: spread(|p| p.ppl_ratio),
                kl_mean: spread(|p| p.kl_mean),
                kl_p99: spread(|p| p.kl_p99),
                top1: spread(|p| p.top1),
            }
        })
        .collect()
}

/// Every point, one CSV line each.
pub fn points_csv(points: &[Point]) -> String {
    let mut s = String::from(
        "bits,rate_per_billion,seed,flips,ppl,ppl_ratio,kl_mean,kl_p99,top1_agreement\n",
    );
    for p in points {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            p.bits, p.rate, p.seed, p.flips, p.ppl, p.ppl_ratio, p.kl_mean, p.kl_p99, p.top1
        ));
    }
    s
}

/// Every row, with each metric's median, min and max over seeds.
pub fn rows_csv(rows: &[Row]) -> String {
    let mut s = String::from("bits,rate_per_billion,seeds,flips");
    for m in ["ppl_ratio", "kl_mean", "kl_p99", "top1_agreement"] {
        s.push_str(&format!(",{m}_median,{m}_min,{m}_max"));
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!("{},{},{},{}", r.bits, r.rate, r.seeds, r.flips));
        for m in [r.ppl_ratio, r.kl_mean, r.kl_p99, r.top1] {
            s.push_str(&format!(",{},{},{}", m.median, m.min, m.max));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(bits: BitClass, rate: u64, seed: u64, ppl_ratio: f64) -> Point {
        Point {
            bits,
            rate,
            seed,
            flips: 3,
            ppl: ppl_ratio * 10.0,
            ppl_ratio,
            kl_mean: ppl_ratio - 1.0,
            kl_p99: 0.0,
            top1: 1.0,
        }
    }

    #[test]
    fn rows_hold_the_spread_over_seeds_in_point_order() {
        let pts = vec![
            point(BitClass::Sign, 10, 0, 1.2),
            point(BitClass::Sign, 10, 1, f64::INFINITY),
            point(BitClass::Sign, 10, 2, 1.1),
            point(BitClass::Mantissa, 10, 0, 1.0),
        ];
        let rows = summarize(&pts);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].bits, rows[0].seeds), (BitClass::Sign, 3));
        assert_eq!(
            rows[0].ppl_ratio,
            Spread {
                median: 1.2,
                min: 1.1,
                max: f64::INFINITY
            }
        );
        assert_eq!(rows[1].ppl_ratio.median, 1.0);
        let csv = rows_csv(&rows);
        assert!(
            csv.starts_with("bits,rate_per_billion,seeds,flips,ppl_ratio_median"),
            "{csv}"
        );
        assert!(csv.contains("\nsign,10,3,3,1.2,1.1,inf,"), "{csv}");
        assert_eq!(points_csv(&pts).lines().count(), 5);
    }
}
