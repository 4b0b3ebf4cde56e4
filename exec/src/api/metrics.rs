//! Prometheus text exposition (format 0.0.4): a small writer for what `/metrics` serves, and a
//! strict reader of the same format, so tests (and anyone scraping in-process) can check that
//! what we serve parses.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metric families in the text format. Each family is announced once by HELP and TYPE.
#[derive(Default)]
pub struct PromWriter {
    out: String,
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn format_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
    format!("{{{}}}", inner.join(","))
}

impl PromWriter {
    pub fn new() -> PromWriter {
        PromWriter::default()
    }

    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = writeln!(self.out, "{name}{} {}", format_labels(labels), format_value(value));
    }

    /// A gauge family with one sample per label set (one unlabelled sample: `&[(&[], v)]`).
    pub fn gauge(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
        self.header(name, "gauge", help);
        for (labels, value) in samples {
            self.sample(name, labels, *value);
        }
    }

    pub fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
        self.header(name, "counter", help);
        for (labels, value) in samples {
            self.sample(name, labels, *value);
        }
    }

    /// A histogram from per-bucket (not cumulative) counts: `counts[i]` observations fell at or
    /// under `upper_bounds_s[i]` and above the previous bound; `counts` may have one more entry
    /// (the overflow above the last bound). Written cumulatively, with `+Inf` = `count`.
    pub fn histogram(&mut self, name: &str, help: &str, upper_bounds: &[f64], counts: &[u64], sum: f64, count: u64) {
        self.header(name, "histogram", help);
        let mut cumulative = 0u64;
        for (i, bound) in upper_bounds.iter().enumerate() {
            cumulative += counts.get(i).copied().unwrap_or(0);
            let le = format_value(*bound);
            self.sample(&format!("{name}_bucket"), &[("le", &le)], cumulative as f64);
        }
        self.sample(&format!("{name}_bucket"), &[("le", "+Inf")], count as f64);
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// One sample as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: the declared type of each family and every sample.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .map(|s| s.value)
    }

    pub fn samples_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        t => t.parse().ok(),
    }
}

/// Reads the text format strictly: every sample line must name a family declared by TYPE
/// (`_bucket`, `_sum`, `_count` for histograms), labels must be well quoted, values numbers,
/// and histogram buckets cumulative. Errors name the line (1-based).
pub fn parse_text(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        let err = |m: String| format!("line {n}: {m}: `{line}`");
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.trim_start().splitn(3, ' ');
            match parts.next() {
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err("TYPE without a name".into()))?;
                    let kind = parts.next().ok_or_else(|| err("TYPE without a type".into()))?;
                    if !valid_metric_name(name) {
                        return Err(err(format!("invalid metric name `{name}`")));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err(format!("unknown type `{kind}`")));
                    }
                    if exp.types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(err(format!("`{name}` declared twice")));
                    }
                }
                Some("HELP") => {
                    let name = parts.next().ok_or_else(|| err("HELP without a name".into()))?;
                    if !valid_metric_name(name) {
                        return Err(err(format!("invalid metric name `{name}`")));
                    }
                }
                _ => {}
            }
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}').ok_or_else(|| err("unclosed `{`".into()))?;
                (&line[..open], parse_labels(&line[open + 1..close]).map_err(&err)?, &line[close + 1..])
            }
            None => {
                let sp = line.find(' ').ok_or_else(|| err("no value".into()))?;
                (&line[..sp], BTreeMap::new(), &line[sp..])
            }
        };
        if !valid_metric_name(name) {
            return Err(err(format!("invalid metric name `{name}`")));
        }
        let mut fields = rest.split_whitespace();
        let value_text = fields.next().ok_or_else(|| err("no value".into()))?;
        let value = parse_value(value_text).ok_or_else(|| err(format!("value `{value_text}` is not a number")))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err(format!("timestamp `{ts}` is not an integer")))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing text after the timestamp".into()));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|base| exp.types.get(*base).is_some_and(|t| t == "histogram" || t == "summary")))
            .unwrap_or(name);
        if !exp.types.contains_key(family) {
            return Err(err(format!("sample of `{name}` before its TYPE line")));
        }
        if name.ends_with("_bucket") && family != name {
            let le = labels.get("le").ok_or_else(|| err("histogram bucket without `le`".into()))?;
            parse_value(le).ok_or_else(|| err(format!("`le` = `{le}` is not a number")))?;
            let prev = exp.samples.iter().rev().find(|s| s.name == name);
            if let Some(prev) = prev {
                if prev.value > value {
                    return Err(err("histogram buckets are not cumulative".into()));
                }
            }
        }
        exp.samples.push(Sample { name: name.to_string(), labels, value });
    }
    Ok(exp)
}

fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || !valid_metric_name(key.trim()) {
            return Err(format!("bad label name `{key}`"));
        }
        if chars.next() != Some('"') {
            return Err(format!("label `{key}`: value not quoted"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => return Err(format!("label `{key}`: bad escape {other:?}")),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => return Err(format!("label `{key}`: unterminated value")),
            }
        }
        if labels.insert(key.trim().to_string(), value).is_some() {
            return Err(format!("label `{key}` repeated"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_reads_back() {
        let mut w = PromWriter::new();
        w.gauge("q_len", "Jobs waiting.", &[(&[], 3.0)]);
        w.gauge("util", "Busy share, \"quoted\".", &[(&[("device", "cpu0")], 0.5), (&[("device", "we\"ird\\")], 1.0)]);
        w.histogram("lat_seconds", "Decision latency.", &[0.001, 0.01], &[2, 1, 4], 0.5, 7);
        let text = w.finish();
        let exp = parse_text(&text).unwrap();
        assert_eq!(exp.value("q_len", &[]), Some(3.0));
        assert_eq!(exp.value("util", &[("device", "we\"ird\\")]), Some(1.0));
        assert_eq!(exp.value("lat_seconds_bucket", &[("le", "0.001")]), Some(2.0));
        assert_eq!(exp.value("lat_seconds_bucket", &[("le", "0.01")]), Some(3.0));
        assert_eq!(exp.value("lat_seconds_bucket", &[("le", "+Inf")]), Some(7.0));
        assert_eq!(exp.value("lat_seconds_count", &[]), Some(7.0));
        assert_eq!(exp.types["lat_seconds"], "histogram");
    }

    #[test]
    fn refuses_broken_text_naming_the_line() {
        let e = parse_text("# TYPE a gauge\na 1\nb 2\n").unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("before its TYPE"), "{e}");
        let e = parse_text("# TYPE a gauge\na{x=\"1} 2\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse_text("# TYPE a gauge\na one\n").unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = parse_text("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 4\n").unwrap_err();
        assert!(e.contains("cumulative"), "{e}");
        let e = parse_text("# TYPE 9a gauge\n").unwrap_err();
        assert!(e.contains("invalid metric name"), "{e}");
    }
}
