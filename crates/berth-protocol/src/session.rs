//! What a client remembers between operations: which endpoint answers for
//! each registry, each registry's auth challenge, the tokens it was given
//! (per realm, service and scope, until they expire), and the policies.
//!
//! A [`Session`] is plain data. A client that runs operations concurrently
//! keeps it behind a lock and lends it to each call; no call blocks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use berth_auth::{Bearer, Credentials, OwnedChallenge, Scope, Secret, TokenResponse};

use crate::cookies::CookieJar;
use crate::endpoint::{Endpoint, EndpointPolicy, canonical_registry};
use crate::error::Error;
use crate::retry::{Jitter, RetryPolicy};
use crate::token_source::CredentialError;

/// Where credentials come from: the client implements this over Docker's
/// `config.json`, credential helpers, token sources or plain values.
pub trait CredentialProvider: Send + Sync {
    /// Credentials for `registry` (a canonical registry name such as
    /// `docker.io` or `localhost:5000`), if any.
    fn credentials(&self, registry: &str) -> Option<Credentials>;

    /// Credentials for `registry` that are still valid at `now` with
    /// `margin` to spare, or why none could be had. The session calls
    /// this one: providers whose credentials are made at run time (a
    /// [`crate::token_source::TokenSource`]) refresh them here, and a
    /// failing source is an error rather than no credentials. The default
    /// asks [`CredentialProvider::credentials`].
    fn credentials_at(
        &self,
        registry: &str,
        now: SystemTime,
        margin: Duration,
    ) -> Result<Option<Credentials>, CredentialError> {
        let _ = (now, margin);
        Ok(self.credentials(registry))
    }
}

/// No credentials for any registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialProvider for Anonymous {
    fn credentials(&self, _registry: &str) -> Option<Credentials> {
        None
    }
}

/// Fixed credentials per registry.
#[derive(Clone, Default)]
pub struct StaticCredentials {
    by_registry: HashMap<String, Credentials>,
}

