//! The CSV reading every loader shares: records split from text held in memory, fields
//! borrowed from it, positions kept so errors name the physical line.

use crate::{TraceError, TraceJob};
use std::hash::Hasher;
use std::path::Path;

/// Parses a decimal number, with a fast path for the plain `123` / `123.456` that traces are
/// made of: when the digits fit in 2^53 and there are at most 22 decimals, `m / 10^k` of two
/// exactly representable numbers is correctly rounded (Clinger's fast path), so the result
/// is bit-identical to `str::parse`, which handles everything else.
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let bytes = s.as_bytes();
    if !bytes.is_empty() && bytes.len() <= 17 {
        let mut mantissa: u64 = 0;
        let mut decimals: Option<usize> = None;
        let mut digits = 0;
        let mut plain = true;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'0'..=b'9' => {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    digits += 1;
                }
                b'.' if decimals.is_none() => decimals = Some(i),
                _ => {
                    plain = false;
                    break;
                }
            }
        }
        // At most 17 characters hold at most 17 digits: below 10^17 < 2^57; check 2^53.
        if plain && digits > 0 && mantissa < (1u64 << 53) {
            let k = decimals.map_or(0, |dot| bytes.len() - dot - 1);
            return Some(mantissa as f64 / POW10[k]);
        }
    }
    s.parse().ok()
}

/// The field as an error shows it: at most 80 characters.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

/// Where one CSV field's text is: a span of the file, or (for a quoted field that held
/// doubled quotes) a span of the record's unescaped scratch text.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    quoted: bool,
    unescaped: bool,
}

/// Splits CSV text into records. Written by hand rather than with the `csv` crate so that
/// lines are counted exactly as an editor counts them (quoted newlines included) and fields
/// borrow from the text: a record is a reused list of spans, so reading one allocates nothing.
pub(crate) struct Records<'a> {
    text: &'a str,
    pos: usize,
    /// The 1-based line `pos` is on.
    line: u64,
    fields: Vec<Span>,
    /// Quoted fields of the current record that held doubled quotes, with the quotes undoubled.
    unescaped: String,
}

