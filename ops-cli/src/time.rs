//! Times as the operators' commands take and show them: RFC 3339 in UTC.

use chrono::{DateTime, SecondsFormat, Utc};

/// A broker timestamp as chrono's.
pub fn to_chrono(t: async_nats::datetime::DateTime) -> DateTime<Utc> {
    let nanos = i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    DateTime::from_timestamp_nanos(nanos)
}

/// A time with milliseconds, e.g. `2025-11-24T07:14:03.123Z`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `--from-time`: an RFC 3339 time, e.g. `2025-11-24T07:00:00Z`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time like 2025-11-24T07:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_and_end_up_in_utc() {
        let t = parse_time("2025-11-24T08:00:00+01:00").expect("valid");
        assert_eq!(format_time(&t), "2025-11-24T07:00:00.000Z");
        assert!(parse_time("yesterday").is_err());
    }
}
