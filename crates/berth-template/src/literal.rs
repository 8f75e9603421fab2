//! Literal syntax as Go reads it: quoted and raw strings (`strconv.Unquote`), character
//! constants, and numbers in every Go spelling (`0x1F`, `0o17`, `0b101`, `1_000`, `1e3`,
//! `0x1.8p1`), classified the way the template parser does. Errors are Go's texts.

use crate::ast::Number;

const SYNTAX: &str = "invalid syntax";

/// Go's `strconv.Unquote` for a double-quoted or raw (backquoted) string literal.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        if s.len() < 2 || raw.contains('`') {
            return Err(SYNTAX.into());
        }
        return Ok(raw.replace('\r', ""));
    }
    let body = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
        .ok_or(SYNTAX)?;
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (piece, tail) = unquote_one(rest, '"')?;
        match piece {
            Piece::Char(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Piece::Byte(b) => out.push(b),
        }
        rest = tail;
    }
    // Go strings may hold any bytes (`"\xff"`); ours are UTF-8, so such bytes become U+FFFD.
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

enum Piece {
    Char(char),
    Byte(u8),
}

/// One character or escape from the start of `s` (Go's `strconv.UnquoteChar`).
fn unquote_one(s: &str, quote: char) -> Result<(Piece, &str), String> {
    let mut chars = s.chars();
    let c = chars.next().ok_or(SYNTAX)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(SYNTAX.into());
    }
    if c != '\\' {
        return Ok((Piece::Char(c), chars.as_str()));
    }
    let e = chars.next().ok_or(SYNTAX)?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((Piece::Char(c), rest));
    }
    let hex = |n: usize| -> Result<(u32, &str), String> {
        let digits = rest.get(..n).ok_or(SYNTAX)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SYNTAX.into());
        }
        Ok((
            u32::from_str_radix(digits, 16).map_err(|_| SYNTAX)?,
            &rest[n..],
        ))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            Ok((
                if v < 0x80 {
                    Piece::Char(v as u8 as char)
                } else {
                    Piece::Byte(v as u8)
                },
                tail,
            ))
        }
        'u' | 'U' => {
            let (v, tail) = hex(if e == 'u' { 4 } else { 8 })?;
            let c = char::from_u32(v).ok_or(SYNTAX)?;
            Ok((Piece::Char(c), tail))
        }
        '0'..='7' => {
            let digits = s.get(1..4).ok_or(SYNTAX)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(SYNTAX.into());
            }
            let v = u32::from_str_radix(digits, 8).map_err(|_| SYNTAX)?;
            if v > 255 {
                return Err(SYNTAX.into());
            }
            Ok((
                if v < 0x80 {
                    Piece::Char(v as u8 as char)
                } else {
                    Piece::Byte(v as u8)
                },
                &s[4..],
            ))
        }
        _ => Err(SYNTAX.into()),
    }
}

/// A character constant such as `'a'`, `'\n'` or `'\u30d1'`: an integer, as in Go.
pub(crate) fn unquote_char(text: &str) -> Result<Number, String> {
    let inner = text.strip_prefix('\'').ok_or(SYNTAX)?;
    let (piece, tail) = unquote_one(inner, '\'')?;
    if tail != "'" {
        return Err(format!("malformed character constant: {text}"));
    }
    let v = match piece {
        Piece::Char(c) => c as u32,
        Piece::Byte(b) => u32::from(b),
    };
    Ok(Number {
        text: text.to_string(),
        is_int: true,
        is_uint: true,
        is_float: true,
        int: i64::from(v),
        uint: u64::from(v),
        float: f64::from(v),
    })
}

/// Go's rule for `_` in number literals: only between digits, or after a base prefix.
fn underscores_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut i = 0;
    let mut saw = '^';
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = '0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = '0';
        } else if c == b'_' {
            if saw != '0' {
                return false;
            }
            saw = '_';
        } else {
            if saw == '_' {
                return false;
            }
            saw = '!';
        }
    }
    saw != '_'
}