impl<'a> Records<'a> {
    pub(crate) fn new(text: &'a str) -> Records<'a> {
        Records {
            text,
            pos: 0,
            line: 1,
            fields: Vec::with_capacity(16),
            unescaped: String::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// Field `i` of the current record: quoted text verbatim, unquoted text trimmed of spaces
    /// and tabs.
    pub(crate) fn field(&self, i: usize) -> &str {
        let span = self.fields[i];
        let text = if span.unescaped {
            &self.unescaped[span.start..span.end]
        } else {
            &self.text[span.start..span.end]
        };
        let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        if span.quoted || !(padded(text.as_bytes().first()) || padded(text.as_bytes().last())) {
            text
        } else {
            text.trim_matches([' ', '\t'])
        }
    }

    /// Whether the current record is a blank line (nothing, or only whitespace).
    /// Whether field `i` was written in double quotes.
    #[cfg(test)]
    pub(crate) fn is_quoted(&self, i: usize) -> bool {
        self.fields[i].quoted
    }

    pub(crate) fn is_blank(&self) -> bool {
        self.fields.len() == 1 && !self.fields[0].quoted && self.field(0).trim().is_empty()
    }

    /// Reads the next record and returns the line it starts on, or `None` at the end of the
    /// text. Errors are (line, message).
    pub(crate) fn next_record(&mut self) -> Result<Option<u64>, (u64, String)> {
        self.fields.clear();
        self.unescaped.clear();
        let text = self.text;
        let bytes = text.as_bytes();
        let len = bytes.len();
        if self.pos >= len {
            return Ok(None);
        }
        let start_line = self.line;
        loop {
            if bytes[self.pos] == b'"' {
                let quote_line = self.line;
                self.pos += 1;
                let content_start = self.pos;
                let mut segment_start = self.pos;
                let mut unescaped_start: Option<usize> = None;
                let content_end = loop {
                    let Some(q) = bytes[self.pos..].iter().position(|&b| b == b'"').map(|q| self.pos + q) else {
                        return Err((quote_line, "a quoted field is never closed (missing `\"`)".into()));
                    };
                    self.line += bytes[self.pos..q].iter().filter(|&&b| b == b'\n').count() as u64;
                    if bytes.get(q + 1) == Some(&b'"') {
                        // A doubled quote stands for one quote character.
                        unescaped_start.get_or_insert(self.unescaped.len());
                        self.unescaped.push_str(&text[segment_start..=q]);
                        self.pos = q + 2;
                        segment_start = self.pos;
                    } else {
                        self.pos = q + 1;
                        break q;
                    }
                };
                let span = match unescaped_start {
                    None => Span {
                        start: content_start,
                        end: content_end,
                        quoted: true,
                        unescaped: false,
                    },
                    Some(start) => {
                        self.unescaped.push_str(&text[segment_start..content_end]);
                        Span {
                            start,
                            end: self.unescaped.len(),
                            quoted: true,
                            unescaped: true,
                        }
                    }
                };
                self.fields.push(span);
                while self.pos < len && matches!(bytes[self.pos], b' ' | b'\t' | b'\r') {
                    self.pos += 1;
                }
                match bytes.get(self.pos) {
                    None => return Ok(Some(start_line)),
                    Some(b',') => self.pos += 1,
                    Some(b'\n') => {
                        self.pos += 1;
                        self.line += 1;
                        return Ok(Some(start_line));
                    }
                    Some(_) => return Err((self.line, "unexpected text after a closing quote".into())),
                }
            } else {
                let start = self.pos;
                let mut end = start;
                while end < len && bytes[end] != b',' && bytes[end] != b'\n' {
                    end += 1;
                }
                let mut value_end = end;
                if value_end > start && bytes[value_end - 1] == b'\r' {
                    value_end -= 1;
                }
                self.fields.push(Span {
                    start,
                    end: value_end,
                    quoted: false,
                    unescaped: false,
                });
                self.pos = end + 1;
                match bytes.get(end) {
                    None => return Ok(Some(start_line)),
                    Some(b',') => {}
                    _ => {
                        self.line += 1;
                        return Ok(Some(start_line));
                    }
                }
            }
            if self.pos >= len {
                // A comma as the very last byte: the record ends with an empty field.
                self.fields.push(Span {
                    start: len,
                    end: len,
                    quoted: false,
                    unescaped: false,
                });
                return Ok(Some(start_line));
            }
        }
    }
}

/// A cheap hasher for job ids (trusted numbers, so no need for SipHash's DoS resistance).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, x: u64) {
        // Multiply by an odd constant (a bijection), then fold the well-mixed high half into the
        // low bits the table indexes by, so ids that are all multiples of 2^k still spread.
        let p = (self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = p ^ (p >> 29);
    }
}

pub(crate) const EXPECT_SECONDS: &str = "a number of seconds >= 0";
pub(crate) const EXPECT_GPUS: &str = "a whole GPU count >= 1";

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TraceError> {
    std::fs::read(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes as UTF-8 text, a leading byte-order mark dropped.
pub(crate) fn text<'a>(data: &'a [u8], origin: &Path) -> Result<&'a str, TraceError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    std::str::from_utf8(data).map_err(|e| TraceError::Syntax {
        path: origin.to_path_buf(),
        line: 1 + data[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64,
        message: "the text is not valid UTF-8".into(),
    })
}

/// A CSV file being read: the header's column names, then one row at a time.
pub(crate) struct Table<'a> {
    records: Records<'a>,
    origin: &'a Path,
    header_line: u64,
    header: Vec<String>,
    line: u64,
}

