//! The times Docker's `--since`, `--until` and `until=` filters take (its `timetypes`): a Go
//! duration before now (`10m`, `1h30m`, `1.5h`), an RFC 3339 time with or without its seconds or
//! zone, a date, or Unix seconds (`1700000000.5`). Times without a zone are UTC, berth's clock.

use crate::go::parse_duration;
use crate::time::parse_rfc3339;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse value as time or duration: {0:?}")]
pub struct TimestampError(pub String);

/// `value` as seconds since the epoch, durations counted back from `now` (seconds).
pub fn parse_timestamp(value: &str, now: i64) -> Result<i64, TimestampError> {
    let bad = || TimestampError(value.to_string());
    if value != "0" {
        if let Ok(d) = parse_duration(value) {
            return Ok(now - d / 1_000_000_000);
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
    fn timestamps_take_docker_forms() {
        let now = 1_795_844_404;
        assert_eq!(parse_timestamp("10m", now), Ok(now - 600));
        assert_eq!(parse_timestamp("1h30m", now), Ok(now - 5400));
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