/// Go's `strconv.ParseInt(s, 0, 64)` (`signed`) or `ParseUint(s, 0, 64)`, widened.
fn parse_int(s: &str, signed: bool) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') if signed => (true, &s[1..]),
        Some(b'+') if signed => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (base, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if !underscores_ok(body) {
        return None;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mag = u64::from_str_radix(&digits, base).ok()?;
    let v = i128::from(mag);
    let v = if neg { -v } else { v };
    if signed && (v < i128::from(i64::MIN) || v > i128::from(i64::MAX)) {
        return None;
    }
    Some(v)
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal and hexadecimal (`0x1.8p3`) spellings;
/// out-of-range values are errors, as in Go.
fn parse_float(s: &str) -> Option<f64> {
    if !underscores_ok(s) {
        return None;
    }
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let v = if body.len() > 1 && body[..2].eq_ignore_ascii_case("0x") {
        parse_hex_float(&body[2..])?
    } else {
        let ok = body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        if !ok || !body.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    if v.is_infinite() {
        return None;
    }
    Some(if neg { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let shift = exp.checked_sub(4 * i32::try_from(frac.len()).ok()?)?;
    Some(v * 2f64.powi(shift))
}

/// Classifies a number token as Go's parser does: which of int, uint and float64 hold it.
pub(crate) fn parse_number(text: &str) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        ..Number::default()
    };
    if let Some(imag) = text.strip_suffix('i') {
        if parse_float(imag).is_some() {
            return Err(format!("complex constant {text} is not supported"));
        }
    }
    if let Some(u) = parse_int(text, false) {
        n.is_uint = true;
        n.uint = u as u64;
    }
    if let Some(i) = parse_int(text, true) {
        n.is_int = true;
        n.int = i as i64;
        if i == 0 {
            n.is_uint = true;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = n.uint as f64;
    } else if let Some(f) = parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", crate::gofmt::quote(text)));
        }
        n.is_float = true;
        n.float = f;
        if (f as i64) as f64 == f {
            n.is_int = true;
            n.int = f as i64;
        }
        if f >= 0.0 && (f as u64) as f64 == f {
            n.is_uint = true;
            n.uint = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!(
            "illegal number syntax: {}",
            crate::gofmt::quote(text)
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::{parse_number, unquote, unquote_char};

    /// Go's `numberTests` (parse_test.go): which of int, uint and float a literal is.
    #[test]
    fn go_number_vectors_classify_as_go_does() {
        let cases: &[(&str, bool, bool, bool, i64, f64)] = &[
            ("0", true, true, true, 0, 0.0),
            ("-0", true, true, true, 0, 0.0),
            ("73", true, true, true, 73, 73.0),
            ("7_3", true, true, true, 73, 73.0),
            ("0b10_010_01", true, true, true, 73, 73.0),
            ("0B10_010_01", true, true, true, 73, 73.0),
            ("073", true, true, true, 0o73, 59.0),
            ("0o73", true, true, true, 0o73, 59.0),
            ("0O73", true, true, true, 0o73, 59.0),
            ("0x73", true, true, true, 0x73, 115.0),
            ("0X73", true, true, true, 0x73, 115.0),
            ("0x7_3", true, true, true, 0x73, 115.0),
            ("-73", true, false, true, -73, -73.0),
            ("+73", true, false, true, 73, 73.0),
            ("100", true, true, true, 100, 100.0),
            ("1e9", true, true, true, 1_000_000_000, 1e9),
            ("-1e9", true, false, true, -1_000_000_000, -1e9),
            ("-1.2", false, false, true, 0, -1.2),
            ("1e19", false, true, true, 0, 1e19),
            ("1e1_9", false, true, true, 0, 1e19),
            ("1E19", false, true, true, 0, 1e19),
            ("-1e19", false, false, true, 0, -1e19),
            ("0x_1p4", true, true, true, 16, 16.0),
            ("0X_1P4", true, true, true, 16, 16.0),
            ("0x_1p-4", false, false, true, 0, 1.0 / 16.0),
            ("0123", true, true, true, 0o123, 83.0),
            ("-0x0", true, true, true, 0, 0.0),
            ("0xdeadbeef", true, true, true, 0xdead_beef, 3_735_928_559.0),
            ("0xef", true, true, true, 0xef, 239.0),
        ];
        for &(text, is_int, is_uint, is_float, i, f) in cases {
            let n = parse_number(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (n.is_int, n.is_uint, n.is_float),
                (is_int, is_uint, is_float),
                "{text}"
            );
            if is_int {
                assert_eq!(n.int, i, "{text}");
            }
            assert_eq!(n.float, f, "{text}");
        }
        for bad in [
            "+-2",
            "0x123.",
            "1e.",
            "0xi.",
            "1+2.",
            "99999999999999999999",
        ] {
            assert!(parse_number(bad).is_err(), "{bad}");
        }
        assert!(parse_number("4i").unwrap_err().contains("not supported"));
    }

    #[test]
    fn go_character_constants_are_integers() {
        for (text, v) in [
            ("'a'", 97),
            ("'\\n'", 10),
            ("'\\\\'", 92),
            ("'\\''", 39),
            ("'\\xFF'", 255),
            ("'パ'", 0x30d1),
            ("'\\u30d1'", 0x30d1),
            ("'\\U000030d1'", 0x30d1),
        ] {
            assert_eq!(unquote_char(text).unwrap().int, v, "{text}");
        }
        assert_eq!(
            unquote_char("'xx'").unwrap_err(),
            "malformed character constant: 'xx'"
        );
        assert_eq!(
            unquote_char("'433937734937734969526500969526500'").unwrap_err(),
            "malformed character constant: '433937734937734969526500969526500'"
        );
    }

    #[test]
    fn strings_unquote_with_go_escapes() {
        assert_eq!(
            unquote(r#""a\tb\x41\101\u00e9\U0001F600\"""#).unwrap(),
            "a\tbAAé😀\""
        );
        assert_eq!(unquote("`raw\\n\r`").unwrap(), "raw\\n");
        for bad in [r#""\q""#, r#""\'""#, r#""\400""#, r#""\ud800""#, r#""\x4""#] {
            assert_eq!(unquote(bad).unwrap_err(), "invalid syntax", "{bad}");
        }
    }
}
