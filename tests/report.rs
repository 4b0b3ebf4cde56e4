//! The report and the Parquet outputs, through the binary, on the Philly comparison: every
//! chart is in report.html and drawn (title, axes, legend, data), the file names no URL, a real
//! browser renders it, and every Parquet file reads back equal to its CSV.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tessera_report::polars::prelude::*;

mod support;

/// `tessera compare scenarios/compare-philly.toml` once for all the tests of this file.
fn philly() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-compare-philly");
        let _ = std::fs::remove_dir_all(&out);
        let scenario = support::scenario("compare-philly.toml");
        let run = support::tessera().arg("compare").arg(&scenario).arg("--out").arg(&out).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(stdout.contains("report.html"), "{stdout}");
        out
    })
}

/// The `<figure class="chart" ...>...</figure>` elements of the page, with their attributes.
struct Figure {
    id: String,
    title: String,
    x: String,
    y: String,
    legend: Vec<String>,
    svg: String,
}

fn attr(tag: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let start = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
    let end = start + tag[start..].find('"').unwrap();
    unescape(&tag[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&#39;", "'").replace("&amp;", "&")
}

fn figures(html: &str) -> Vec<Figure> {
    let mut out = Vec::new();
    for part in html.split("<figure class=\"chart\"").skip(1) {
        let tag_end = part.find('>').unwrap();
        let tag = &part[..tag_end];
        let body = &part[tag_end + 1..part.find("</figure>").unwrap()];
        let svg = &body[body.find("<svg").expect("a figure without an svg")..body.find("</svg>").expect("an unclosed svg") + 6];
        let legend = attr(tag, "data-legend");
        out.push(Figure {
            id: attr(tag, "id"),
            title: attr(tag, "data-title"),
            x: attr(tag, "data-x"),
            y: attr(tag, "data-y"),
            legend: if legend.is_empty() { Vec::new() } else { legend.split('\u{1f}').map(str::to_string).collect() },
            svg: svg.to_string(),
        });
    }
    out
}

/// The text of the svg's `<text>` elements.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text").skip(1).filter_map(|t| Some(unescape(t[t.find('>')? + 1..t.find("</text>")?].trim()))).collect()
}

#[test]
fn every_chart_is_in_the_page_and_drawn() {
    let out = philly();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let figs = figures(&html);
    // The charts the issue asks for, by name; the sweep has two points.
    for wanted in ["jct_cdf", "wait_cdf", "queue_length", "busy_devices", "utilization_by_model", "tenant_share_fifo", "tenant_share_sjf", "fairness", "bars_avg_jct_s", "sweep_avg_jct_s", "world_lost_work_s", "world_preemptions", "world_failures"] {
        assert!(figs.iter().any(|f| f.id == format!("chart-{wanted}")), "no chart {wanted}; have {:?}", figs.iter().map(|f| &f.id).collect::<Vec<_>>());
    }
    for f in &figs {
        let t = texts(&f.svg);
        assert!(t.contains(&f.title), "{}: title {:?} not drawn; texts {t:?}", f.id, f.title);
        assert!(t.contains(&f.y), "{}: y axis {:?} not drawn", f.id, f.y);
        if !f.x.is_empty() {
            assert!(t.contains(&f.x), "{}: x axis {:?} not drawn", f.id, f.x);
        }
        assert!(!f.legend.is_empty(), "{}: no legend", f.id);
        for entry in &f.legend {
            assert!(t.contains(entry), "{}: legend entry {entry:?} not drawn", f.id);
        }
        // Tick labels: more texts than title, axes and legend.
        assert!(t.len() > f.legend.len() + 4, "{}: no tick labels: {t:?}", f.id);
        let marks = f.svg.matches("<polyline").count() + f.svg.matches("<rect").count() + f.svg.matches("<polygon").count();
        assert!(marks > f.legend.len() + 1, "{}: nothing drawn", f.id);
        let file = out.join("plots").join(format!("{}.svg", f.id.trim_start_matches("chart-")));
        assert!(std::fs::read_to_string(&file).unwrap().contains("<svg"), "{}", file.display());
    }
    // Offline: no scheme, no protocol-relative link, no fetched resource of any kind.
    for needle in ["http:", "https:", "//", "src=", "href=", "url(", "@import", "<script", "<link"] {
        let found = html.match_indices(needle).map(|(i, _)| &html[i.saturating_sub(40)..(i + 40).min(html.len())]).next();
        assert!(found.is_none(), "report.html contains {needle:?}: ...{}...", found.unwrap_or_default());
    }
    // The tables: the scenario, its inputs' hashes, the comparison with intervals.
    for needle in ["192 x P100", "SHA-256", "philly-sample.csv", "diff vs baseline", "load_scale=1.5", "baseline"] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
}

/// Opens the report in headless Chromium: the browser parses every chart into its DOM and a
/// screenshot is taken (its path is printed). Skips, saying so, where there is no Chromium.
#[test]
fn chromium_renders_the_report() {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success())) else {
        eprintln!("SKIPPED chromium_renders_the_report: no chromium on this machine (`apt-get install chromium`; .ci/run installs it)");
        return;
    };
    let out = philly();
    let page = std::fs::canonicalize(out.join("report.html")).unwrap();
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();
    let base = |c: &mut Command| {
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]).arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut dump = Command::new(browser);
    base(&mut dump);
    let dom = dump.arg("--dump-dom").arg(&url).output().unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    let expected = figures(&std::fs::read_to_string(&page).unwrap()).len();
    assert!(expected > 10);
    assert_eq!(dom.matches("<svg").count(), expected, "the browser's DOM holds a different number of charts");
    assert_eq!(dom.matches("<figure class=\"chart\"").count(), expected);

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-compare-philly.png");
    let _ = std::fs::remove_file(&shot);
    let mut cmd = Command::new(browser);
    base(&mut cmd);
    let run = cmd.arg(format!("--screenshot={}", shot.display())).arg("--window-size=1400,4000").arg(&url).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // A blank 1400x4000 page compresses to a few kilobytes; charts and tables do not.
    assert!(png.len() > 100_000, "screenshot only {} bytes", png.len());
    println!("screenshot: {}", shot.display());
}