impl<'a> Table<'a> {
    /// Reads the header: the first non-blank line. `expected_header` is what an empty
    /// file's error says should be there.
    pub(crate) fn open(text: &'a str, origin: &'a Path, expected_header: &'static str) -> Result<Table<'a>, TraceError> {
        let mut t = Table {
            records: Records::new(text),
            origin,
            header_line: 0,
            header: Vec::new(),
            line: 0,
        };
        loop {
            match t.records.next_record().map_err(|e| t.syntax(e))? {
                None => {
                    return Err(TraceError::Empty {
                        path: origin.to_path_buf(),
                        expected_header,
                    })
                }
                Some(line) if !t.records.is_blank() => {
                    t.header_line = line;
                    t.line = line;
                    break;
                }
                Some(_) => {}
            }
        }
        t.header = (0..t.records.len()).map(|i| t.records.field(i).to_string()).collect();
        Ok(t)
    }

    fn syntax(&self, (line, message): (u64, String)) -> TraceError {
        TraceError::Syntax {
            path: self.origin.to_path_buf(),
            line,
            message,
        }
    }

    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.header.iter().any(|h| h == name)
    }

    /// The index of a required column: an error if it is missing or named twice.
    pub(crate) fn column(&self, name: &'static str) -> Result<usize, TraceError> {
        let mut found = self.header.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i);
        let first = found.next().ok_or(TraceError::MissingColumn {
            path: self.origin.to_path_buf(),
            line: self.header_line,
            column: name,
        })?;
        if found.next().is_some() {
            return Err(TraceError::DuplicateColumn {
                path: self.origin.to_path_buf(),
                line: self.header_line,
                column: name.to_string(),
            });
        }
        Ok(first)
    }

    /// Finds each of `names` in the header in one pass over it: an error for the first header
    /// field that repeats one of `names`, then for the first required name that is missing (in
    /// the order of `names`). `None` for an absent optional column; [`Table::get`] reads it as
    /// empty.
    pub(crate) fn columns<const N: usize>(
        &self,
        names: &[&'static str; N],
        required: &[bool; N],
    ) -> Result<[Option<usize>; N], TraceError> {
        let mut index = [None; N];
        for (i, name) in self.header.iter().enumerate() {
            if let Some(c) = names.iter().position(|&col| col == name) {
                if index[c].is_some() {
                    return Err(TraceError::DuplicateColumn {
                        path: self.origin.to_path_buf(),
                        line: self.header_line,
                        column: name.clone(),
                    });
                }
                index[c] = Some(i);
            }
        }
        if let Some(c) = (0..N).find(|&c| required[c] && index[c].is_none()) {
            return Err(TraceError::MissingColumn {
                path: self.origin.to_path_buf(),
                line: self.header_line,
                column: names[c],
            });
        }
        Ok(index)
    }

    /// Moves to the next non-blank row; `false` at the end. A row whose field count differs
    /// from the header's is an error.
    pub(crate) fn next_row(&mut self) -> Result<bool, TraceError> {
        loop {
            match self.records.next_record().map_err(|e| self.syntax(e))? {
                None => return Ok(false),
                Some(_) if self.records.is_blank() => {}
                Some(line) => {
                    self.line = line;
                    if self.records.len() != self.header.len() {
                        return Err(TraceError::FieldCount {
                            path: self.origin.to_path_buf(),
                            line,
                            expected: self.header.len(),
                            found: self.records.len(),
                        });
                    }
                    return Ok(true);
                }
            }
        }
    }

    /// The line the current row starts on (the header's before the first row).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    pub(crate) fn field(&self, i: usize) -> &str {
        self.records.field(i)
    }

    /// Field `i` of the current row, or `""` for an absent optional column (`None`).
    #[inline]
    pub(crate) fn get(&self, i: Option<usize>) -> &str {
        i.map_or("", |i| self.records.field(i))
    }

    /// The error for field `i` of the current row (`None`: an absent optional column, read as
    /// empty), in column `column`.
    pub(crate) fn bad(&self, i: impl Into<Option<usize>>, column: &'static str, expected: &'static str) -> TraceError {
        TraceError::BadField {
            path: self.origin.to_path_buf(),
            line: self.line,
            column,
            expected,
            found: shorten(self.get(i.into())),
        }
    }

    /// An error about the current row that a `BadField` cannot say.
    pub(crate) fn invalid(&self, column: &str, message: String) -> TraceError {
        TraceError::Invalid {
            path: self.origin.to_path_buf(),
            line: self.line,
            column: format!("column `{column}`"),
            message,
        }
    }

    pub(crate) fn no_jobs(&self) -> TraceError {
        TraceError::NoJobs {
            path: self.origin.to_path_buf(),
        }
    }
}

