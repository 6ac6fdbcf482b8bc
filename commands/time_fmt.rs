//! Timestamps as RFC 3339 text, and back.

use anyhow::anyhow;
use ledger::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// To the second, for tables (`2026-11-20T03:00:12Z`).
pub fn format_seconds(t: Timestamp) -> String {
    format(Timestamp(t.0 - t.0.rem_euclid(1_000_000_000)))
}

/// RFC 3339 text (as [`format`] writes it) to the second, for tables; other text as it is.
pub fn text_to_seconds(text: &str) -> String {
    parse(text).map_or_else(|_| text.to_owned(), format_seconds)
}

pub fn format(t: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0))
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{}ns", t.0))
}

/// RFC 3339 text of a time given in seconds since 1970, for times a `Timestamp` (nanoseconds
/// in an `i64`) cannot hold, as a certificate's validity may run past 2262.
pub fn format_unix_seconds(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{seconds} seconds after 1970"))
}

pub fn parse(s: &str) -> anyhow::Result<Timestamp> {
    let d = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| anyhow!("'{s}' is not an RFC 3339 time (like 2026-11-22T18:49:03Z): {e}"))?;
    i64::try_from(d.unix_timestamp_nanos())
        .map(Timestamp)
        .map_err(|_| anyhow!("'{s}' is outside the years 1678–2262"))
}

/// A calendar date (`2026-11-22`) as its first instant in UTC: `Ok(None)` when `s` is not
/// written as one, an error saying why when it is but names no day (`2026-02-30`).
pub fn parse_date(s: &str) -> Result<Option<Timestamp>, String> {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return Ok(None);
    }
    let not_a_day = |why: String| format!("'{s}' is not a day of the calendar: {why}");
    // Two ASCII digits always parse.
    let month = time::Month::try_from(m.parse::<u8>().unwrap_or(0))
        .map_err(|_| not_a_day(format!("there is no month {m}")))?;
    let day = time::Date::from_calendar_date(y.parse().unwrap_or(0), month, d.parse().unwrap_or(0))
        .map_err(|_| not_a_day(format!("{month} {y} has no day {d}")))?;
    i64::try_from(day.midnight().assume_utc().unix_timestamp_nanos())
        .map(|t| Some(Timestamp(t)))
        .map_err(|_| format!("'{s}' is outside the years 1678–2262"))
}

/// An optional time flag, parsed; the error names the flag.
pub fn parse_flag(value: Option<&str>, flag: &str) -> anyhow::Result<Option<Timestamp>> {
    use anyhow::Context;
    value
        .map(parse)
        .transpose()
        .with_context(|| flag.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_its_midnight_and_a_date_naming_no_day_says_why() {
        assert_eq!(
            parse_date("2026-11-22").unwrap().map(format),
            Some("2026-11-22T00:00:00Z".to_owned())
        );
        // Not written as a date: perhaps a backup's label.
        for label in [
            "files-2026-11-22",
            "2026-11",
            "2026-1-22",
            "+2026-11-22",
            "abcd-ef-gh",
        ] {
            assert_eq!(parse_date(label), Ok(None), "{label}");
        }
        let err = |s: &str| parse_date(s).unwrap_err();
        assert_eq!(
            err("2026-02-29"),
            "'2026-02-29' is not a day of the calendar: February 2026 has no day 29"
        );
        assert!(parse_date("2028-02-29").unwrap().is_some());
        assert!(err("2026-00-10").ends_with("there is no month 00"));
        assert!(err("2026-11-00").ends_with("November 2026 has no day 00"));
        assert!(err("1001-01-01").contains("outside the years 1678–2262"));
    }

    #[test]
    fn tables_show_times_to_the_second() {
        assert_eq!(
            text_to_seconds("2026-10-04T17:27:56.687805912Z"),
            "2026-10-04T17:27:56Z"
        );
        assert_eq!(
            text_to_seconds("2026-10-04T17:27:56Z"),
            "2026-10-04T17:27:56Z"
        );
        assert_eq!(text_to_seconds("@12ns"), "@12ns");
    }
}
