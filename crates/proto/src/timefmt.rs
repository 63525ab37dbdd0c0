//! Timestamps on the wire: RFC 3339 in UTC with second precision (`2026-11-28T10:00:00Z`).
//! Inside the programs time is unix seconds (`i64`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

/// Formats unix seconds as `YYYY-MM-DDTHH:MM:SSZ`. Out-of-range values clamp to the epoch, which
/// every reader then treats as long past (fail closed).
pub fn rfc3339(unix_secs: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Parses an RFC 3339 timestamp (any offset) into unix seconds.
pub fn parse_rfc3339(field: &'static str, s: &str) -> Result<i64, Error> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            Error::invalid(
                field,
                s,
                "expected an RFC 3339 time such as 2026-11-28T10:00:00Z",
            )
        })
}

/// The UTC hour (0–23) and lower-case three-letter weekday of unix seconds.
pub fn hour_and_weekday(unix_secs: i64) -> (i64, &'static str) {
    let t = OffsetDateTime::from_unix_timestamp(unix_secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let day = match t.weekday() {
        time::Weekday::Monday => "mon",
        time::Weekday::Tuesday => "tue",
        time::Weekday::Wednesday => "wed",
        time::Weekday::Thursday => "thu",
        time::Weekday::Friday => "fri",
        time::Weekday::Saturday => "sat",
        time::Weekday::Sunday => "sun",
    };
    (i64::from(t.hour()), day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = 1_795_860_000; // 2026-11-28T10:00:00Z
        assert_eq!(rfc3339(t), "2026-11-28T10:00:00Z");
        assert_eq!(parse_rfc3339("t", "2026-11-28T10:00:00Z").unwrap(), t);
        assert_eq!(parse_rfc3339("t", "2026-11-28T11:00:00+01:00").unwrap(), t);
        assert_eq!(hour_and_weekday(t), (10, "sat"));
    }

    #[test]
    fn refuses_other_formats() {
        for bad in ["20261128100000Z", "2026-11-28", "tomorrow", ""] {
            assert!(parse_rfc3339("start", bad).is_err(), "{bad}");
        }
    }
}
