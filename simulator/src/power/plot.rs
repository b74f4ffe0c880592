//! SVG plot of a run: battery SoC on top, ACIN (average and peak) and battery current below.

use std::path::Path;

use plotters::prelude::*;

use super::engine::TracePoint;

/// Writes the plot to `path` (SVG). `title` goes above the top panel; `limits` are horizontal
/// reference lines on the current panel (label, mA).
pub fn write_svg(path: &Path, title: &str, trace: &[TracePoint], limits: &[(&str, f64)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(260);
    let t_max = trace.last().map_or(1.0, |p| p.t_h).max(1e-3);

    let mut soc = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..100.0)?;
    soc.configure_mesh().x_desc("time (h)").y_desc("battery SoC (%)").draw()?;
    soc.draw_series(LineSeries::new(trace.iter().map(|p| (p.t_h, p.soc_pct)), &BLUE))?
        .label("state of charge")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    soc.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;

    let data_max = trace
        .iter()
        .map(|p| p.acin_ma_peak.max(p.battery_ma_avg))
        .chain(limits.iter().map(|l| l.1))
        .fold(50.0_f64, f64::max)
        * 1.1;
    // Keep the port's limits readable: a cold boot's 780 mA charge inrush would squash the axis.
    // Points above it are drawn at the top edge.
    let cap = limits.iter().map(|l| l.1).fold(0.0_f64, f64::max) * 1.6;
    let i_max = if cap > 0.0 { data_max.min(cap) } else { data_max };
    let i_min = trace.iter().map(|p| p.battery_ma_avg).fold(0.0_f64, f64::min) * 1.1;
    let mut cur = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, i_min..i_max)?;
    cur.configure_mesh().x_desc("time (h)").y_desc("current (mA)").draw()?;
    let peak = RGBColor(230, 120, 0);
    let clip = |v: f64| v.min(i_max);
    cur.draw_series(LineSeries::new(trace.iter().map(|p| (p.t_h, clip(p.acin_ma_peak))), &peak))?
        .label("ACIN peak (P1 port)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], peak));
    cur.draw_series(LineSeries::new(trace.iter().map(|p| (p.t_h, clip(p.acin_ma_avg))), &RED))?
        .label("ACIN average (P1 port)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    let bat = RGBColor(0, 140, 0);
    cur.draw_series(LineSeries::new(trace.iter().map(|p| (p.t_h, clip(p.battery_ma_avg))), &bat))?
        .label("battery average (+ discharge, − charge)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], bat));
    for (label, ma) in limits {
        let grey = RGBColor(120, 120, 120);
        cur.draw_series(LineSeries::new(vec![(0.0, *ma), (t_max, *ma)], grey.stroke_width(1)))?
            .label(format!("{label} ({ma:.0} mA)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    cur.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
