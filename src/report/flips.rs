//! The flip list of a bit-flip variant as a ticket section: what was flipped, where, and
//! the values before and after, the first [`FLIPS_SHOWN`] flips one per row and a count
//! of the rest (`report.json`'s evidence holds them all).

use crate::outcome::fmt_num;
use crate::transform::flip::FlipList;
use std::fmt::Write;

/// Flips a ticket lists one by one.
pub const FLIPS_SHOWN: usize = 32;

/// Appends the `## Flips` section for `list` to `md`.
pub(crate) fn flips_section(md: &mut String, list: &FlipList) {
    let _ = writeln!(md, "\n## Flips\n\n{}.\n", list.summary());
    let _ = writeln!(
        md,
        "| tensor | type | element / block | field | bit | old | new |\n|---|---|---|---|---|---|---|"
    );
    for f in list.flips.iter().take(FLIPS_SHOWN) {
        let at = match (f.element, f.block) {
            (Some(e), _) => format!("element {e}"),
            (None, Some(b)) => format!("block {b}"),
            (None, None) => format!("byte {}", f.byte),
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {at} | {}[{}] | {} | {} | {} |",
            f.tensor,
            f.dtype,
            f.field,
            f.index,
            f.bit,
            fmt_num(f.old),
            fmt_num(f.new)
        );
    }
    if list.flips.len() > FLIPS_SHOWN {
        let _ = writeln!(
            md,
            "\n… and {} more flip(s), omitted here (every flip is in `report.json`'s evidence).",
            list.flips.len() - FLIPS_SHOWN
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::flip::{Flip, FLIPS_FORMAT};

    fn list(n: usize) -> FlipList {
        let flip = |i: usize| Flip {
            tensor: "model.layers.0.mlp.up_proj.weight".into(),
            dtype: "f32".into(),
            element: Some(i as u64),
            block: None,
            field: "value".into(),
            index: 0,
            bit: 30,
            byte: 4 * i as u64 + 3,
            file_offset: None,
            old: 0.0625,
            new: 2.1267647932558654e37,
        };
        FlipList {
            format: FLIPS_FORMAT.into(),
            bits: "exponent-msb".into(),
            region: "weights".into(),
            tensors: None,
            severity: "count=1".into(),
            seed: 3,
            weights: 24576,
            eligible_bits: 24576,
            source: None,
            output: None,
            flips: (0..n).map(flip).collect(),
        }
    }

    #[test]
    fn every_flip_is_a_row_up_to_the_limit_and_the_rest_are_counted() {
        let mut md = String::new();
        flips_section(&mut md, &list(2));
        assert!(
            md.contains(
                "2 flip(s) of class exponent-msb in region weights, count=1, seed 3 (24576 eligible bits over 24576 weights)."
            ),
            "{md}"
        );
        assert!(md.contains("| `model.layers.0.mlp.up_proj.weight` | f32 | element 1 | value[0] | 30 | 0.0625 | 2.1268e37 |"), "{md}");
        assert!(!md.contains("omitted"), "{md}");
        let mut md = String::new();
        flips_section(&mut md, &list(FLIPS_SHOWN + 5));
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| `model")).count(),
            FLIPS_SHOWN
        );
        assert!(md.contains("… and 5 more flip(s), omitted here"), "{md}");
    }
}
