//! Credentials made at run time: an access token that a [`TokenSource`]
//! produces (an OAuth2 access token from `gcloud`, a workload identity,
//! a token broker) and that expires, refreshed before it does.
//!
//! A [`TokenSourceCredentials`] turns a source into a
//! [`CredentialProvider`] for the registries it names, in one of two
//! forms ([`TokenForm`]): Google's convention, HTTP Basic with the user
//! `oauth2accesstoken` and the access token as the password (answered
//! into the registry's token server like any password), or the token sent
//! to the registry as its bearer token.
//!
//! The session asks the provider with the time now and its token margin
//! ([`CredentialProvider::credentials_at`]); the provider keeps the last
//! token and asks the source again only when that token would expire
//! within the margin. Nothing here reads a clock.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use berth_protocol::token_source::{StaticToken, TokenSourceCredentials};
//! use berth_protocol::{CredentialProvider, auth::Credentials};
//!
//! let creds = TokenSourceCredentials::google("gcr.io", Arc::new(StaticToken::new("ya29.x")));
//! let now = SystemTime::UNIX_EPOCH;
//! match creds.credentials_at("gcr.io", now, Duration::from_secs(10))? {
//!     Some(Credentials::Basic { username, password }) => {
//!         assert_eq!(username, "oauth2accesstoken");
//!         assert_eq!(password.expose(), "ya29.x");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(creds.credentials_at("quay.io", now, Duration::ZERO)?, None);
//! # Ok::<(), berth_protocol::CredentialError>(())
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_auth::{Credentials, Secret};

use crate::endpoint::canonical_registry;
use crate::session::CredentialProvider;

/// The user name Google's registries (gcr.io, Artifact Registry) take with
/// an OAuth2 access token as the password.
pub const GOOGLE_OAUTH2_USER: &str = "oauth2accesstoken";

/// Why a credential source could not produce credentials: a token command
/// that failed, a helper that answered nonsense.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialError {
    /// The source, as a person would name it (`the token command
    /// "gcloud auth print-access-token"`).
    pub provider: String,
    /// What went wrong.
    pub detail: String,
}

impl CredentialError {
    /// An error of `provider`, saying `detail`.
    pub fn new(provider: impl Into<String>, detail: impl Into<String>) -> Self {
        CredentialError {
            provider: provider.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.provider, self.detail)
    }
}

impl std::error::Error for CredentialError {}

/// An access token and when it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token.
    pub token: Secret,
    /// When it expires (`None`: it does not).
    pub expires_at: Option<SystemTime>,
}

impl AccessToken {
    /// A token that expires at `expires_at` (`None`: never).
    pub fn new(token: impl Into<String>, expires_at: Option<SystemTime>) -> Self {
        AccessToken {
            token: Secret::new(token.into()),
            expires_at,
        }
    }

    /// Whether the token is still usable at `now` with `margin` to spare.
    pub fn is_valid_at(&self, now: SystemTime, margin: Duration) -> bool {
        match self.expires_at {
            None => true,
            Some(at) => now.checked_add(margin).is_some_and(|limit| limit < at),
        }
    }
}

/// Produces access tokens at run time.
///
/// Called by the session (through [`TokenSourceCredentials`]) when it
/// needs credentials and the last token is missing or about to expire;
/// an implementation may block briefly (run a command, read a file).
pub trait TokenSource: Send + Sync {
    /// A fresh token. `now` is the session's time: an expiry given as a
    /// lifetime counts from it.
    fn token(&self, now: SystemTime) -> Result<AccessToken, CredentialError>;
}

/// The same token every time, never expiring.
#[derive(Clone)]
pub struct StaticToken {
    token: Secret,
}

impl StaticToken {
    /// This token.
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken {
            token: Secret::new(token.into()),
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken").finish_non_exhaustive()
    }
}

impl TokenSource for StaticToken {
    fn token(&self, _now: SystemTime) -> Result<AccessToken, CredentialError> {
        Ok(AccessToken {
            token: self.token.clone(),
            expires_at: None,
        })
    }
}

/// How an access token is presented to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenForm {
    /// HTTP Basic, this user name and the token as the password: sent to
    /// the registry's token server (or to a registry that asks for Basic)
    /// like any password. Google's registries take the user
    /// [`GOOGLE_OAUTH2_USER`].
    Basic {
        /// The user name.
        username: String,
    },
    /// The token is the registry's own bearer token, sent as it is.
    Bearer,
}

impl TokenForm {
    /// Google's convention: Basic with the user `oauth2accesstoken`.
    pub fn google() -> Self {
        TokenForm::Basic {
            username: GOOGLE_OAUTH2_USER.to_owned(),
        }
    }

    fn credentials(&self, token: &AccessToken) -> Credentials {
        match self {
            TokenForm::Basic { username } => Credentials::Basic {
                username: username.clone(),
                password: token.token.clone(),
            },
            TokenForm::Bearer => Credentials::RegistryToken(token.token.clone()),
        }
    }
}

/// A [`CredentialProvider`] over a [`TokenSource`], for the registries it
/// names (by any alias). The last token is kept and reused until it
/// would expire within the session's margin.
pub struct TokenSourceCredentials {
    registries: Vec<String>,
    source: Arc<dyn TokenSource>,
    form: TokenForm,
    current: Mutex<Option<AccessToken>>,
}

