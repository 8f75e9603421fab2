//! Go's `fmt` as templates use it: `print`, `println`, `printf` and the default `%v` form of
//! values (`[a b]`, `map[k:v]` with sorted keys, `<nil>`, floats as `%g`), and
//! `strconv.Quote`. Pure string building over [`Val`]; never fails: a bad verb or argument
//! is written into the output the way Go writes it (`%!d(string=x)`).

use crate::quote::{can_backquote, quote_ascii, quote_rune};
pub(crate) use crate::quote::{is_print, quote};
use crate::value::Val;
use serde_json::Value;

/// Go's `fmt.Sprint`: a space between two operands when neither is a string.
pub(crate) fn sprint(args: &[Val]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = a.as_str().is_some();
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        write_value(&mut out, a, 'v', &Spec::default());
        prev_string = is_string;
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands and a final newline.
pub(crate) fn sprintln(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(&mut out, a, 'v', &Spec::default());
    }
    out.push('\n');
    out
}

/// The `%v` form of one value.
pub(crate) fn display(v: &Val) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 'v', &Spec::default());
    out
}

/// Flags, width and precision of one verb.
#[derive(Clone, Default)]
pub(crate) struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '#' => spec.sharp = true,
                '0' => spec.zero = !spec.minus,
                '+' => spec.plus = true,
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        let mut good_index = arg_index(&mut chars, &mut arg_num, &mut reordered, args.len());
        // Width: '*' takes an int argument, else digits.
        if chars.peek().map(|p| p.1) == Some('*') {
            chars.next();
            match args.get(arg_num) {
                Some(Val::Int(w)) => {
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg_num += 1;
        } else {
            spec.width = digits(&mut chars);
        }
        if chars.peek().map(|p| p.1) == Some('.') {
            chars.next();
            good_index &= arg_index(&mut chars, &mut arg_num, &mut reordered, args.len());
            if chars.peek().map(|p| p.1) == Some('*') {
                chars.next();
                match args.get(arg_num) {
                    Some(Val::Int(p)) if *p >= 0 => spec.prec = Some(*p as usize),
                    Some(Val::Int(_)) => {}
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg_num += 1;
            } else {
                spec.prec = Some(digits(&mut chars).unwrap_or(0));
            }
        }
        good_index &= arg_index(&mut chars, &mut arg_num, &mut reordered, args.len());
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !good_index {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        match args.get(arg_num) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(a) => {
                arg_num += 1;
                write_value(&mut out, a, verb, &spec);
            }
        }
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[arg_num..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if a.is_nil() {
                out.push_str("<nil>");
            } else {
                out.push_str(&format!("{}={}", a.type_name(), display(a)));
            }
        }
        out.push(')');
    }
    out
}

type Chars<'s> = std::iter::Peekable<std::str::CharIndices<'s>>;

fn digits(chars: &mut Chars) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        let Some(v) = d.to_digit(10) else { break };
        // Go caps widths at 1e6 ("too large" is a bad width); cap rather than overflow.
        n = Some((n.unwrap_or(0) * 10 + v as usize).min(1_000_000));
        chars.next();
    }
    n
}

/// An explicit argument index `[n]`; returns false for a malformed or out-of-range one.
fn arg_index(chars: &mut Chars, arg_num: &mut usize, reordered: &mut bool, n: usize) -> bool {
    if chars.peek().map(|p| p.1) != Some('[') {
        return true;
    }
    chars.next();
    *reordered = true;
    let idx = digits(chars);
    if chars.peek().map(|p| p.1) != Some(']') {
        // Skip to the closing bracket, if any.
        for (_, c) in chars.by_ref() {
            if c == ']' {
                break;
            }
        }
        return false;
    }
    chars.next();
    match idx {
        Some(i) if i >= 1 && i <= n => {
            *arg_num = i - 1;
            true
        }
        _ => false,
    }
}

/// Writes one operand with one verb, as Go's `printArg`/`printValue` do.
pub(crate) fn write_value(out: &mut String, v: &Val, verb: char, spec: &Spec) {
    if verb == 'T' {
        pad(out, &v.type_name(), spec);
        return;
    }
    match v {
        Val::Missing | Val::Nil => match verb {
            'v' => pad(out, "<nil>", spec),
            _ => bad_verb(out, v, verb),
        },
        Val::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, spec),
            _ => bad_verb(out, v, verb),
        },
        Val::Int(i) => write_int(out, v, *i < 0, i.unsigned_abs(), verb, spec),
        Val::Uint(u) => write_int(out, v, false, *u, verb, spec),
        Val::Float(f) => write_float(out, v, *f, verb, spec),
        Val::Str(s) => write_str(out, v, s, verb, spec),
        Val::Json(Value::String(s)) => write_str(out, v, s, verb, spec),
        Val::Json(Value::Array(a)) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_elem(out, &Val::from_json(e), verb, spec);
            }
            out.push(']');
        }
        Val::Json(Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, &Val::str(k), verb, spec);
                out.push(':');
                write_elem(out, &Val::from_json(&m[k]), verb, spec);
            }
            out.push(']');
        }
        Val::Json(other) => write_value(out, &Val::from_json(other), verb, spec),
        Val::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_elem(out, e, verb, spec);
            }
            out.push(']');
        }
    }
}