/// A finite number of seconds >= 0 (`-0` read as 0).
pub(crate) fn seconds(s: &str) -> Option<f64> {
    let x = parse_f64(s)?;
    (x.is_finite() && x >= 0.0).then_some(x + 0.0)
}

/// A whole count >= 1 (`8`, `8.0`), at most `u32::MAX`.
pub(crate) fn gpu_count(s: &str) -> Option<f64> {
    let x = parse_f64(s)?;
    (x.is_finite() && x >= 1.0 && x.fract() == 0.0 && x <= u32::MAX as f64).then_some(x)
}

/// Sorts stably by submission time: equal times keep their order. Sorts (time, index)
/// pairs and then moves each job once, which is several times faster than a stable sort
/// that moves the jobs themselves at every merge step.
pub(crate) fn sort_by_submit(jobs: &mut Vec<TraceJob>) {
    if jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s) {
        return;
    }
    let mut order: Vec<(f64, usize)> = jobs.iter().map(|j| j.submit_s).zip(0..).collect();
    // The index breaks ties, so an unstable sort gives the stable order.
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut slots: Vec<Option<TraceJob>> = jobs.drain(..).map(Some).collect();
    jobs.extend(order.iter().map(|&(_, i)| slots[i].take().expect("each index once")));
}

/// Sorts stably by submission time (equal times keep their order) and numbers the jobs
/// 1, 2, … in that order.
pub(crate) fn sort_and_number(jobs: &mut Vec<TraceJob>) {
    sort_by_submit(jobs);
    for (i, job) in jobs.iter_mut().enumerate() {
        job.job_id = i as u64 + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(u64, Vec<(String, bool)>)> {
        let mut r = Records::new(text);
        let mut out = Vec::new();
        while let Some(line) = r.next_record().unwrap() {
            out.push((
                line,
                (0..r.len())
                    .map(|i| (r.field(i).to_string(), r.is_quoted(i)))
                    .collect(),
            ));
        }
        out
    }

    #[test]
    fn fast_float_path_agrees_with_std() {
        let cases = [
            "0",
            "5",
            "5.",
            ".5",
            "0.1",
            "0.3",
            "12.5",
            "1234567.891",
            "9007199254740991",
            "9007199254740993",
            "0.0000000000000001",
            "99999999999999999",
            "3.14159265358979",
            "1e3",
            "-0",
            "-2.5",
            "+1",
            "inf",
            "",
            ".",
            "1.2.3",
            "1_0",
            "00012.50",
        ];
        for c in cases {
            let want: Option<f64> = c.parse().ok();
            assert_eq!(parse_f64(c).map(f64::to_bits), want.map(f64::to_bits), "{c:?}");
        }
        // A deterministic sweep over decimals of several lengths.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 10_000_000_000_000_000).to_string();
            let dot = (x >> 60) as usize % (digits.len() + 1);
            let s = format!("{}.{}", &digits[..dot], &digits[dot..]);
            assert_eq!(
                parse_f64(&s).map(f64::to_bits),
                s.parse::<f64>().ok().map(f64::to_bits),
                "{s:?}"
            );
        }
    }

    #[test]
    fn splitter_handles_quotes_newlines_and_crlf() {
        let got = split("a,\"b,\"\"c\"\"\",d\r\n\"x\ny\",,\n\nlast,");
        let f = |s: &str, q: bool| (s.to_string(), q);
        assert_eq!(got[0], (1, vec![f("a", false), f("b,\"c\"", true), f("d", false)]));
        assert_eq!(got[1], (2, vec![f("x\ny", true), f("", false), f("", false)]));
        assert_eq!(got[2], (4, vec![f("", false)]));
        assert_eq!(got[3], (5, vec![f("last", false), f("", false)]));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn splitter_reports_an_unclosed_quote_at_its_line() {
        let mut r = Records::new("a\n\"open,b\nc");
        r.next_record().unwrap();
        assert_eq!(r.next_record().unwrap_err().0, 2);
    }
}
