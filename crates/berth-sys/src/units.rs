//! Sizes as Docker writes and reads them: `64m`, `1.5g` in (binary) bytes for limits, and
//! `4.26MB` (decimal, Docker's `HumanSize`) for display.

/// A size that is no size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size: {0:?}")]
pub struct SizeError(pub String);

/// Parses Docker's sizes (its `RAMInBytes`): a number (fractions allowed) and an optional unit
/// `k`, `m`, `g`, `t`, `p` (powers of 1024), optionally followed by `b` or `ib`.
pub fn parse_size(s: &str) -> Result<i64, SizeError> {
    let bad = || SizeError(s.to_string());
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// Like `parse_size`, with `-1` meaning unlimited (kept as -1).
pub fn parse_size_or_unlimited(s: &str) -> Result<i64, SizeError> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    parse_size(s)
}

/// Docker's `units.HumanSize`: decimal units, four significant digits (`4.261MB`).
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 4)
}

/// Docker's `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits
/// (`stats`' NET I/O and BLOCK I/O use 3: `102kB`).
pub fn human_size_precision(bytes: u64, precision: usize) -> String {
    const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    scaled(bytes as f64, 1000.0, &DECIMAL, precision)
}

/// Docker's `units.BytesSize`: binary units, four significant digits (`716KiB`, `23.54GiB`).
pub fn bytes_size(bytes: u64) -> String {
    const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    scaled(bytes as f64, 1024.0, &BINARY, 4)
}

fn scaled(mut v: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    format!("{}{}", go_g(v, precision), units[i])
}

/// Go's `%.Ng` for a non-negative number: N significant digits, trailing zeros dropped, the
/// exponent form when the exponent is below -4 or at least N (`999.95` at 3 digits is `1e+03`).
pub fn go_g(v: f64, precision: usize) -> String {
    let p = precision.max(1);
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            v.to_string()
        };
    }
    // The exponent after rounding to p digits, read from Rust's own scientific form.
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("scientific form has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim(&format!("{v:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2Ki"), Ok(2048));
        assert_eq!(parse_size("3 mb"), Ok(3 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("100b"), Ok(100));
        assert_eq!(parse_size_or_unlimited("-1"), Ok(-1));
        for bad in ["lots", "-1", "12x", "", "1e999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.261MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(1_982_000), "1.982MB");
    }

    #[test]
    fn precision_and_binary_sizes_like_docker() {
        assert_eq!(human_size_precision(0, 3), "0B");
        assert_eq!(human_size_precision(102_400, 3), "102kB");
        assert_eq!(human_size_precision(1_500, 3), "1.5kB");
        assert_eq!(human_size_precision(999_950, 3), "1e+03kB");
        assert_eq!(bytes_size(716 * 1024), "716KiB");
        assert_eq!(bytes_size(64 << 20), "64MiB");
        assert_eq!(bytes_size(25_275_000_000), "23.54GiB");
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
    }
}
