//! Charts as SVG text, drawn with plotters' SVG backend.
//!
//! Text is written as `<text>` elements in a generic `sans-serif` family, so no font file is
//! read at build or run time and the browser draws the letters with whatever it has.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A chart: its SVG and what it claims to show, for the page and for the tests that check
/// that each of those is drawn.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File name stem under `plots/`.
    pub name: String,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub legend: Vec<String>,
    pub svg: String,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 400;

/// Colour-blind-safe (Okabe–Ito), with black last.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Lines, one per series, with a legend. `log_x` draws x on a log scale (only positive x are
/// kept: a log axis has no place for 0).
pub fn lines(name: &str, title: &str, x_desc: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)], log_x: bool) -> Chart {
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, pts)| (n.clone(), pts.iter().copied().filter(|&(x, y)| x.is_finite() && y.is_finite() && (!log_x || x > 0.0)).collect()))
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1) = bounds(all().map(|p| p.0));
    let (mut y0, mut y1) = bounds(all().map(|p| p.1));
    y0 = y0.min(0.0);
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    y1 += (y1 - y0) * 0.05;
    let svg = if log_x {
        // plotters' log axis allocates its minor ticks per decade, and a wait of a microsecond
        // against a year of JCT made it ask for gigabytes: the axis starts at 0.1 s at least.
        // No point at all (every job waited 0 s) leaves the bounds infinite: a decade from 1 s.
        x0 = if !x0.is_finite() { 1.0 } else if x0 > 0.1 { x0 } else { 0.1 };
        if !x1.is_finite() {
            x1 = x0 * 10.0;
        }
        let series: Vec<(String, Vec<(f64, f64)>)> = series.iter().map(|(n, p)| (n.clone(), p.iter().copied().filter(|&(x, _)| x >= x0).collect())).collect();
        if x1 <= x0 {
            x1 = x0 * 10.0;
        }
        svg_of(|root| draw_lines(root, title, x_desc, y_desc, &series, (x0..x1).log_scale(), y0..y1))
    } else {
        if !x0.is_finite() || !x1.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        svg_of(|root| draw_lines(root, title, x_desc, y_desc, &series, x0..x1, y0..y1))
    };
    Chart { name: name.into(), title: title.into(), x_desc: x_desc.into(), y_desc: y_desc.into(), legend: series.iter().map(|s| s.0.clone()).collect(), svg }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn svg_of(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult<()>) -> String {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        let drawn = root.fill(&WHITE).map_err(|e| e.into()).and_then(|_| draw(&root)).and_then(|_| root.present().map_err(|e| e.into()));
        if let Err(e) = drawn {
            // plotters fails only on degenerate input; the page says so rather than losing the run's report.
            drop(root);
            return format!("<svg width=\"{WIDTH}\" height=\"60\"><text x=\"10\" y=\"30\">chart not drawn: {}</text></svg>", crate::html::escape(&e.to_string()));
        }
    }
    buf
}

fn draw_lines<X>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x: X,
    y: std::ops::Range<f64>,
) -> DrawResult<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).x_label_formatter(&|v| short(*v)).y_label_formatter(&|v| short(*v)).light_line_style(RGBColor(235, 235, 235)).draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    Ok(())
}

/// Grouped bars: for each category, one bar per series, each with an optional interval
/// (drawn as a whisker).
pub struct Bars {
    pub categories: Vec<String>,
    /// (series name, per category: value and optional (low, high)).
    pub series: Vec<(String, Vec<(f64, Option<(f64, f64)>)>)>,
}

pub fn bars(name: &str, title: &str, x_desc: &str, y_desc: &str, data: &Bars) -> Chart {
    let values = data.series.iter().flat_map(|(_, v)| v.iter().flat_map(|&(m, ci)| [Some(m), ci.map(|c| c.0), ci.map(|c| c.1)]).flatten()).filter(|v| v.is_finite());
    let (lo, hi) = bounds(values);
    let y0 = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
    let mut y1 = if hi.is_finite() { hi.max(0.0) } else { 1.0 };
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let y1 = y1 + (y1 - y0) * 0.08;
    let svg = svg_of(|root| draw_bars(root, title, x_desc, y_desc, data, y0..y1));
    Chart { name: name.into(), title: title.into(), x_desc: x_desc.into(), y_desc: y_desc.into(), legend: data.series.iter().map(|s| s.0.clone()).collect(), svg }
}

