//! Docker's template functions (docker/cli `templates`): `json` (Go's encoder, HTML left
//! unescaped), `split`, `title`, `lower`/`upper`, `pad` and `truncate`, with the results and
//! failures Go gives them (Go's panics surface as the errors Go's template would report).

use crate::value::Val;
use serde_json::Value;

/// `json`: Go's `json.Encoder` with `SetEscapeHTML(false)`, trailing newline trimmed.
/// Object keys keep the order the caller built the value in.
pub(crate) fn json(v: &Val) -> String {
    let mut out = String::new();
    match v {
        Val::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json(e));
            }
            out.push(']');
        }
        Val::Json(j) => write_json(&mut out, j),
        v => write_json(&mut out, &v.to_json()),
    }
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => json_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, e);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                write_json(out, e);
            }
            out.push('}');
        }
    }
}

/// Go's float encoding: `%f`-like between 1e-6 and 1e21, else `%e` with a short exponent.
fn json_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = crate::gofloat::format(f, 'e', -1);
        // Go trims one leading zero of a negative two-digit exponent: e-07 -> e-7.
        if let Some(i) = s.find("e-0") {
            if s.len() == i + 4 {
                return format!("{}e-{}", &s[..i], &s[i + 3..]);
            }
        }
        return s;
    }
    crate::gofloat::format(f, 'f', -1)
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `strings.Split`: an empty separator splits into characters.
pub(crate) fn split<'d>(s: &str, sep: &str) -> Val<'d> {
    let parts: Vec<Val<'d>> = if sep.is_empty() {
        s.chars().map(|c| Val::str(&c.to_string())).collect()
    } else {
        s.split(sep).map(Val::str).collect()
    };
    Val::List(parts.into())
}

/// Go's `strings.Title`: the first letter of each word in title case.
pub(crate) fn title(s: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if separator(prev) {
                one_char(c, true)
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

/// Go maps case rune by rune: a rune whose mapping is several runes ('ß') stays as it is.
fn one_char(c: char, upper: bool) -> char {
    let mut m: Vec<char> = if upper {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    if m.len() == 1 {
        m.pop().unwrap_or(c)
    } else {
        c
    }
}

/// `strings.ToUpper` (`upper`) or `strings.ToLower`.
pub(crate) fn map_chars(s: &str, upper: bool) -> String {
    s.chars().map(|c| one_char(c, upper)).collect()
}

/// `pad`: spaces before and after a non-empty string.
pub(crate) fn pad(s: &str, before: i64, after: i64) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    if before < 0 || after < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let (b, a) = (before.min(1 << 20) as usize, after.min(1 << 20) as usize);
    Ok(format!("{}{s}{}", " ".repeat(b), " ".repeat(a)))
}

/// `truncate`: the first `n` bytes, as Go slices a string.
pub(crate) fn truncate(s: &str, n: i64) -> Result<String, String> {
    if (s.len() as i64) < n {
        return Ok(s.to_string());
    }
    if n < 0 {
        return Err(format!("runtime error: slice bounds out of range [:{n}]"));
    }
    Ok(String::from_utf8_lossy(&s.as_bytes()[..n as usize]).into_owned())
}
