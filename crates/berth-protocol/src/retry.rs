//! When to try a request again, and how long to wait first. Decisions only:
//! the caller keeps the clock and does the waiting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};

/// How a request failed.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// No response arrived: the connection failed or was cut.
    Connection,
    /// The registry answered with this status and headers.
    Status(StatusCode, &'a HeaderMap),
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Wait this long, then send the request again.
    After(Duration),
    /// Do not retry: report the failure.
    No,
}

/// The retry policy: at least 3 retries with capped exponential backoff
/// and jitter, honouring `Retry-After` up to a cap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff.
    pub base: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// With `max_retries` retries.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// With this first backoff and cap.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base = base;
        self.max_backoff = max;
        self
    }

    /// Whether a status is worth retrying: 408, 429, 500, 502, 503, 504.
    pub fn is_retryable_status(status: StatusCode) -> bool {
        matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
    }

    /// Decides whether to retry after `retries_so_far` retries. Only
    /// idempotent requests are retried; `now` is used to read an HTTP-date
    /// `Retry-After`; `jitter` spreads the backoff.
    pub fn decide(
        &self,
        retries_so_far: u32,
        failure: Failure<'_>,
        idempotent: bool,
        now: SystemTime,
        jitter: &mut Jitter,
    ) -> Retry {
        if !idempotent || retries_so_far >= self.max_retries {
            return Retry::No;
        }
        let headers = match failure {
            Failure::Connection => None,
            Failure::Status(status, headers) => {
                if !Self::is_retryable_status(status) {
                    return Retry::No;
                }
                Some(headers)
            }
        };
        if let Some(wait) = headers.and_then(|h| retry_after(h, now)) {
            return Retry::After(wait.min(self.max_retry_after));
        }
        Retry::After(self.backoff(retries_so_far, jitter))
    }

    /// The backoff before retry number `retries_so_far + 1`: half fixed,
    /// half random ("equal jitter"), doubling each time, capped.
    pub fn backoff(&self, retries_so_far: u32, jitter: &mut Jitter) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(retries_so_far.min(20)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        half + half.mul_f64(jitter.next_unit())
    }
}

/// A small deterministic random source for backoff jitter, seeded by the
/// caller (the protocol core has no randomness of its own).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A source from a seed; the same seed gives the same waits.
    pub fn new(seed: u64) -> Self {
        Jitter(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// A value in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        // 53 bits: exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        let unit = v as f64 / (1u64 << 53) as f64;
        unit
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an
/// HTTP-date relative to `now`. `None` when absent or malformed.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if value.bytes().all(|c| c.is_ascii_digit()) && !value.is_empty() {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP-date (RFC 9110 §5.6.7) in any of its three forms:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
/// `Sun Nov  6 08:49:37 1994`.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let month = |m: &str| (1u32..).zip(MONTHS).find(|(_, x)| *x == m).map(|(i, _)| i);
    let num = |t: &str| -> Option<u32> {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let time = |t: &str| -> Option<(u32, u32, u32)> {
        let mut it = t.split(':');
        let (h, m, s) = (num(it.next()?)?, num(it.next()?)?, num(it.next()?)?);
        (it.next().is_none() && h < 24 && m < 60 && s <= 60).then_some((h, m, s))
    };
    let (year, mon, day, hms) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split(' ').collect();
        match parts.as_slice() {
            // IMF-fixdate
            [d, m, y, t, "GMT"] if d.len() == 2 && y.len() == 4 => {
                (num(y)?, month(m)?, num(d)?, time(t)?)
            }
            // RFC 850: 06-Nov-94; two-digit years within 50 years, as the
            // RFC asks, read as 19xx/20xx.
            [date, t, "GMT"] => {
                let mut it = date.split('-');
                let (d, m, y) = (it.next()?, it.next()?, it.next()?);
                let y2 = num(y)?;
                let y = if y.len() == 2 {
                    if y2 >= 70 { 1900 + y2 } else { 2000 + y2 }
                } else {
                    y2
                };
                (y, month(m)?, num(d)?, time(t)?)
            }
            _ => return None,
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [_, m, d, t, y] if y.len() == 4 => (num(y)?, month(m)?, num(d)?, time(t)?),
            _ => return None,
        }
    };
    if !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(year), mon, day);
    let secs = days * 86_400 + i64::from(hms.0) * 3600 + i64::from(hms.1) * 60 + i64::from(hms.2);
    // Four-digit years fit every platform's clock, but a date is never
    // worth a panic.
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            retry_after.parse().expect("header value"),
        );
        h
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let want = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(want));
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(want)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(want));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(parse_http_date("Sun, 32 Nov 1994 08:49:37 GMT"), None);
        // Years have four digits in every form that spells them out.
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 4294967295"), None);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 94"), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(
            retry_after(&headers("5"), now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
    }

    #[test]
    fn decisions() {
        let p = RetryPolicy::default();
        let mut j = Jitter::new(7);
        let now = UNIX_EPOCH;
        let h = HeaderMap::new();
        for s in [408, 429, 500, 502, 503, 504] {
            let st = StatusCode::from_u16(s).expect("status");
            assert!(
                matches!(
                    p.decide(0, Failure::Status(st, &h), true, now, &mut j),
                    Retry::After(_)
                ),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 501] {
            let st = StatusCode::from_u16(s).expect("status");
            assert_eq!(
                p.decide(0, Failure::Status(st, &h), true, now, &mut j),
                Retry::No,
                "{s}"
            );
        }
        assert_eq!(
            p.decide(3, Failure::Connection, true, now, &mut j),
            Retry::No,
            "budget spent"
        );
        assert_eq!(
            p.decide(0, Failure::Connection, false, now, &mut j),
            Retry::No,
            "not idempotent"
        );
        let h = headers("3600");
        assert_eq!(
            p.decide(
                0,
                Failure::Status(StatusCode::TOO_MANY_REQUESTS, &h),
                true,
                now,
                &mut j
            ),
            Retry::After(Duration::from_secs(60)),
            "Retry-After is capped"
        );
    }

    #[test]
    fn backoff_grows_within_bounds_and_is_reproducible() {
        let p = RetryPolicy::default();
        let mut a = Jitter::new(1);
        let mut b = Jitter::new(1);
        for n in 0..10 {
            let wa = p.backoff(n, &mut a);
            assert_eq!(wa, p.backoff(n, &mut b));
            let full = p.base.saturating_mul(1 << n.min(20)).min(p.max_backoff);
            assert!(wa >= full / 2 && wa <= full, "{n}: {wa:?}");
        }
    }
}
