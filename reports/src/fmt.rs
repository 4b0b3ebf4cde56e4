//! Allocation-free CSV field formatting into a byte buffer, shared by the CSV writers.

use std::io::Write;

/// Appends `n` in decimal.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Appends the last `width` decimal digits of `n`, zero-padded (`width` <= 20).
fn push_digits(buf: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&digits[..width]);
}

/// Appends microseconds as seconds with exactly 6 decimals: exact, and no float rounding.
pub(crate) fn push_micros_as_secs(buf: &mut Vec<u8>, micros: u64) {
    push_u64(buf, micros / 1_000_000);
    buf.push(b'.');
    push_digits(buf, micros % 1_000_000, 6);
}

/// Appends a thousandths count as a short decimal: 500 -> `0.5`, 2000 -> `2`, 1250 -> `1.25`.
pub(crate) fn push_milli(buf: &mut Vec<u8>, milli: u64) {
    push_u64(buf, milli / 1000);
    let mut frac = milli % 1000;
    if frac == 0 {
        return;
    }
    let mut width = 3;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    buf.push(b'.');
    push_digits(buf, frac, width);
}

/// Appends a float with a fixed number of decimals; NaN as `NaN`, and -0 as 0 so that a
/// value that rounds to zero never prints as `-0.000`.
pub(crate) fn push_fixed(buf: &mut Vec<u8>, x: f64, decimals: usize) {
    if x.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else {
        let start = buf.len();
        let _ = write!(buf, "{:.*}", decimals, x);
        if buf[start] == b'-' && buf[start + 1..].iter().all(|&b| b == b'0' || b == b'.') {
            buf.remove(start);
        }
    }
}

/// Whether a CSV text field must be quoted to read back the same.
pub(crate) fn needs_quotes(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Appends a CSV text field, quoted (with doubled inner quotes) when it must be.
pub(crate) fn push_text(buf: &mut Vec<u8>, s: &str) {
    if !needs_quotes(s) {
        buf.extend_from_slice(s.as_bytes());
        return;
    }
    buf.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = b"x".to_vec();
        f(&mut buf);
        String::from_utf8(buf[1..].to_vec()).unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(s(|b| push_u64(b, 0)), "0");
        assert_eq!(s(|b| push_u64(b, u64::MAX)), "18446744073709551615");
        assert_eq!(s(|b| push_micros_as_secs(b, 0)), "0.000000");
        assert_eq!(s(|b| push_micros_as_secs(b, 12_000_345)), "12.000345");
        assert_eq!(s(|b| push_micros_as_secs(b, 999_999)), "0.999999");
        assert_eq!(s(|b| push_milli(b, 500)), "0.5");
        assert_eq!(s(|b| push_milli(b, 1)), "0.001");
        assert_eq!(s(|b| push_milli(b, 250)), "0.25");
        assert_eq!(s(|b| push_milli(b, 2000)), "2");
        assert_eq!(s(|b| push_milli(b, 1050)), "1.05");
        assert_eq!(s(|b| push_fixed(b, f64::NAN, 3)), "NaN");
        assert_eq!(s(|b| push_fixed(b, -0.0, 3)), "0.000");
        assert_eq!(s(|b| push_fixed(b, -0.0001, 3)), "0.000");
        assert_eq!(s(|b| push_fixed(b, -1.5, 3)), "-1.500");
        assert_eq!(s(|b| push_fixed(b, -10.0, 1)), "-10.0");
        assert_eq!(s(|b| push_fixed(b, 2.0 / 3.0, 6)), "0.666667");
        assert_eq!(s(|b| push_text(b, "plain")), "plain");
        assert_eq!(s(|b| push_text(b, "a,b")), "\"a,b\"");
        assert_eq!(s(|b| push_text(b, "say \"hi\"")), "\"say \"\"hi\"\"\"");
    }
}
