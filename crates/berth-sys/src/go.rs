//! What berth borrows from Go's standard library to speak as Docker and BuildKit do: `strconv`'s
//! quoting (`Quote`, `QuoteToASCII`, `QuoteRune`, `CanBackquote`) with the `unicode.IsPrint` it
//! relies on, and `time.ParseDuration` with its messages. Strings in, strings out.

/// Go's `unicode.IsPrint`, close enough: no controls, no spaces but ' ', no format or
/// private-use characters.
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0xD800..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF
        | 0xE0000..=0xE007F | 0xF0000..=0x10FFFF)
}

fn escape_into(out: &mut String, c: char, quote: char, ascii_only: bool) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if is_print(c) && (!ascii_only || c.is_ascii()) => out.push(c),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_into(&mut out, c, '"', false);
    }
    out.push('"');
    out
}

pub fn quote_ascii(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        escape_into(&mut out, c, '"', true);
    }
    out.push('"');
    out
}

pub fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    escape_into(&mut out, c, '\'', false);
    out.push('\'');
    out
}

pub fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c == '\t' || (c != '`' && c != '\u{FEFF}' && !c.is_control()))
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {}", quote(s));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = &rest[..int_end];
        rest = &rest[int_end..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac_part = &r[..frac_end];
            rest = &r[frac_end..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {}", quote(s))),
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(s)
                ))
            }
        };
        let number: f64 = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            frac_part
        )
        .trim_end_matches('.')
        .parse()
        .map_err(|_| bad())?;
        total += number * scale;
        if total > i64::MAX as f64 {
            return Err(bad());
        }
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_does() {
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-2ms"), Ok(-2_000_000));
        for bad in ["5", "5x", "", ".s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
    }

    #[test]
    fn quoting_is_gos() {
        assert_eq!(quote("a\"b\n\u{7f}é"), "\"a\\\"b\\n\\x7fé\"");
        assert_eq!(quote_ascii("é"), "\"\\u00e9\"");
        assert_eq!(quote_rune('\''), "'\\''");
        assert!(can_backquote("a\tb") && !can_backquote("a`b"));
    }
}
