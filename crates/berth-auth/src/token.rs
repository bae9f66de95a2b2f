//! Token server responses (the distribution token specification, and the
//! OAuth2 form some servers answer with).
//!
//! Tokens are opaque: GHCR's are not JWTs. Expiry comes from `expires_in` and
//! `issued_at` only, never from decoding the token.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::secret::Secret;
use crate::time::{TimestampError, parse_rfc3339};

/// The lifetime of a token whose response gives no positive `expires_in`
/// (the distribution token specification's default).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The longest `expires_in` taken as given; larger values are capped to it.
const MAX_LIFETIME_SECS: u64 = u32::MAX as u64;

/// A token response that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The body is not JSON.
    #[error("token response is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("token response is not a JSON object")]
    NotAnObject,
    /// Neither `token` nor `access_token` holds a non-empty string.
    #[error("token response has no token (neither \"token\" nor \"access_token\")")]
    MissingToken,
    /// A field has the wrong JSON type.
    #[error("token response field {field:?} should be {expected}")]
    FieldType {
        /// The field.
        field: &'static str,
        /// The type it should have.
        expected: &'static str,
    },
    /// `issued_at` is not an RFC 3339 timestamp.
    #[error("token response field \"issued_at\": {0}")]
    IssuedAt(#[source] TimestampError),
}

/// A token server's answer: the token, how long it lives, and an optional
/// refresh token. `Debug` shows no token.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use berth_auth::TokenResponse;
/// let body = br#"{"token":"opaque-ghcr-token","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"}"#;
/// let t = TokenResponse::from_json(body)?;
/// assert_eq!(t.token().expose(), "opaque-ghcr-token");
/// let now = UNIX_EPOCH; // ignored: issued_at is given
/// assert_eq!(t.expires_at(now), UNIX_EPOCH + Duration::from_secs(1_704_067_200 + 300));
/// assert!(!format!("{t:?}").contains("opaque"));
/// # Ok::<(), berth_auth::TokenError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    token: Secret,
    refresh_token: Option<Secret>,
    expires_in: Duration,
    issued_at: Option<SystemTime>,
}

fn string_field(
    obj: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, TokenError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::FieldType {
            field,
            expected: "a string",
        }),
    }
}

impl TokenResponse {
    /// Parses a token response body.
    ///
    /// - The token is `token`, or `access_token` (OAuth2) when `token` is
    ///   absent or empty; one of them must be a non-empty string.
    /// - `expires_in` (seconds) defaults to 60 when absent, null, zero or
    ///   negative; fractions are dropped; values past `u32::MAX` are capped.
    /// - `issued_at` is RFC 3339; when absent, expiry counts from the `now`
    ///   given to [`expires_at`](Self::expires_at).
    /// - `refresh_token` is kept when present.
    ///
    /// Other fields are ignored.
    pub fn from_json(body: &[u8]) -> Result<Self, TokenError> {
        let value: Value = serde_json::from_slice(body).map_err(TokenError::Json)?;
        let Value::Object(obj) = value else {
            return Err(TokenError::NotAnObject);
        };
        let token = string_field(&obj, "token")?.filter(|t| !t.is_empty());
        let access_token = string_field(&obj, "access_token")?.filter(|t| !t.is_empty());
        let token = token.or(access_token).ok_or(TokenError::MissingToken)?;
        let expires_in = match obj.get("expires_in") {
            None | Some(Value::Null) => DEFAULT_TOKEN_LIFETIME,
            Some(Value::Number(n)) => lifetime(n),
            Some(_) => {
                return Err(TokenError::FieldType {
                    field: "expires_in",
                    expected: "a number",
                });
            }
        };
        let issued_at = match string_field(&obj, "issued_at")? {
            None => None,
            Some(s) => Some(parse_rfc3339(&s).map_err(TokenError::IssuedAt)?),
        };
        let refresh_token = string_field(&obj, "refresh_token")?
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        Ok(TokenResponse {
            token: Secret::new(token),
            refresh_token,
            expires_in,
            issued_at,
        })
    }

    /// The token, to send as `Authorization: Bearer <token>`.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// The refresh token (OAuth2), if the server gave one.
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// How long the token lives from [`issued_at`](Self::issued_at).
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// When the server says it issued the token, if it says.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.issued_at
    }

    /// When the token expires: `issued_at + expires_in`, or, without
    /// `issued_at`, `now + expires_in` (`now` being when the response was
    /// received).
    pub fn expires_at(&self, now: SystemTime) -> SystemTime {
        let start = self.issued_at.unwrap_or(now);
        start.checked_add(self.expires_in).unwrap_or(start)
    }

    /// Whether the token is still usable at `now` with `margin` to spare
    /// (c/image keeps 60 s, regclient 5 s). `received` is when the response
    /// arrived, used when the response has no `issued_at`.
    pub fn is_valid_at(&self, received: SystemTime, now: SystemTime, margin: Duration) -> bool {
        match now.checked_add(margin) {
            Some(limit) => limit < self.expires_at(received),
            None => false,
        }
    }
}

