//! A strict RFC 3339 timestamp parser (`date-time` of RFC 3339 §5.6), for the
//! `issued_at` field of token responses.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A timestamp that is not RFC 3339 `date-time`: what was expected and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError {
    offset: usize,
    expected: &'static str,
}

impl TimestampError {
    /// Byte offset in the timestamp text.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} at byte {} of RFC 3339 timestamp",
            self.expected, self.offset
        )
    }
}

impl std::error::Error for TimestampError {}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn err(&self, expected: &'static str) -> TimestampError {
        TimestampError {
            offset: self.pos,
            expected,
        }
    }

    /// Exactly `n` digits, as a number in `min..=max`.
    fn digits(
        &mut self,
        n: usize,
        min: u32,
        max: u32,
        what: &'static str,
    ) -> Result<u32, TimestampError> {
        let mut v: u32 = 0;
        for k in 0..n {
            match self.b.get(self.pos + k) {
                Some(&d) if d.is_ascii_digit() => v = v * 10 + u32::from(d - b'0'),
                _ => {
                    self.pos += k;
                    return Err(self.err(what));
                }
            }
        }
        if v < min || v > max {
            return Err(self.err(what));
        }
        self.pos += n;
        Ok(v)
    }

    fn byte(&mut self, allowed: &[u8], what: &'static str) -> Result<u8, TimestampError> {
        match self.b.get(self.pos) {
            Some(c) if allowed.contains(c) => {
                self.pos += 1;
                Ok(*c)
            }
            _ => Err(self.err(what)),
        }
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`,
/// with `T`/`t` and `Z`/`z` (RFC 3339 §5.6). A leap second (`:60`) is read
/// as the first second of the next minute; fraction digits past the ninth are
/// checked and dropped.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = berth_auth::parse_rfc3339("2024-02-29T12:00:00.5+01:00")?;
/// assert_eq!(t, UNIX_EPOCH + Duration::from_millis(1_709_204_400_500));
/// # Ok::<(), berth_auth::TimestampError>(())
/// ```
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, TimestampError> {
    let mut c = Cursor {
        b: text.as_bytes(),
        pos: 0,
    };
    let year = i64::from(c.digits(4, 0, 9999, "four-digit year")?);
    c.byte(b"-", "'-' after year")?;
    let month = c.digits(2, 1, 12, "month 01-12")?;
    c.byte(b"-", "'-' after month")?;
    let day = c.digits(2, 1, days_in_month(year, month), "day of month")?;
    c.byte(b"Tt", "'T' between date and time")?;
    let hour = c.digits(2, 0, 23, "hour 00-23")?;
    c.byte(b":", "':' after hour")?;
    let minute = c.digits(2, 0, 59, "minute 00-59")?;
    c.byte(b":", "':' after minute")?;
    let second = c.digits(2, 0, 60, "second 00-60")?;
    let mut nanos: u32 = 0;
    if c.byte(b".", "").is_ok() {
        let start = c.pos;
        let mut scale = 100_000_000;
        while let Some(&d) = c.b.get(c.pos).filter(|d| d.is_ascii_digit()) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
            c.pos += 1;
        }
        if c.pos == start {
            return Err(c.err("digit after '.'"));
        }
    }
    let offset_secs: i64 = match c.byte(b"Zz+-", "'Z' or a '+hh:mm'/'-hh:mm' offset")? {
        sign @ (b'+' | b'-') => {
            let sign = if sign == b'-' { -1 } else { 1 };
            let h = c.digits(2, 0, 23, "offset hour 00-23")?;
            c.byte(b":", "':' in offset")?;
            let m = c.digits(2, 0, 59, "offset minute 00-59")?;
            sign * i64::from(h * 3600 + m * 60)
        }
        _ => 0,
    };
    if c.pos != c.b.len() {
        return Err(c.err("end of timestamp"));
    }
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    let time = match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH.checked_add(Duration::from_secs(s)),
        Err(_) => UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs())),
    };
    time.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
        .ok_or(TimestampError {
            offset: 0,
            expected: "a time this system can represent",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: u32) -> SystemTime {
        let base = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        base + Duration::from_nanos(u64::from(nanos))
    }

    #[test]
    fn valid() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), UNIX_EPOCH);
        assert_eq!(
            parse_rfc3339("2009-02-13T23:31:30Z").unwrap(),
            at(1_234_567_890, 0)
        );
        assert_eq!(
            parse_rfc3339("2009-02-14T00:31:30+01:00").unwrap(),
            at(1_234_567_890, 0)
        );
        assert_eq!(
            parse_rfc3339("2009-02-13t18:01:30.25-05:30").unwrap(),
            at(1_234_567_890, 250_000_000)
        );
        assert_eq!(
            parse_rfc3339("2009-02-13T23:31:30.123456789123z").unwrap(),
            at(1_234_567_890, 123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z").unwrap(),
            at(951_782_400, 0)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z").unwrap(), at(-1, 0));
        assert_eq!(
            parse_rfc3339("1990-12-31T23:59:60Z").unwrap(),
            at(662_688_000, 0)
        );
        assert_eq!(
            parse_rfc3339("0000-01-01T00:00:00Z").unwrap(),
            at(-62_167_219_200, 0)
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59Z").unwrap(),
            at(253_402_300_799, 0)
        );
    }

    #[test]
    fn invalid() {
        for (text, offset) in [
            ("", 0),
            ("2024-13-01T00:00:00Z", 5),
            ("2023-02-29T00:00:00Z", 8),
            ("2024-02-30T00:00:00Z", 8),
            ("2024-04-31T00:00:00Z", 8),
            ("2024-01-01 00:00:00Z", 10),
            ("2024-01-01T24:00:00Z", 11),
            ("2024-01-01T00:60:00Z", 14),
            ("2024-01-01T00:00:61Z", 17),
            ("2024-01-01T00:00:00", 19),
            ("2024-01-01T00:00:00.Z", 20),
            ("2024-01-01T00:00:00+0100", 22),
            ("2024-01-01T00:00:00+24:00", 20),
            ("2024-01-01T00:00:00Zjunk", 20),
            ("24-01-01T00:00:00Z", 2),
            ("2024-1-01T00:00:00Z", 6),
        ] {
            let e = parse_rfc3339(text).unwrap_err();
            assert_eq!(e.offset(), offset, "{text:?}: {e}");
        }
    }
}
