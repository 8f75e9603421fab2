//! The times Docker's `--since`, `--until` and `until=` filters take (its `timetypes`): a Go
//! duration before now (`10m`, `1h30m`, `1.5h`), an RFC 3339 time with or without its seconds or
//! zone, a date, or Unix seconds (`1700000000.5`). Times without a zone are UTC, berth's clock.

use crate::time::parse_rfc3339;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse value as time or duration: {0:?}")]
pub struct TimestampError(pub String);

/// Nanoseconds in a Go duration (`300ms`, `-1.5h`, `1h2m3s`); None when `s` is not one.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(n);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let u = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = next;
    }
    let nanos = total as i128;
    Some(if neg { -nanos } else { nanos })
}

/// `value` as seconds since the epoch, durations counted back from `now` (seconds).
pub fn parse_timestamp(value: &str, now: i64) -> Result<i64, TimestampError> {
    let bad = || TimestampError(value.to_string());
    if value != "0" {
        if let Some(d) = parse_go_duration(value) {
            return Ok(now - (d / 1_000_000_000) as i64);
        }
    }
    if value.contains('-') {
        return parse_date_time(value).ok_or_else(bad);
    }
    // Unix seconds, with an optional fraction (Docker's `1136073600.000000001`).
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    secs.parse().map_err(|_| bad())
}

/// RFC 3339 and its shorter forms: `2026-11-28`, `2026-11-28T05`, `2026-11-28T05:40`, with or
/// without seconds, a fraction or a zone.
fn parse_date_time(value: &str) -> Option<i64> {
    if let Some(t) = parse_rfc3339(value) {
        return Some(t);
    }
    // Split off a zone (`Z`, `+01:00`, `-01:00` after the time) and complete what is missing.
    let (date, time) = value.split_once('T').unwrap_or((value, ""));
    if date.len() != 10 {
        return None;
    }
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let full_clock = match clock.matches(':').count() {
        _ if clock.is_empty() => "00:00:00".to_string(),
        0 => format!("{clock}:00:00"),
        1 => format!("{clock}:00"),
        _ => clock.to_string(),
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let zone = if zone.is_empty() { "Z" } else { zone };
    parse_rfc3339(&format!("{date}T{full_clock}{frac}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_go_does() {
        assert_eq!(parse_go_duration("10m"), Some(600_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        for bad in ["", "10", "1x", "h", "1..2s", "bogus"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_take_docker_forms() {
        let now = 1_795_844_404;
        assert_eq!(parse_timestamp("10m", now), Ok(now - 600));
        assert_eq!(parse_timestamp("2026-11-28T05:40:04Z", now), Ok(now));
        assert_eq!(parse_timestamp("2026-11-28T06:40:04+01:00", now), Ok(now));
        assert_eq!(parse_timestamp("2026-11-28T05:40:04", now), Ok(now));
        assert_eq!(parse_timestamp("2026-11-28T05:40", now), Ok(now - 4));
        assert_eq!(
            parse_timestamp("2026-11-28", now),
            Ok(now - 5 * 3600 - 40 * 60 - 4)
        );
        assert_eq!(parse_timestamp("1795844404", now), Ok(now));
        assert_eq!(parse_timestamp("1795844404.5", now), Ok(now));
        assert_eq!(parse_timestamp("0", now), Ok(0));
        let e = parse_timestamp("bogus", now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to parse value as time or duration: \"bogus\""
        );
        assert!(parse_timestamp("2026-99-01", now).is_err());
    }
}