/// An element inside a slice or map: a nil interface prints `<nil>` whatever the verb.
fn write_elem(out: &mut String, v: &Val, verb: char, spec: &Spec) {
    if v.is_nil() {
        out.push_str("<nil>");
    } else {
        write_value(out, v, verb, spec);
    }
}

fn bad_verb(out: &mut String, v: &Val, verb: char) {
    if v.is_nil() {
        out.push_str(&format!("%!{verb}(<nil>)"));
    } else {
        out.push_str(&format!("%!{verb}({}={})", v.type_name(), display(v)));
    }
}

/// Pads to the width in runes: spaces, or zeros when the `0` flag asks for them.
fn pad(out: &mut String, s: &str, spec: &Spec) {
    let n = s.chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(n);
    if spec.minus {
        out.push_str(s);
        out.push_str(&" ".repeat(fill));
    } else {
        let c = if spec.zero { '0' } else { ' ' };
        out.push_str(&c.to_string().repeat(fill));
        out.push_str(s);
    }
}

fn write_str(out: &mut String, v: &Val, s: &str, verb: char, spec: &Spec) {
    let cut = |s: &str| -> String {
        match spec.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_string(),
        }
    };
    match verb {
        'v' | 's' => pad(out, &cut(s), spec),
        'q' => {
            let s = cut(s);
            let q = if spec.sharp && can_backquote(&s) {
                format!("`{s}`")
            } else if spec.plus {
                quote_ascii(&s)
            } else {
                quote(&s)
            };
            pad(out, &q, spec)
        }
        'x' | 'X' => {
            let bytes = match spec.prec {
                Some(p) => &s.as_bytes()[..p.min(s.len())],
                None => s.as_bytes(),
            };
            let mut h = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, &h, spec)
        }
        _ => bad_verb(out, v, verb),
    }
}

fn write_int(out: &mut String, v: &Val, neg: bool, mag: u64, verb: char, spec: &Spec) {
    let digits = match verb {
        'v' | 'd' => mag.to_string(),
        'b' => format!("{mag:b}"),
        'o' | 'O' => format!("{mag:o}"),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'c' => {
            let c = char_of(neg, mag);
            return pad(out, &c.to_string(), spec);
        }
        'q' => {
            let c = char_of(neg, mag);
            return pad(out, &quote_rune(c), spec);
        }
        'U' => {
            let mut s = format!("U+{mag:04X}");
            if spec.sharp {
                if let Some(c) = char::from_u32(mag as u32).filter(|c| is_print(*c)) {
                    s.push_str(&format!(" '{c}'"));
                }
            }
            return pad(out, &s, spec);
        }
        _ => return bad_verb(out, v, verb),
    };
    // Precision is a minimum digit count; precision 0 prints nothing for zero.
    let mut body = match spec.prec {
        Some(0) if mag == 0 => String::new(),
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    let prefix = match verb {
        'b' if spec.sharp => "0b",
        'o' if spec.sharp && !body.starts_with('0') => "0",
        'O' => "0o",
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    // The zero flag asks for at least width digits, less the sign (Go does not count a 0x
    // prefix); a precision turns it off.
    if spec.zero && spec.prec.is_none() && !spec.minus {
        if let Some(w) = spec.width {
            let want = w.saturating_sub(sign.len());
            if want > body.len() {
                body = format!("{}{body}", "0".repeat(want - body.len()));
            }
        }
    }
    let s = format!("{sign}{prefix}{body}");
    pad(
        out,
        &s,
        &Spec {
            zero: false,
            ..spec.clone()
        },
    );
}

fn char_of(neg: bool, mag: u64) -> char {
    if neg {
        return '\u{FFFD}';
    }
    u32::try_from(mag)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

fn write_float(out: &mut String, v: &Val, f: f64, verb: char, spec: &Spec) {
    let mut num = match verb {
        'v' => crate::gofloat::format(f, 'g', spec.prec.map(|p| p as i64).unwrap_or(-1)),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let default = if matches!(verb, 'g' | 'G') { -1 } else { 6 };
            let v = if verb == 'F' { 'f' } else { verb };
            crate::gofloat::format(f, v, spec.prec.map(|p| p as i64).unwrap_or(default))
        }
        _ => return bad_verb(out, v, verb),
    };
    if spec.sharp {
        let digits = match verb {
            'v' | 'g' | 'G' => spec.prec.map_or(6, |p| p as i64),
            _ => 0,
        };
        num = crate::gofloat::sharp(&num, digits);
    }
    let (sign, body) = match num.strip_prefix('-') {
        Some(b) => ("-", b.to_string()),
        None if spec.plus => ("+", num),
        None if spec.space => (" ", num),
        None => ("", num),
    };
    if spec.zero && !spec.minus && body.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        let w = spec.width.unwrap_or(0);
        let used = sign.len() + body.len();
        let zeros = "0".repeat(w.saturating_sub(used));
        out.push_str(&format!("{sign}{zeros}{body}"));
        return;
    }
    pad(
        out,
        &format!("{sign}{body}"),
        &Spec {
            zero: false,
            ..spec.clone()
        },
    );
}
