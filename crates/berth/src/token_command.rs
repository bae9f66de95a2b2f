//! A [`TokenSource`] that runs a command and reads an access token from
//! its output: `gcloud auth print-access-token`, a workload-identity
//! helper, a token broker's CLI.
//!
//! The command's standard output is read in one of two forms:
//!
//! - **JSON**, when it starts with `{`: the token is `access_token` or
//!   `token`; the expiry is `expires_in` (seconds from now) or
//!   `expiry` / `expires_at` / `token_expiry` (an RFC 3339 time). An object
//!   under `credential` is read the same way, so `gcloud config
//!   config-helper --format=json` works as it is.
//! - **Text**: the first non-empty line is the token; an optional second
//!   line is the expiry, as whole seconds from now or an RFC 3339 time.
//!
//! A token whose output names no expiry is used for
//! [`DEFAULT_TOKEN_LIFETIME`] (set with
//! [`CommandTokenSource::default_lifetime`]) and then asked for again.
//! A command that cannot start, exits non-zero, runs longer than its
//! timeout or prints no token is an error that names the command.
//!
//! ```no_run
//! use std::sync::Arc;
//! use berth::token_command::CommandTokenSource;
//! use berth::protocol::TokenSourceCredentials;
//!
//! let gcloud = CommandTokenSource::shell("gcloud auth print-access-token");
//! let creds = TokenSourceCredentials::google("gcr.io", Arc::new(gcloud))
//!     .and_registry("us-docker.pkg.dev");
//! let client = berth::Client::builder().credentials(Arc::new(creds));
//! # let _ = client;
//! ```

use std::process::Command;
use std::time::{Duration, SystemTime};

use berth_protocol::{AccessToken, CredentialError, TokenSource};

use crate::process::{Finished, run_bounded};

/// How long a token is used when the command's output names no expiry.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// How long the command may run by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The most bytes of the command's output read.
pub const MAX_TOKEN_OUTPUT: u64 = 64 * 1024;

/// Runs a command for each new token.
#[derive(Debug, Clone)]
pub struct CommandTokenSource {
    program: String,
    args: Vec<String>,
    /// The command as a person wrote it, for errors.
    display: String,
    default_lifetime: Duration,
    timeout: Duration,
}

impl CommandTokenSource {
    /// Runs `program` with `args` (no shell).
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let program = program.into();
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let display = std::iter::once(program.as_str())
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        CommandTokenSource {
            program,
            args,
            display,
            default_lifetime: DEFAULT_TOKEN_LIFETIME,
            timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// Runs `command_line` with `sh -c` (`gcloud auth print-access-token`).
    pub fn shell(command_line: impl Into<String>) -> Self {
        let line = command_line.into();
        let mut source = Self::new("sh", ["-c".to_owned(), line.clone()]);
        source.display = line;
        source
    }

    /// How long a token is used when the output names no expiry.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// How long the command may run before it is killed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command as errors name it.
    pub fn command_line(&self) -> &str {
        &self.display
    }

    fn error(&self, detail: impl Into<String>) -> CredentialError {
        CredentialError::new(format!("the token command {:?}", self.display), detail)
    }

    /// Runs the command: its exit status and (capped) output.
    fn run(&self) -> Result<Finished, CredentialError> {
        run_bounded(
            Command::new(&self.program).args(&self.args),
            None,
            self.timeout,
            MAX_TOKEN_OUTPUT,
        )
        .map_err(|e| self.error(e.to_string()))
    }
}

impl TokenSource for CommandTokenSource {
    fn token(&self, now: SystemTime) -> Result<AccessToken, CredentialError> {
        let Finished {
            status,
            stdout,
            stderr,
        } = self.run()?;
        if !status.success() {
            let stderr = String::from_utf8_lossy(&stderr);
            let stderr = stderr.trim();
            return Err(self.error(if stderr.is_empty() {
                format!("it exited with {status}")
            } else {
                format!(
                    "it exited with {status}: {}",
                    stderr.chars().take(500).collect::<String>()
                )
            }));
        }
        let text =
            std::str::from_utf8(&stdout).map_err(|_| self.error("its output is not UTF-8"))?;
        parse_token_output(text, now, self.default_lifetime).map_err(|e| self.error(e))
    }
}

/// Reads a token command's output (see the module docs for the forms).
/// `now` is when the command ran; `default_lifetime` applies when the
/// output names no expiry.
pub fn parse_token_output(
    text: &str,
    now: SystemTime,
    default_lifetime: Duration,
) -> Result<AccessToken, String> {
    let text = text.trim();
    let (token, expires_at) = if text.starts_with('{') {
        parse_json(text, now)?
    } else {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let token = lines.next().ok_or("it printed no token")?.to_owned();
        let expires_at = match lines.next() {
            None => None,
            Some(line) => Some(parse_expiry(line, now)?),
        };
        (token, expires_at)
    };
    if token.is_empty() {
        return Err("it printed an empty token".to_owned());
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the token holds spaces or control characters".to_owned());
    }
    let expires_at = expires_at.or_else(|| now.checked_add(default_lifetime));
    Ok(AccessToken::new(token, expires_at))
}

fn parse_json(text: &str, now: SystemTime) -> Result<(String, Option<SystemTime>), String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("its JSON output is not valid: {e}"))?;
    let object = value
        .get("credential")
        .filter(|c| c.is_object())
        .unwrap_or(&value);
    let token = ["access_token", "token"]
        .iter()
        .find_map(|k| object.get(*k).and_then(|v| v.as_str()))
        .ok_or("its JSON output has no \"access_token\" or \"token\" string")?
        .to_owned();
    let expires_at = if let Some(v) = object.get("expires_in") {
        let secs = v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| format!("\"expires_in\" is not a number of seconds: {v}"))?;
        Some(add_secs(now, secs)?)
    } else if let Some(v) = ["expiry", "expires_at", "token_expiry"]
        .iter()
        .find_map(|k| object.get(*k))
    {
        let s = v
            .as_str()
            .ok_or_else(|| format!("the expiry is not an RFC 3339 string: {v}"))?;
        Some(parse_rfc3339(s)?)
    } else {
        None
    };
    Ok((token, expires_at))
}

