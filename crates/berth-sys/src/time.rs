//! Time as RFC 3339 in UTC, berth's one formatter (records, logs, images, runtime state).

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 as a civil (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `secs` since the epoch as `2026-11-28T05:20:04Z`.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, to the second (`2026-11-28T05:20:04Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    rfc3339(secs)
}

/// Now with nanoseconds (`2026-11-28T05:20:04.123456789Z`), as runc and Docker print it.
pub fn now_rfc3339_nanos() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, dd) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Parses RFC 3339 (`2026-11-28T05:20:04Z`, with an optional fraction and offset) to seconds
/// since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if s.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 && o.is_char_boundary(1) => {
            let sign = match &o[..1] {
                "-" => -1,
                "+" => 1,
                _ => return None,
            };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Parses RFC 3339 to nanoseconds since the epoch (the fraction kept, to nine digits).
pub fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let secs = parse_rfc3339(s)?;
    let frac = s.get(19..).and_then(|r| r.strip_prefix('.')).unwrap_or("");
    let digits: String = frac
        .chars()
        .take_while(char::is_ascii_digit)
        .take(9)
        .collect();
    let nanos = format!("{digits:0<9}").parse::<i128>().unwrap_or(0);
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// Parses Docker's API time arguments (`since`, `until`): Unix seconds with an optional
/// fraction (`1700000000.5`), or RFC 3339; nanoseconds since the epoch.
pub fn parse_timestamp_nanos(s: &str) -> Option<i128> {
    if let Some(n) = parse_rfc3339_nanos(s) {
        return Some(n);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let nanos = format!("{frac:0<9}").parse::<i128>().unwrap_or(0);
    // Past i128's nanoseconds (a client's forty digits) is no time at all.
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Docker's `units.HumanDuration`: `Less than a second`, `5 seconds`, `About a minute`, `3
/// hours`, `2 weeks`…
pub fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    // Go rounds hours (`d.Hours() + 0.5`).
    let hours = (secs + 1800) / 3600;
    match secs {
        ..=0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// The inverse of `civil_from_days`.
fn days_from_civil(y: i64, mo: i64, d: i64) -> i64 {
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_844_404), "2026-11-28T05:40:04Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        let n = now_rfc3339_nanos();
        assert_eq!(n.len(), 30, "{n}");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for secs in [0, 1_795_844_404, 951_782_400, -86_401] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2026-11-28T05:40:04.123456789Z"),
            Some(1_795_844_404)
        );
        assert_eq!(
            parse_rfc3339("2026-11-28T06:40:04+01:00"),
            Some(1_795_844_404)
        );
        assert_eq!(parse_rfc3339("2026-13-28T06:40:04Z"), None);
        assert_eq!(parse_rfc3339("2026-11-28T06:40:04é"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(
            parse_rfc3339_nanos("2026-11-28T05:40:04.5Z"),
            Some(1_795_844_404_500_000_000)
        );
        assert_eq!(parse_timestamp_nanos("12.25"), Some(12_250_000_000));
        assert_eq!(parse_timestamp_nanos("12"), Some(12_000_000_000));
        assert_eq!(parse_timestamp_nanos("1x"), None);
        assert_eq!(parse_timestamp_nanos(&"9".repeat(38)), None, "no overflow");
        assert_eq!(parse_timestamp_nanos(&format!("-{}", "9".repeat(38))), None);
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
    }
}