fn draw_bars(root: &DrawingArea<SVGBackend<'_>, Shift>, title: &str, x_desc: &str, y_desc: &str, data: &Bars, y: std::ops::Range<f64>) -> DrawResult<()> {
    let n = data.categories.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y)?;
    let categories = &data.categories;
    // Integer positions are the categories; plotters may ask for labels between them.
    let label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 { categories.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .y_label_formatter(&|v| short(*v))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let k = data.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (s, (name, values)) in data.series.iter().enumerate() {
        let c = color(s);
        let left = |i: usize| i as f64 - 0.4 + s as f64 * width;
        chart
            .draw_series(values.iter().enumerate().filter(|(_, v)| v.0.is_finite()).map(|(i, &(v, _))| Rectangle::new([(left(i) + 0.01, 0.0), (left(i) + width - 0.01, v)], c.filled())))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        chart.draw_series(values.iter().enumerate().filter_map(|(i, &(_, ci))| {
            let (lo, hi) = ci?;
            (lo.is_finite() && hi.is_finite()).then(|| {
                let mid = left(i) + width / 2.0;
                PathElement::new(vec![(mid, lo), (mid, hi)], BLACK.stroke_width(2))
            })
        }))?;
        chart.draw_series(values.iter().enumerate().filter_map(|(i, &(_, ci))| {
            let (lo, hi) = ci?;
            (lo.is_finite() && hi.is_finite()).then(|| {
                let (a, b) = (left(i) + width * 0.3, left(i) + width * 0.7);
                PathElement::new(vec![(a, lo), (b, lo), (b, lo), (a, lo), (a, hi), (b, hi)], BLACK.stroke_width(1))
            })
        }))?;
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    Ok(())
}

/// Stacked areas over time: each series on top of the ones before it (a tenant's share of
/// devices, for example). `series` share the same x values.
pub fn stacked(name: &str, title: &str, x_desc: &str, y_desc: &str, x: &[f64], series: &[(String, Vec<f64>)]) -> Chart {
    let mut cumulative = vec![0.0; x.len()];
    let mut layers = Vec::new();
    for (n, ys) in series {
        let lower = cumulative.clone();
        for (c, y) in cumulative.iter_mut().zip(ys) {
            *c += if y.is_finite() { *y } else { 0.0 };
        }
        layers.push((n.clone(), lower, cumulative.clone()));
    }
    let (x0, mut x1) = bounds(x.iter().copied());
    let (x0, _) = if x0.is_finite() { (x0, 0) } else { (0.0, 0) };
    if !(x1 > x0) {
        x1 = x0 + 1.0;
    }
    let y1 = cumulative.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.05;
    let svg = svg_of(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..y1)?;
        chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).x_label_formatter(&|v| short(*v)).y_label_formatter(&|v| short(*v)).light_line_style(RGBColor(235, 235, 235)).draw()?;
        for (i, (n, lower, upper)) in layers.iter().enumerate() {
            let c = color(i);
            let mut outline: Vec<(f64, f64)> = x.iter().copied().zip(upper.iter().copied()).collect();
            outline.extend(x.iter().copied().zip(lower.iter().copied()).rev());
            chart
                .draw_series(std::iter::once(Polygon::new(outline, c.mix(0.75).filled())))?
                .label(n.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.mix(0.75).filled()));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
        Ok(())
    });
    Chart { name: name.into(), title: title.into(), x_desc: x_desc.into(), y_desc: y_desc.into(), legend: series.iter().map(|s| s.0.clone()).collect(), svg }
}

/// A tick label short enough for an axis: 3 significant digits, with k/M for large values.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trimmed contents of the SVG's `<text>` elements.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text").skip(1).filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim().to_string())).collect()
    }

    #[test]
    fn a_line_chart_draws_its_title_axes_legend_and_data() {
        let c = lines("t", "CDF of JCT", "JCT (s, log)", "fraction of jobs", &[("fifo".into(), vec![(1.0, 0.1), (10.0, 0.5), (100.0, 1.0)]), ("sjf".into(), vec![(2.0, 0.3), (50.0, 1.0)])], true);
        let t = texts(&c.svg);
        for text in ["CDF of JCT", "JCT (s, log)", "fraction of jobs", "fifo", "sjf"] {
            assert!(t.iter().any(|x| x == text), "{text} missing from {t:?}");
        }
        assert!(c.svg.matches("<polyline").count() >= 2, "{}", c.svg);
    }

    #[test]
    fn bars_with_intervals_draw_whiskers() {
        let data = Bars { categories: vec!["avg JCT".into()], series: vec![("fifo".into(), vec![(5.0, Some((4.0, 6.0)))]), ("sjf".into(), vec![(3.0, None)])] };
        let c = bars("b", "Mean JCT", "metric", "seconds", &data);
        let t = texts(&c.svg);
        for text in ["Mean JCT", "avg JCT", "seconds", "fifo", "sjf"] {
            assert!(t.iter().any(|x| x == text), "{text} missing from {t:?}");
        }
        // Background, two bars, two legend swatches, the legend's box; the whisker of fifo's interval.
        assert!(c.svg.matches("<rect").count() >= 5, "{}", c.svg);
        assert!(c.svg.matches("<polyline").count() >= 1, "{}", c.svg);
    }

    #[test]
    fn short_labels() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1500.0), "1500");
        assert_eq!(short(25_000.0), "25k");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(3_500_000.0), "3.5M");
    }
}