fn add_secs(now: SystemTime, secs: u64) -> Result<SystemTime, String> {
    now.checked_add(Duration::from_secs(secs))
        .ok_or_else(|| format!("the lifetime {secs} s is out of range"))
}

/// An expiry line: whole seconds from now, or an RFC 3339 time.
fn parse_expiry(line: &str, now: SystemTime) -> Result<SystemTime, String> {
    if line.bytes().all(|b| b.is_ascii_digit()) {
        let secs = line
            .parse()
            .map_err(|_| format!("the lifetime {line:?} is out of range"))?;
        return add_secs(now, secs);
    }
    parse_rfc3339(line)
}

/// Parses an RFC 3339 date-time (`2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.5+02:00`) into a time.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("{s:?} is neither whole seconds nor an RFC 3339 time");
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        std::str::from_utf8(part)
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or_else(bad)
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    let unix = u64::try_from(unix).map_err(|_| format!("{s:?} is before 1970"))?;
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(unix))
        .ok_or_else(bad)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn unix(t: SystemTime) -> u64 {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after")
            .as_secs()
    }

    fn parse(text: &str) -> Result<(String, u64), String> {
        let t = parse_token_output(text, now(), Duration::from_secs(300))?;
        Ok((
            t.token.expose().to_owned(),
            unix(t.expires_at.expect("an expiry")),
        ))
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(unix(parse_rfc3339("1970-01-01T00:00:00Z").expect("ok")), 0);
        assert_eq!(
            unix(parse_rfc3339("2023-11-14T22:13:20Z").expect("ok")),
            1_700_000_000
        );
        assert_eq!(
            unix(parse_rfc3339("2023-11-15T00:13:20.123456+02:00").expect("ok")),
            1_700_000_000
        );
        assert_eq!(
            unix(parse_rfc3339("2000-02-29t12:00:00-01:30").expect("ok")),
            951_831_000
        );
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20.Z",
            "1969-12-31T23:59:59Z",
            "２023-11-14T22:13:20Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_output_forms() {
        assert_eq!(
            parse("ya29.abc\n").expect("ok"),
            ("ya29.abc".into(), NOW + 300)
        );
        assert_eq!(
            parse("\n  ya29.abc  \n3599\n").expect("ok"),
            ("ya29.abc".into(), NOW + 3599)
        );
        assert_eq!(
            parse("tok\n2023-11-14T23:13:20Z\n").expect("ok"),
            ("tok".into(), NOW + 3600)
        );
        assert_eq!(
            parse(r#"{"access_token":"a","expires_in":120}"#).expect("ok"),
            ("a".into(), NOW + 120)
        );
        assert_eq!(
            parse(r#"{"token":"b","expiry":"2023-11-14T22:23:20Z"}"#).expect("ok"),
            ("b".into(), NOW + 600)
        );
        assert_eq!(
            parse(r#"{"credential":{"access_token":"g","token_expiry":"2023-11-14T22:14:20Z"},"configuration":{}}"#)
                .expect("gcloud config config-helper"),
            ("g".into(), NOW + 60)
        );
        assert_eq!(
            parse(r#"{"token":"c"}"#).expect("ok"),
            ("c".into(), NOW + 300)
        );
        for bad in [
            "",
            "\n\n",
            "two words\n",
            "tok\nsoon\n",
            r#"{"access_token":1}"#,
            r#"{"token":"t","expires_in":"x"}"#,
            r#"{"token":"t","expiry":12}"#,
            r#"{"token":""}"#,
            "{not json",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
