//! Go's float formatting (`strconv.FormatFloat` for verbs e, E, f, g, G and the `#` flag of
//! `fmt`), built on Rust's exact shortest and fixed-precision conversions, so digits match
//! Go's: both round the exact binary value. Only formats; callers add padding.

/// Decimal digits of |f| and the position of the decimal point: |f| = 0.d1d2… × 10^dp.
/// Zero has no digits.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

impl Digits {
    /// Parses Rust's `{:e}` output ("1.2345e6", "5e-7").
    fn from_exp(s: &str) -> Digits {
        let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits { d, dp: exp + 1 }
    }

    fn shortest(f: f64) -> Digits {
        Digits::from_exp(&format!("{:e}", f.abs()))
    }

    /// Rounded to `sig` significant digits (at least one), trailing zeros dropped.
    fn rounded(f: f64, sig: usize) -> Digits {
        Digits::from_exp(&format!("{:.*e}", sig.max(1) - 1, f.abs()))
    }

    fn nd(&self) -> i32 {
        self.d.len() as i32
    }

    fn fmt_e(&self, prec: i32, upper: bool) -> String {
        let mut s = String::new();
        s.push(self.d.first().map_or('0', |&c| c as char));
        if prec > 0 {
            s.push('.');
            for i in 1..=prec {
                s.push(self.d.get(i as usize).map_or('0', |&c| c as char));
            }
        }
        let exp = if self.d.is_empty() { 0 } else { self.dp - 1 };
        s.push(if upper { 'E' } else { 'e' });
        s.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            s.push('0');
        }
        s.push_str(&e.to_string());
        s
    }

    fn fmt_f(&self, prec: i32) -> String {
        let mut s = String::new();
        if self.dp > 0 {
            for i in 0..self.dp {
                s.push(self.d.get(i as usize).map_or('0', |&c| c as char));
            }
        } else {
            s.push('0');
        }
        if prec > 0 {
            s.push('.');
            for i in 1..=prec {
                let j = self.dp + i - 1;
                let c = if j >= 0 {
                    self.d.get(j as usize).copied()
                } else {
                    None
                };
                s.push(c.map_or('0', |c| c as char));
            }
        }
        s
    }
}

/// `strconv.FormatFloat(f, verb, prec, 64)` for verb e, E, f, g or G; `prec < 0` asks for
/// the shortest digits that read back as `f`.
pub(crate) fn format(f: f64, verb: char, prec: i64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let prec = prec.clamp(-1, 1_000_000) as i32;
    let body = match verb {
        'e' | 'E' => {
            let (digs, p) = if prec < 0 {
                let d = Digits::shortest(f);
                let p = (d.nd() - 1).max(0);
                (d, p)
            } else {
                (Digits::rounded(f, prec as usize + 1), prec)
            };
            digs.fmt_e(p, verb == 'E')
        }
        'f' => {
            if prec < 0 {
                let d = Digits::shortest(f);
                d.fmt_f((d.nd() - d.dp).max(0))
            } else {
                format!("{:.*}", prec as usize, f.abs())
            }
        }
        _ => format_g(f, prec, verb == 'G'),
    };
    format!("{sign}{body}")
}

fn format_g(f: f64, prec: i32, upper: bool) -> String {
    let shortest = prec < 0;
    let (digs, mut prec) = if shortest {
        let d = Digits::shortest(f);
        let n = d.nd();
        (d, n)
    } else {
        let p = prec.max(1);
        (Digits::rounded(f, p as usize), p)
    };
    let mut eprec = prec;
    if eprec > digs.nd() && digs.nd() >= digs.dp {
        eprec = digs.nd();
    }
    if shortest {
        eprec = 6;
    }
    let exp = digs.dp - 1;
    if digs.d.is_empty() {
        // Zero: Go's decimal has no digits and a point at 0, so it prints "0".
        return digs.fmt_f(0);
    }
    if exp < -4 || exp >= eprec {
        if prec > digs.nd() {
            prec = digs.nd();
        }
        return digs.fmt_e(prec - 1, upper);
    }
    if prec > digs.dp {
        prec = digs.nd();
    }
    digs.fmt_f((prec - digs.dp).max(0))
}

/// The `#` flag: always a decimal point, and for %g/%v trailing zeros up to `digits`
/// significant digits (0 for the other verbs).
pub(crate) fn sharp(num: &str, mut digits: i64) -> String {
    if num.contains("Inf") || num.contains("NaN") {
        return num.to_string();
    }
    let (sign, rest) = match num.strip_prefix(['-', '+', ' ']) {
        Some(r) => (&num[..1], r),
        None => ("", num),
    };
    let (mant, tail) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut seen_nonzero = false;
    for c in mant.chars().filter(|c| *c != '.') {
        if c != '0' {
            seen_nonzero = true;
        }
        if seen_nonzero {
            digits -= 1;
        }
    }
    let mut out = format!("{sign}{mant}");
    if !mant.contains('.') {
        if mant == "0" {
            digits -= 1;
        }
        out.push('.');
    }
    while digits > 0 {
        out.push('0');
        digits -= 1;
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn shortest_g_switches_to_exponent_at_six_digits_as_go_does() {
        assert_eq!(format(123456.0, 'g', -1), "123456");
        assert_eq!(format(1234567.0, 'g', -1), "1.234567e+06");
        assert_eq!(format(1e6, 'g', -1), "1e+06");
        assert_eq!(format(0.0001, 'g', -1), "0.0001");
        assert_eq!(format(0.00001, 'g', -1), "1e-05");
        assert_eq!(format(0.0, 'g', -1), "0");
        assert_eq!(format(-0.5, 'g', -1), "-0.5");
    }

    #[test]
    fn fixed_precision_verbs_round_like_strconv() {
        assert_eq!(format(1.23456, 'f', 2), "1.23");
        assert_eq!(format(2.5, 'f', 0), "2");
        assert_eq!(format(1234.5678, 'e', 6), "1.234568e+03");
        assert_eq!(format(0.0, 'e', 2), "0.00e+00");
        assert_eq!(format(1234.5678, 'g', 3), "1.23e+03");
        assert_eq!(format(100.0, 'g', 3), "100");
        assert_eq!(format(1e21, 'f', -1), "1000000000000000000000");
        assert_eq!(format(f64::INFINITY, 'g', -1), "+Inf");
    }
}