/// A CSV split into rows of fields, with quoted fields (tenant names may hold commas).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut fields = Vec::new();
        let (mut field, mut quoted, mut chars) = (String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut field)),
                (c, _) => field.push(c),
            }
        }
        fields.push(field);
        rows.push(fields);
    }
    let header = rows.remove(0);
    (header, rows)
}

/// Each Parquet file has the CSV's columns and rows, value for value: text equal, numbers
/// equal as numbers (NaN to NaN), empty fields as nulls.
#[test]
fn parquet_outputs_read_back_equal_to_the_csvs() {
    let out = philly();
    let mut csvs = vec![out.join("comparison.csv")];
    for point in ["load_scale=1", "load_scale=1.5"] {
        csvs.push(out.join(point).join("summary.csv"));
        for policy in ["fifo", "sjf"] {
            for r in 0..5 {
                let run = out.join(point).join(policy).join(format!("r{r}"));
                csvs.push(run.join("jobs.csv"));
                csvs.push(run.join("timeseries.csv"));
            }
        }
    }
    let mut cells = 0usize;
    for csv in &csvs {
        let parquet = csv.with_extension("parquet");
        let df = tessera_report::data::read_parquet(&parquet, None).unwrap();
        let (header, rows) = read_csv(csv);
        assert_eq!(df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>(), header, "{}", parquet.display());
        assert_eq!(df.height(), rows.len(), "{}", parquet.display());
        assert!(!rows.is_empty(), "{}", csv.display());
        for (j, name) in header.iter().enumerate() {
            let column = df.column(name).unwrap().as_materialized_series().clone();
            for (i, row) in rows.iter().enumerate() {
                let field = &row[j];
                let value = column.get(i).unwrap();
                let same = match &value {
                    AnyValue::Null => field.is_empty(),
                    AnyValue::String(s) => s == field,
                    v => {
                        let x: f64 = v.extract::<f64>().unwrap_or_else(|| panic!("{}: {name} row {i}: {v:?}", parquet.display()));
                        let y: f64 = field.parse().unwrap_or_else(|_| panic!("{}: {name} row {i}: {field:?}", csv.display()));
                        x == y || (x.is_nan() && y.is_nan())
                    }
                };
                assert!(same, "{}: column {name}, row {i}: parquet {value:?}, csv {field:?}", parquet.display());
                cells += 1;
            }
        }
    }
    assert!(cells > 100_000, "{cells}");
}