impl StaticCredentials {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds credentials for a registry (any alias: `index.docker.io` is
    /// `docker.io`).
    pub fn with(mut self, registry: &str, credentials: Credentials) -> Self {
        self.by_registry
            .insert(canonical_registry(registry).to_owned(), credentials);
        self
    }
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("registries", &self.by_registry.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CredentialProvider for StaticCredentials {
    fn credentials(&self, registry: &str) -> Option<Credentials> {
        self.by_registry.get(canonical_registry(registry)).cloned()
    }
}

/// A token cache key: the registry the token is for, the token server and
/// what the token allows. A token is never sent to another registry, even
/// one whose challenge names the same token server and service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    registry: String,
    realm: String,
    service: String,
    scope: String,
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires_at: SystemTime,
}

/// How a registry wants to be authenticated, as its last challenge said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegistryAuth {
    /// Bearer tokens from a token server.
    Bearer(Bearer),
    /// HTTP Basic with the user's credentials.
    Basic,
}

/// The client's memory between operations.
pub struct Session {
    credentials: Arc<dyn CredentialProvider>,
    endpoints: EndpointPolicy,
    /// Cookies per host, when the client keeps them.
    cookies: Option<Arc<dyn CookieJar>>,
    /// The endpoint that answered the ping, per canonical registry.
    chosen: HashMap<String, Endpoint>,
    /// The last challenge per canonical registry (from a ping or a 401), so
    /// a 401 without `WWW-Authenticate` (GCR) can reuse it.
    challenges: HashMap<String, RegistryAuth>,
    tokens: HashMap<TokenKey, CachedToken>,
    pub(crate) retry: RetryPolicy,
    pub(crate) jitter: Jitter,
    /// A token is renewed this long before it expires.
    pub(crate) token_margin: Duration,
    /// Ask token servers with the OAuth2 password grant (a POST) before
    /// the plain GET, as containerd does when told to.
    pub(crate) oauth_password_grant: bool,
    /// Registries whose `/v2/` answered without the V2 API header and
    /// without a 401 challenge.
    pub(crate) user_agent: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("endpoints", &self.endpoints)
            .field("chosen", &self.chosen.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .field("retry", &self.retry)
            .finish()
    }
}

impl Session {
    /// A session with these credentials and endpoint rules. `seed` seeds the
    /// backoff jitter.
    pub fn new(
        credentials: Arc<dyn CredentialProvider>,
        endpoints: EndpointPolicy,
        seed: u64,
    ) -> Self {
        Session {
            credentials,
            endpoints,
            cookies: None,
            chosen: HashMap::new(),
            challenges: HashMap::new(),
            tokens: HashMap::new(),
            retry: RetryPolicy::default(),
            jitter: Jitter::new(seed),
            token_margin: Duration::from_secs(10),
            oauth_password_grant: false,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// An anonymous session with no insecure registries.
    pub fn anonymous() -> Self {
        Self::new(Arc::new(Anonymous), EndpointPolicy::new(), 0)
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the `User-Agent` sent with every request.
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Renew tokens this long before they expire (default 10 s).
    pub fn with_token_margin(mut self, margin: Duration) -> Self {
        self.token_margin = margin;
        self
    }

    /// Fetch tokens for a user name and password with the OAuth2 password
    /// grant (POST `grant_type=password`), falling back to GET where the
    /// token server refuses the POST (404, 401, 400, 405). Off by default:
    /// the GET with Basic credentials is what every registry takes.
    pub fn with_oauth_password_grant(mut self, yes: bool) -> Self {
        self.oauth_password_grant = yes;
        self
    }

    /// Keeps cookies in `jar`: every request gets the cookies its host
    /// set, every response's `Set-Cookie` is stored (off by default).
    pub fn with_cookie_jar(mut self, jar: Arc<dyn CookieJar>) -> Self {
        self.cookies = Some(jar);
        self
    }

    /// The `Cookie` header for a request to `uri`, from the jar.
    pub(crate) fn cookie_header(&self, uri: &http::Uri) -> Option<http::HeaderValue> {
        self.cookies.as_ref()?.cookie_header(uri)
    }

    /// Gives the jar a response's `Set-Cookie` headers.
    pub(crate) fn store_cookies(&self, uri: &http::Uri, headers: &http::HeaderMap) {
        if let Some(jar) = &self.cookies
            && headers.contains_key(http::header::SET_COOKIE)
        {
            jar.store_set_cookies(uri, headers);
        }
    }

    /// The endpoint rules.
    pub fn endpoint_policy(&self) -> &EndpointPolicy {
        &self.endpoints
    }

    /// The endpoint to use for a registry: the one that answered its ping,
    /// else the first candidate (https).
    pub fn endpoint(&self, domain: &str) -> Endpoint {
        let registry = canonical_registry(domain);
        match self.chosen.get(registry) {
            Some(e) => e.clone(),
            None => self
                .endpoints
                .endpoints(domain)
                .into_iter()
                .next()
                .expect("there is always an https endpoint"),
        }
    }

    /// Whether a ping has chosen an endpoint for this registry.
    pub fn has_endpoint(&self, domain: &str) -> bool {
        self.chosen.contains_key(canonical_registry(domain))
    }

    pub(crate) fn choose_endpoint(&mut self, endpoint: Endpoint) {
        self.chosen.insert(endpoint.registry.clone(), endpoint);
    }

    /// The credentials for `registry`, valid at `now` with the token
    /// margin to spare; a failing source is a typed auth error.
    pub(crate) fn credentials(
        &self,
        registry: &str,
        now: SystemTime,
    ) -> Result<Option<Credentials>, Error> {
        let registry = canonical_registry(registry);
        self.credentials
            .credentials_at(registry, now, self.token_margin)
            .map_err(|source| Error::Credentials {
                registry: registry.to_owned(),
                source,
            })
    }

    pub(crate) fn remember_challenge(&mut self, registry: &str, auth: RegistryAuth) {
        self.challenges
            .insert(canonical_registry(registry).to_owned(), auth);
    }

    pub(crate) fn challenge(&self, registry: &str) -> Option<&RegistryAuth> {
        self.challenges.get(canonical_registry(registry))
    }

    /// Picks the challenge to answer from a 401's challenges: Bearer over
    /// Basic; unknown schemes are ignored.
    pub(crate) fn pick_challenge(challenges: &[OwnedChallenge]) -> Option<RegistryAuth> {
        let bearer = challenges.iter().find(|c| c.is_scheme("bearer"));
        if let Some(b) = bearer.and_then(|c| Bearer::from_owned(c).ok()) {
            return Some(RegistryAuth::Bearer(b));
        }
        challenges
            .iter()
            .any(|c| c.is_scheme("basic"))
            .then_some(RegistryAuth::Basic)
    }

    pub(crate) fn token_key(registry: &str, bearer: &Bearer, scopes: &[Scope]) -> TokenKey {
        TokenKey {
            registry: canonical_registry(registry).to_owned(),
            realm: bearer.realm.clone(),
            service: bearer.service.clone().unwrap_or_default(),
            scope: berth_auth::join_scopes(scopes),
        }
    }

    /// The `Authorization` value to send to `registry` for a request that
    /// needs `scopes`, from what is already known: a cached token still
    /// valid at `now`, Basic credentials, or a registry token.
    pub(crate) fn authorization(
        &self,
        registry: &str,
        scopes: &[Scope],
        now: SystemTime,
    ) -> Result<Option<Secret>, Error> {
        let Some(challenge) = self.challenge(registry) else {
            return Ok(None);
        };
        Ok(match challenge {
            RegistryAuth::Basic => match self.credentials(registry, now)? {
                Some(Credentials::Basic { username, password }) => {
                    Some(basic_value(&username, &password))
                }
                _ => None,
            },
            RegistryAuth::Bearer(bearer) => {
                // A token from the token server, still valid: the
                // credentials are not needed (nor refreshed) for it.
                let cached = self
                    .tokens
                    .get(&Self::token_key(registry, bearer, scopes))
                    .filter(|cached| cached.expires_at > now + self.token_margin);
                if let Some(cached) = cached {
                    return Ok(Some(Secret::new(format!(
                        "Bearer {}",
                        cached.token.expose()
                    ))));
                }
                match self.credentials(registry, now)? {
                    Some(Credentials::RegistryToken(t)) => {
                        Some(Secret::new(format!("Bearer {}", t.expose())))
                    }
                    _ => None,
                }
            }
        })
    }

    pub(crate) fn store_token(&mut self, key: TokenKey, response: &TokenResponse, now: SystemTime) {
        // Its lifetime counts from when it arrived, on this machine's
        // clock: `issued_at` is the token server's clock, and a server
        // a minute behind would make a 60 s token expired on arrival.
        let expires_at = now.checked_add(response.expires_in()).unwrap_or(now);
        self.tokens.insert(
            key,
            CachedToken {
                token: response.token().clone(),
                expires_at,
            },
        );
        // Keep the cache bounded: drop what has expired.
        if self.tokens.len() > 256 {
            self.tokens.retain(|_, t| t.expires_at > now);
        }
    }

    /// Forgets every token (for example after credentials changed).
    pub fn clear_tokens(&mut self) {
        self.tokens.clear();
    }

    /// How many tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }
}

/// `Basic base64(user:password)`.
pub(crate) fn basic_value(username: &str, password: &Secret) -> Secret {
    let raw = format!("{username}:{}", password.expose());
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
}
