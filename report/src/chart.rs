//! Charts drawn with plotters, as SVG text for the page and `plots/`, and as PNG beside them.
//!
//! A chart keeps what it draws (`Figure`) so both backends draw the same thing. Text is laid
//! out with DejaVu Sans compiled into the binary (`fonts/`, through plotters' `ab_glyph`), so
//! nothing is read from the machine's fonts: the SVG names the generic `sans-serif` family for
//! the browser, and the PNG's letters are rasterized from the bundled font.

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
    figure: Figure,
}

impl Chart {
    fn new(name: &str, title: &str, x_desc: &str, y_desc: &str, legend: Vec<String>, figure: Figure) -> Chart {
        let mut chart = Chart { name: name.into(), title: title.into(), x_desc: x_desc.into(), y_desc: y_desc.into(), legend, svg: String::new(), figure };
        chart.svg = chart.render_svg();
        chart
    }

    fn render_svg(&self) -> String {
        let mut buf = String::new();
        let drawn = {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw_on(&root)
        };
        match drawn {
            Ok(()) => buf,
            // plotters fails only on degenerate input; the page says so rather than losing the run's report.
            Err(e) => format!("<svg width=\"{WIDTH}\" height=\"60\"><text x=\"10\" y=\"30\">chart not drawn: {}</text></svg>", crate::html::escape(&e)),
        }
    }

    /// The chart as a PNG file's bytes (RGB, 8 bits, the SVG's size).
    pub fn png(&self) -> Result<Vec<u8>, String> {
        let mut rgb = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw_on(&root).map_err(|e| format!("chart {} not drawn as PNG: {e}", self.name))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| format!("chart {}: PNG header: {e}", self.name))?;
        writer.write_image_data(&rgb).map_err(|e| format!("chart {}: PNG data: {e}", self.name))?;
        writer.finish().map_err(|e| format!("chart {}: PNG end: {e}", self.name))?;
        Ok(out)
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        register_font();
        let drawn: DrawResult<()> = root.fill(&WHITE).map_err(|e| e.into()).and_then(|_| match &self.figure {
            Figure::Lines { series, x, y, log_x: true } => draw_lines(root, self, series, (x.0..x.1).log_scale(), y.0..y.1),
            Figure::Lines { series, x, y, log_x: false } => draw_lines(root, self, series, x.0..x.1, y.0..y.1),
            Figure::Bars { data, y } => draw_bars(root, self, data, y.0..y.1),
            Figure::Stacked { x, layers, x_range, y1 } => draw_stacked(root, self, x, layers, *x_range, *y1),
        });
        drawn.and_then(|_| root.present().map_err(|e| e.into())).map_err(|e| e.to_string())
    }
}

/// What a chart draws, in data: enough to draw it again on any backend.
#[derive(Clone, Debug)]
enum Figure {
    Lines { series: Vec<(String, Vec<(f64, f64)>)>, x: (f64, f64), y: (f64, f64), log_x: bool },
    Bars { data: Bars, y: (f64, f64) },
    /// Each layer: its name, its lower and its upper edge at every x.
    Stacked { x: Vec<f64>, layers: Vec<(String, Vec<f64>, Vec<f64>)>, x_range: (f64, f64), y1: f64 },
}

/// DejaVu Sans as plotters' `sans-serif`, once per process: plotters' `ab_glyph` text needs a
/// registered font before any chart lays out a label.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse (the tests draw text with it).
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../fonts/DejaVuSans.ttf"));
    });
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
    let mut series: Vec<(String, Vec<(f64, f64)>)> = series
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
    if log_x {
        // plotters' log axis allocates its minor ticks per decade, and a wait of a microsecond
        // against a year of JCT made it ask for gigabytes: the axis starts at 0.1 s at least.
        // No point at all (every job waited 0 s) leaves the bounds infinite: a decade from 1 s.
        x0 = if !x0.is_finite() { 1.0 } else if x0 > 0.1 { x0 } else { 0.1 };
        if !x1.is_finite() {
            x1 = x0 * 10.0;
        }
        series = series.into_iter().map(|(n, p)| (n, p.into_iter().filter(|&(x, _)| x >= x0).collect())).collect();
        if x1 <= x0 {
            x1 = x0 * 10.0;
        }
    } else {
        if !x0.is_finite() || !x1.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
    }
    let legend = series.iter().map(|s| s.0.clone()).collect();
    Chart::new(name, title, x_desc, y_desc, legend, Figure::Lines { series, x: (x0, x1), y: (y0, y1), log_x })
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn draw_lines<DB: DrawingBackend, X>(root: &DrawingArea<DB, Shift>, labels: &Chart, series: &[(String, Vec<(f64, f64)>)], x: X, y: std::ops::Range<f64>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(&labels.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)?;
    chart.configure_mesh().x_desc(&labels.x_desc).y_desc(&labels.y_desc).x_label_formatter(&|v| short(*v)).y_label_formatter(&|v| short(*v)).light_line_style(RGBColor(235, 235, 235)).draw()?;
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
#[derive(Clone, Debug)]
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
    let legend = data.series.iter().map(|s| s.0.clone()).collect();
    Chart::new(name, title, x_desc, y_desc, legend, Figure::Bars { data: data.clone(), y: (y0, y1) })
}

fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, labels: &Chart, data: &Bars, y: std::ops::Range<f64>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let n = data.categories.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(&labels.title, ("sans-serif", 18))
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
        .x_desc(&labels.x_desc)
        .y_desc(&labels.y_desc)
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
    let legend = series.iter().map(|s| s.0.clone()).collect();
    Chart::new(name, title, x_desc, y_desc, legend, Figure::Stacked { x: x.to_vec(), layers, x_range: (x0, x1), y1 })
}

fn draw_stacked<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, labels: &Chart, x: &[f64], layers: &[(String, Vec<f64>, Vec<f64>)], (x0, x1): (f64, f64), y1: f64) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(root)
        .caption(&labels.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..y1)?;
    chart.configure_mesh().x_desc(&labels.x_desc).y_desc(&labels.y_desc).x_label_formatter(&|v| short(*v)).y_label_formatter(&|v| short(*v)).light_line_style(RGBColor(235, 235, 235)).draw()?;
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

    /// The PNG decodes to the chart's size, and is not one flat colour: the axes, lines and
    /// the bundled font's letters are drawn into it.
    #[test]
    fn a_chart_is_also_a_png_with_its_drawing() {
        let c = lines("t", "CDF of JCT", "JCT (s)", "fraction", &[("fifo".into(), vec![(1.0, 0.1), (10.0, 0.5), (100.0, 1.0)])], true);
        let bytes = c.png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let pixels: Vec<[u8; 3]> = rgb[..info.buffer_size()].chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
        let blue = pixels.iter().filter(|p| **p == [0, 114, 178]).count();
        let dark = pixels.iter().filter(|p| p.iter().all(|&v| v < 80)).count();
        assert!(white > pixels.len() / 2, "background: {white} white of {}", pixels.len());
        assert!(blue > 100, "the series' line: {blue} pixels of its colour");
        // Axes, ticks and the caption's, labels' and legend's letters.
        assert!(dark > 1000, "text and axes: {dark} dark pixels");
        // The title alone: its band above the plot holds dark (text) pixels only if letters were drawn.
        let title_band = pixels[..(WIDTH as usize * 30)].iter().filter(|p| p.iter().all(|&v| v < 80)).count();
        assert!(title_band > 50, "title letters: {title_band} dark pixels in the top 30 rows");
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
