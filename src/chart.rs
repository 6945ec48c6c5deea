//! What every plot of the project draws the same way (plotters): a named series as a line
//! with round markers and a legend swatch, and the legend box — so the report's drift
//! chart and the sweep's degradation plot read alike.

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

/// Draws `points` as a 2-px line in `color` with markers of `radius`, listed in the legend
/// as `name`; `None` when the backend fails.
pub(crate) fn line_with_markers<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    name: &str,
    points: Vec<(f64, f64)>,
    color: RGBAColor,
    radius: i32,
) -> Option<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .ok()?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, radius, color.filled())),
        )
        .ok()?;
    Some(())
}

/// The legend box at `position`: translucent white on a black border.
pub(crate) fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Option<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::types::RangedCoordf64;

    fn drawn(radius: i32) -> String {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (200, 100)).into_drawing_area();
            let mut chart = ChartBuilder::on(&root)
                .build_cartesian_2d::<RangedCoordf64, _>(
                    (0f64..2f64).into(),
                    (0.1f64..10f64).log_scale(),
                )
                .unwrap();
            let red = RED.to_rgba();
            line_with_markers(
                &mut chart,
                "series-a",
                vec![(0.5, 1.0), (1.5, 2.0)],
                red,
                radius,
            )
            .unwrap();
            legend(&mut chart, SeriesLabelPosition::UpperLeft).unwrap();
            root.present().unwrap();
        }
        svg
    }

    #[test]
    fn a_series_is_a_line_markers_and_a_legend_entry() {
        let svg = drawn(3);
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        assert_eq!(svg.matches("r=\"3\"").count(), 2, "{svg}");
        assert!(
            svg.contains("series-a") && svg.contains("<polyline"),
            "{svg}"
        );
        assert_eq!(svg, drawn(3), "drawing is deterministic");
    }
}
