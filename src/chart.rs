//! What every plot of the project draws the same way (plotters): a named series as a line
//! with round markers and a legend swatch, and the legend box — so the report's drift
//! chart and the sweep's degradation plot read alike.

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

/// One named line of a plot.
pub(crate) struct Series<'n> {
    /// Its legend entry.
    pub name: &'n str,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Line, marker and legend swatch colour.
    pub color: RGBAColor,
    /// Marker radius, px.
    pub radius: i32,
}

/// The two drawings, on any 2-D chart over `f64` axes (linear or logarithmic).
pub(crate) trait SeriesChart {
    /// Draws the series as a 2-px line with round markers and lists it in the legend;
    /// `None` when the backend fails.
    fn line_with_markers(&mut self, series: Series<'_>) -> Option<()>;

    /// The legend box at `position`: translucent white on a black border.
    fn draw_legend(&mut self, position: SeriesLabelPosition) -> Option<()>;
}

impl<'a, DB, X, Y> SeriesChart for ChartContext<'a, DB, Cartesian2d<X, Y>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    fn line_with_markers(&mut self, series: Series<'_>) -> Option<()> {
        let Series {
            name,
            points,
            color,
            radius,
        } = series;
        self.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .ok()?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        self.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, radius, color.filled())),
        )
        .ok()?;
        Some(())
    }

    fn draw_legend(&mut self, position: SeriesLabelPosition) -> Option<()> {
        self.configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .ok()
    }
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
            let points = vec![(0.5, 1.0), (1.5, 2.0)];
            chart
                .line_with_markers(Series {
                    name: "series-a",
                    points,
                    color: red,
                    radius,
                })
                .unwrap();
            chart.draw_legend(SeriesLabelPosition::UpperLeft).unwrap();
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