impl fmt::Debug for TokenSourceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSourceCredentials")
            .field("registries", &self.registries)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl TokenSourceCredentials {
    /// Tokens from `source` for `registry`, presented in `form`.
    pub fn new(registry: &str, source: Arc<dyn TokenSource>, form: TokenForm) -> Self {
        TokenSourceCredentials {
            registries: vec![canonical_registry(registry).to_owned()],
            source,
            form,
            current: Mutex::new(None),
        }
    }

    /// Tokens from `source` for `registry` in Google's convention (Basic,
    /// user `oauth2accesstoken`).
    pub fn google(registry: &str, source: Arc<dyn TokenSource>) -> Self {
        Self::new(registry, source, TokenForm::google())
    }

    /// Answers for `registry` too (`us.gcr.io` beside `gcr.io`).
    pub fn and_registry(mut self, registry: &str) -> Self {
        let registry = canonical_registry(registry).to_owned();
        if !self.registries.contains(&registry) {
            self.registries.push(registry);
        }
        self
    }

    /// Whether this provider answers for `registry` (any alias).
    pub fn answers_for(&self, registry: &str) -> bool {
        let registry = canonical_registry(registry);
        self.registries.iter().any(|r| r == registry)
    }

    /// The registries it answers for (canonical names).
    pub fn registries(&self) -> &[String] {
        &self.registries
    }
}

impl CredentialProvider for TokenSourceCredentials {
    /// The last token fetched, as it is: without the time, the provider
    /// cannot tell whether it is still valid, so the session calls
    /// [`CredentialProvider::credentials_at`] instead.
    fn credentials(&self, registry: &str) -> Option<Credentials> {
        if !self.answers_for(registry) {
            return None;
        }
        let current = self.current.lock().ok()?;
        current.as_ref().map(|t| self.form.credentials(t))
    }

    fn credentials_at(
        &self,
        registry: &str,
        now: SystemTime,
        margin: Duration,
    ) -> Result<Option<Credentials>, CredentialError> {
        if !self.answers_for(registry) {
            return Ok(None);
        }
        let mut current = self
            .current
            .lock()
            .map_err(|_| CredentialError::new("the token source", "its lock is poisoned"))?;
        if let Some(t) = current.as_ref().filter(|t| t.is_valid_at(now, margin)) {
            return Ok(Some(self.form.credentials(t)));
        }
        let fresh = self.source.token(now)?;
        if fresh.token.is_empty() {
            return Err(CredentialError::new(
                "the token source",
                "it produced an empty token",
            ));
        }
        let credentials = self.form.credentials(&fresh);
        *current = Some(fresh);
        Ok(Some(credentials))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Hands out `t1`, `t2`, ... each valid for `lifetime` from the `now`
    /// it is asked at.
    struct Counting {
        calls: AtomicU32,
        lifetime: Duration,
    }

    impl TokenSource for Counting {
        fn token(&self, now: SystemTime) -> Result<AccessToken, CredentialError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AccessToken::new(format!("t{n}"), Some(now + self.lifetime)))
        }
    }

    fn password(c: Option<Credentials>) -> String {
        match c {
            Some(Credentials::Basic { username, password }) => {
                assert_eq!(username, GOOGLE_OAUTH2_USER);
                password.expose().to_owned()
            }
            other => panic!("not Google's Basic form: {other:?}"),
        }
    }

    #[test]
    fn refreshed_before_expiry_on_simulated_time() {
        let source = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime: Duration::from_secs(3600),
        });
        let creds =
            TokenSourceCredentials::google("gcr.io", source.clone()).and_registry("us.gcr.io");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let margin = Duration::from_secs(60);
        let at = |secs: u64| t0 + Duration::from_secs(secs);

        assert_eq!(
            password(creds.credentials_at("gcr.io", at(0), margin).expect("ok")),
            "t1"
        );
        assert_eq!(
            password(
                creds
                    .credentials_at("us.gcr.io", at(1800), margin)
                    .expect("ok")
            ),
            "t1",
            "still valid: reused"
        );
        assert_eq!(
            password(
                creds
                    .credentials_at("gcr.io", at(3539), margin)
                    .expect("ok")
            ),
            "t1",
            "61 s left, more than the margin"
        );
        assert_eq!(
            password(
                creds
                    .credentials_at("gcr.io", at(3540), margin)
                    .expect("ok")
            ),
            "t2",
            "within the margin of its expiry: refreshed before it expires"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        assert_eq!(password(creds.credentials("gcr.io")), "t2");
        assert_eq!(creds.credentials_at("quay.io", at(0), margin), Ok(None));
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            2,
            "not asked for others"
        );
    }

    #[test]
    fn bearer_form_and_failures() {
        struct Failing;
        impl TokenSource for Failing {
            fn token(&self, _now: SystemTime) -> Result<AccessToken, CredentialError> {
                Err(CredentialError::new(
                    "the token command \"x\"",
                    "exit status: 1",
                ))
            }
        }
        let now = SystemTime::UNIX_EPOCH;
        let creds = TokenSourceCredentials::new(
            "index.docker.io",
            Arc::new(StaticToken::new("reg")),
            TokenForm::Bearer,
        );
        assert!(matches!(
            creds.credentials_at("docker.io", now, Duration::ZERO),
            Ok(Some(Credentials::RegistryToken(t))) if t.expose() == "reg"
        ));
        let failing = TokenSourceCredentials::google("gcr.io", Arc::new(Failing));
        let e = failing
            .credentials_at("gcr.io", now, Duration::ZERO)
            .expect_err("fails");
        assert_eq!(
            e.to_string(),
            "the token command \"x\" failed: exit status: 1"
        );
        let empty = TokenSourceCredentials::google("gcr.io", Arc::new(StaticToken::new("")));
        assert!(empty.credentials_at("gcr.io", now, Duration::ZERO).is_err());
    }
}
