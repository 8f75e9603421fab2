//! The value syntaxes instructions borrow from Go: durations (`1m30s`), RAM sizes (`64m`), octal
//! modes, and the "did you mean" suggestion BuildKit adds to unknown names.

/// Go's `time.ParseDuration`, in nanoseconds (berth's one home for it is `berth_sys::go`).
pub use berth_sys::go::parse_duration;

/// docker/go-units' `RAMInBytes`: `64m`, `1.5g`, `512KiB`, `1024` (binary multiples).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, mut unit) = (&s[..num_end], &s[num_end..]);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let mut chars = unit.chars().peekable();
    let mult: f64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1024f64,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if mult != 1.0 {
        chars.next();
    }
    let tail: String = chars.collect::<String>().to_ascii_lowercase();
    if !matches!(tail.as_str(), "" | "i" | "b" | "ib") {
        return Err(bad());
    }
    let bytes = value * mult;
    if bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// The closest of `options` to `value` within edit distance 2, as BuildKit suggests.
pub fn suggest(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let norm = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let v = norm(value);
    let mut best: Option<(usize, String)> = None;
    for opt in options {
        let o = norm(opt);
        if o == v {
            return None;
        }
        let d = levenshtein(&v, &o);
        if d < best.as_ref().map_or(3, |b| b.0) {
            let shown = if case_sensitive {
                o
            } else if value == value.to_lowercase() {
                opt.to_lowercase()
            } else if value == value.to_uppercase() {
                opt.to_uppercase()
            } else {
                opt.to_string()
            };
            best = Some((d, shown));
        }
    }
    best.map(|b| b.1)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(256).collect();
    let b: Vec<char> = b.chars().take(256).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go() {
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-2ms"), Ok(-2_000_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration(".s").is_err());
    }

    #[test]
    fn ram_sizes_are_binary() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512 kb"), Ok(512 << 10));
        assert_eq!(ram_in_bytes("1024"), Ok(1024));
        assert!(ram_in_bytes("big").is_err());
        assert!(ram_in_bytes("1x").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("RUNN", &["RUN", "COPY"], false), Some("RUN".into()));
        assert_eq!(suggest("runn", &["RUN", "COPY"], false), Some("run".into()));
        assert_eq!(suggest("XYZZY", &["RUN", "COPY"], false), None);
    }
}
