//! Timestamps as RFC 3339 text, and back.

use anyhow::anyhow;
use ledger::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// To the second, for tables (`2026-11-20T03:00:12Z`).
pub fn format_seconds(t: Timestamp) -> String {
    format(Timestamp(t.0 - t.0.rem_euclid(1_000_000_000)))
}

pub fn format(t: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0))
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{}ns", t.0))
}

pub fn parse(s: &str) -> anyhow::Result<Timestamp> {
    let d = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| anyhow!("'{s}' is not an RFC 3339 time (like 2026-11-22T18:49:03Z): {e}"))?;
    i64::try_from(d.unix_timestamp_nanos())
        .map(Timestamp)
        .map_err(|_| anyhow!("'{s}' is outside the years 1678–2262"))
}

/// A calendar date (`2026-11-22`) as its first instant in UTC; `None` when `s` is not one.
pub fn parse_date(s: &str) -> Option<Timestamp> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let day = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    i64::try_from(day.midnight().assume_utc().unix_timestamp_nanos())
        .ok()
        .map(Timestamp)
}

/// An optional time flag, parsed; the error names the flag.
pub fn parse_flag(value: Option<&str>, flag: &str) -> anyhow::Result<Option<Timestamp>> {
    use anyhow::Context;
    value
        .map(parse)
        .transpose()
        .with_context(|| flag.to_owned())
}