fn lifetime(n: &serde_json::Number) -> Duration {
    let secs = if let Some(u) = n.as_u64() {
        u
    } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 1.0) {
        // Truncation is intended: whole seconds, capped below.
        #[allow(clippy::cast_possible_truncation)]
        let s = f.min(MAX_LIFETIME_SECS as f64) as u64;
        s
    } else {
        0
    };
    match secs {
        0 => DEFAULT_TOKEN_LIFETIME,
        s => Duration::from_secs(s.min(MAX_LIFETIME_SECS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn parse(body: &str) -> TokenResponse {
        TokenResponse::from_json(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    #[test]
    fn token_or_access_token() {
        assert_eq!(parse(r#"{"token":"a"}"#).token().expose(), "a");
        assert_eq!(parse(r#"{"access_token":"b"}"#).token().expose(), "b");
        assert_eq!(
            parse(r#"{"token":"a","access_token":"b"}"#)
                .token()
                .expose(),
            "a"
        );
        assert_eq!(
            parse(r#"{"token":"","access_token":"b"}"#).token().expose(),
            "b"
        );
        assert!(matches!(
            TokenResponse::from_json(br#"{"expires_in":3}"#),
            Err(TokenError::MissingToken)
        ));
        assert!(matches!(
            TokenResponse::from_json(br#"{"token":""}"#),
            Err(TokenError::MissingToken)
        ));
        assert!(matches!(
            TokenResponse::from_json(br#"{"token":5}"#),
            Err(TokenError::FieldType { field: "token", .. })
        ));
        assert!(matches!(
            TokenResponse::from_json(br#""tok""#),
            Err(TokenError::NotAnObject)
        ));
        assert!(matches!(
            TokenResponse::from_json(b"{"),
            Err(TokenError::Json(_))
        ));
    }

    #[test]
    fn expires_in_defaults_to_60_seconds() {
        for body in [
            r#"{"token":"a"}"#,
            r#"{"token":"a","expires_in":null}"#,
            r#"{"token":"a","expires_in":0}"#,
            r#"{"token":"a","expires_in":-30}"#,
            r#"{"token":"a","expires_in":0.5}"#,
        ] {
            assert_eq!(parse(body).expires_in(), Duration::from_secs(60), "{body}");
        }
        assert_eq!(
            parse(r#"{"token":"a","expires_in":300}"#).expires_in(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse(r#"{"token":"a","expires_in":300.9}"#).expires_in(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse(r#"{"token":"a","expires_in":1e300}"#).expires_in(),
            Duration::from_secs(u64::from(u32::MAX))
        );
        assert!(matches!(
            TokenResponse::from_json(br#"{"token":"a","expires_in":"300"}"#),
            Err(TokenError::FieldType {
                field: "expires_in",
                ..
            })
        ));
    }

    #[test]
    fn expiry_from_issued_at_or_now() {
        let t =
            parse(r#"{"token":"a","expires_in":300,"issued_at":"2024-01-01T01:00:00.750+01:00"}"#);
        let issued = UNIX_EPOCH + Duration::from_millis(1_704_067_200_750);
        assert_eq!(t.issued_at(), Some(issued));
        let now = UNIX_EPOCH + Duration::from_secs(1);
        assert_eq!(t.expires_at(now), issued + Duration::from_secs(300));
        assert!(t.is_valid_at(
            now,
            issued + Duration::from_secs(200),
            Duration::from_secs(60)
        ));
        assert!(!t.is_valid_at(
            now,
            issued + Duration::from_secs(250),
            Duration::from_secs(60)
        ));

        let t = parse(r#"{"access_token":"opaque","expires_in":120}"#);
        assert_eq!(t.issued_at(), None);
        assert_eq!(t.expires_at(now), now + Duration::from_secs(120));
        let t = parse(r#"{"token":"a"}"#);
        assert_eq!(t.expires_at(now), now + Duration::from_secs(60));

        assert!(matches!(
            TokenResponse::from_json(br#"{"token":"a","issued_at":"yesterday"}"#),
            Err(TokenError::IssuedAt(_))
        ));
    }

    #[test]
    fn refresh_token_and_redaction() {
        let t =
            parse(r#"{"token":"s3cr3t-token","refresh_token":"s3cr3t-refresh","expires_in":60}"#);
        assert_eq!(
            t.refresh_token().map(Secret::expose),
            Some("s3cr3t-refresh")
        );
        let dbg = format!("{t:?} {t:#?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }
}
