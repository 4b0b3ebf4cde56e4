//! The page: one HTML file with its styles and charts inline, and nothing that reaches the
//! network, so it opens offline and can be mailed or archived as it is.

use crate::chart::Chart;
use std::fmt::Write as _;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG document as an element of the page. The namespace declarations go: HTML parses
/// inline `<svg>` into the SVG namespace by itself, and the page then names no URL at all.
pub fn inline_svg(svg: &str) -> String {
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    body.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "").replace(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "")
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1360px;color:#222;background:#fff}\
h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;margin-top:32px;border-bottom:1px solid #ccc;padding-bottom:4px}\
h3{font-size:16px;margin:20px 0 6px}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}p.note{color:#555;font-size:13px;max-width:960px}\
.charts{display:flex;flex-wrap:wrap;gap:12px}figure.chart{margin:0;border:1px solid #e4e4e4;padding:4px;background:#fff}\
figcaption{font-size:12px;color:#555;max-width:640px;padding:2px 4px}code{font-size:12px}";

pub struct Page {
    title: String,
    body: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page { title: title.to_string(), body: String::new() }
    }

    pub fn h(&mut self, level: u8, text: &str) {
        let _ = writeln!(self.body, "<h{level}>{}</h{level}>", escape(text));
    }

    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table; the first `left` columns are text, aligned left.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>], left: usize) {
        self.body.push_str("<table><thead><tr>");
        for (i, h) in header.iter().enumerate() {
            let _ = write!(self.body, "<th{}>{}</th>", if i < left { " class=\"l\"" } else { "" }, escape(h));
        }
        self.body.push_str("</tr></thead><tbody>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let _ = write!(self.body, "<td{}>{}</td>", if i < left { " class=\"l\"" } else { "" }, escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody></table>\n");
    }

    /// Charts side by side. Each figure names what its chart must show (title, axes, legend)
    /// in data attributes, so a test can check that the SVG drew each of them.
    pub fn charts(&mut self, charts: &[&Chart], captions: &[&str]) {
        self.body.push_str("<div class=\"charts\">\n");
        for (i, c) in charts.iter().enumerate() {
            let _ = write!(
                self.body,
                "<figure class=\"chart\" id=\"chart-{}\" data-title=\"{}\" data-x=\"{}\" data-y=\"{}\" data-legend=\"{}\">{}",
                escape(&c.name),
                escape(&c.title),
                escape(&c.x_desc),
                escape(&c.y_desc),
                escape(&c.legend.join("\u{1f}")),
                inline_svg(&c.svg)
            );
            if let Some(caption) = captions.get(i).filter(|c| !c.is_empty()) {
                let _ = write!(self.body, "<figcaption>{}</figcaption>", escape(caption));
            }
            self.body.push_str("</figure>\n");
        }
        self.body.push_str("</div>\n");
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n{}</body></html>\n",
            escape(&self.title),
            self.body
        )
    }
}
