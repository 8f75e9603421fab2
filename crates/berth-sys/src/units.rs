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

/// Docker's `units.HumanSize`: decimal units, four significant digits.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", units[i])
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
    }
}
