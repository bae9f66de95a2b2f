//! One logical request, with everything a registry conversation adds to
//! it: credentials from the session, a 401 answered by fetching a token (or
//! with Basic credentials) and one retry, redirects (credentials dropped off
//! the origin), and retries with backoff for temporary failures.
//!
//! Operations are sequences of exchanges; [`Machine`] runs an operation's
//! [`Steps`] over them.

use std::convert::Infallible;

use berth_auth::{Bearer, Credentials, OwnedChallenge, Scope, parse_challenge_fields};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::response::Parts;
use http::{Method, StatusCode, Uri};

use crate::endpoint::{Endpoint, host_of};
use crate::error::{ERROR_BODY_LIMIT, Error, RegistryError, Subject, redact_url};
use crate::op::{Action, Context, Operation, Request, RequestBody, TransportError};
use crate::redirect;
use crate::retry::{Failure, Retry};
use crate::session::{RegistryAuth, Session, TokenKey, basic_value};

/// The most bytes of a token response read.
pub const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// What the exchange tells the operation.
pub(crate) enum Progress {
    /// A step of the exchange's own (send, wait, read a token body).
    Act(Action<Infallible>),
    /// The final response head; its body is unread.
    Head(Parts),
    /// The body asked for with [`Exchange::read_body`].
    Body(Parts, Bytes),
}

enum Phase {
    Ready,
    AwaitingResponse,
    Waiting,
    ReadingBody(Parts),
    Token(TokenFetch),
    Finished,
}

struct TokenFetch {
    key: TokenKey,
    bearer: Bearer,
    scopes: Vec<Scope>,
    /// Whether the request in flight is the OAuth2 POST form.
    post: bool,
    reading_body: bool,
    waiting: bool,
    retries: u32,
}

/// One logical request.
pub(crate) struct Exchange {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RequestBody,
    idempotent: bool,
    subject: Subject,
    registry: String,
    /// The origin the registry's credentials belong to.
    origin: Uri,
    scopes: Vec<Scope>,
    credentials_ok: bool,
    sent_with_auth: bool,
    auth_retried: bool,
    /// The token fetched for this exchange's own 401: sent with its retry
    /// whatever the cache thinks of its lifetime (a token that lives less
    /// than the cache's margin is still good for the request it was
    /// fetched for).
    fresh_token: Option<berth_auth::Secret>,
    retries: u32,
    redirects: usize,
    phase: Phase,
}

impl Exchange {
    /// An exchange with `endpoint`'s registry at `path_and_query`, needing
    /// `scopes`.
    pub(crate) fn new(
        endpoint: &Endpoint,
        method: Method,
        path_and_query: &str,
        subject: Subject,
        scopes: Vec<Scope>,
    ) -> Result<Exchange, Error> {
        let uri = endpoint
            .url(path_and_query)
            .map_err(|e| Error::invalid("request URL", format!("{path_and_query:?}: {e}")))?;
        Ok(Self::with_uri(endpoint, method, uri, subject, scopes))
    }

    /// An exchange with an absolute URL (an upload `Location`, a next page).
    pub(crate) fn with_uri(
        endpoint: &Endpoint,
        method: Method,
        uri: Uri,
        subject: Subject,
        scopes: Vec<Scope>,
    ) -> Exchange {
        let idempotent = !matches!(method, Method::POST | Method::PATCH);
        let origin = endpoint
            .url("/v2/")
            .expect("the endpoint's own base URL is valid");
        // Credentials go only to the registry's own origin.
        let credentials_ok = redirect::same_origin(&origin, &uri);
        Exchange {
            method,
            uri,
            headers: HeaderMap::new(),
            body: RequestBody::Empty,
            idempotent,
            subject,
            registry: endpoint.registry.clone(),
            origin,
            scopes,
            credentials_ok,
            sent_with_auth: false,
            auth_retried: false,
            fresh_token: None,
            retries: 0,
            redirects: 0,
            phase: Phase::Ready,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    pub(crate) fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    /// Makes a 401 final: the operation reads the challenge itself (a ping).
    pub(crate) fn without_auth(mut self) -> Self {
        self.auth_retried = true;
        self
    }

    /// Sends no credentials and answers no challenge: for servers that are
    /// not the registry (a foreign layer's URL).
    pub(crate) fn anonymous(mut self) -> Self {
        self.credentials_ok = false;
        self.auth_retried = true;
        self
    }

    /// Whether this exchange may be sent again after a failure (a POST
    /// that starts an upload may: a new session is harmless).
    pub(crate) fn retryable(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Sends (or sends again) the request.
    pub(crate) fn send(&mut self, cx: &mut Context<'_>) -> Result<Action<Infallible>, Error> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        let headers = builder.headers_mut().expect("a fresh builder has headers");
        headers.extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_str(&cx.session.user_agent)
                .unwrap_or(HeaderValue::from_static("berth")),
        );
        self.sent_with_auth = false;
        let auth = match &self.fresh_token {
            Some(token) if self.credentials_ok => Some(token.clone()),
            _ if self.credentials_ok => {
                cx.session
                    .authorization(&self.registry, &self.scopes, cx.now)?
            }
            _ => None,
        };
        if let Some(auth) = auth {
            let mut v = HeaderValue::from_str(auth.expose())
                .map_err(|_| Error::invalid("credentials", "not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, v);
            self.sent_with_auth = true;
        }
        // The cookies this URL's host set (never another host's, so not
        // along a redirect elsewhere).
        if let Some(cookie) = cx.session.cookie_header(&self.uri) {
            headers.insert(header::COOKIE, cookie);
        }
        // Blob bytes, either way: a download (from the registry, a
        // redirect's storage or a foreign URL) or an upload's body.
        if matches!(self.body, RequestBody::Blob { .. })
            || (self.method == Method::GET && matches!(self.subject, Subject::Blob))
        {
            builder = builder.extension(crate::op::BlobTransfer);
        }
        let request = builder
            .body(self.body.clone())
            .map_err(|e| Error::invalid("request", e))?;
        self.phase = Phase::AwaitingResponse;
        Ok(Action::Send(request))
    }

    /// Asks for the final response's body (at most `limit` bytes).
    pub(crate) fn read_body(&mut self, parts: Parts, limit: usize) -> Action<Infallible> {
        self.phase = Phase::ReadingBody(parts);
        Action::ReadBody { limit }
    }

    /// The registry error for a final response and its (capped) body.
    pub(crate) fn registry_error(&self, parts: &Parts, body: Bytes) -> RegistryError {
        RegistryError::new(
            self.method.clone(),
            &self.uri,
            parts.status,
            body,
            self.subject,
            !self.sent_with_auth,
        )
    }

    pub(crate) fn on_response(
        &mut self,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Progress, Error> {
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::AwaitingResponse => self.on_main_response(parts, cx),
            Phase::Token(fetch) => self.on_token_response(fetch, &parts, cx),
            _ => Err(Error::Misuse("a response arrived when none was expected")),
        }
    }

    fn on_main_response(&mut self, parts: Parts, cx: &mut Context<'_>) -> Result<Progress, Error> {
        cx.session.store_cookies(&self.uri, &parts.headers);
        let status = parts.status;
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location = parts
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let r =
                redirect::follow(&self.uri, location, self.redirects).map_err(Error::Redirect)?;
            self.redirects += 1;
            self.credentials_ok = self.credentials_ok
                && r.keep_credentials
                && redirect::same_origin(&self.origin, &r.to);
            self.uri = r.to;
            if status == StatusCode::SEE_OTHER {
                self.method = Method::GET;
                self.body = RequestBody::Empty;
            }
            return self.send(cx).map(Progress::Act);
        }
        if status == StatusCode::UNAUTHORIZED && self.credentials_ok && !self.auth_retried {
            return self.on_unauthorized(parts, cx);
        }
        if let Retry::After(wait) = cx.session.retry.clone().decide(
            self.retries,
            Failure::Status(status, &parts.headers),
            self.idempotent,
            cx.now,
            &mut cx.session.jitter,
        ) {
            self.retries += 1;
            self.phase = Phase::Waiting;
            return Ok(Progress::Act(Action::Wait(wait)));
        }
        self.phase = Phase::Finished;
        Ok(Progress::Head(parts))
    }

    fn on_unauthorized(&mut self, parts: Parts, cx: &mut Context<'_>) -> Result<Progress, Error> {
        let fields: Vec<&str> = parts
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let challenges: Vec<OwnedChallenge> = parse_challenge_fields(fields.iter().copied())
            .map(|cs| cs.iter().map(|c| c.to_owned()).collect())
            .unwrap_or_default();
        // GCR answers 401 without a challenge: reuse the one from the ping.
        let auth = Session::pick_challenge(&challenges)
            .or_else(|| cx.session.challenge(&self.registry).cloned());
        let Some(auth) = auth else {
            self.phase = Phase::Finished;
            return Ok(Progress::Head(parts));
        };
        cx.session.remember_challenge(&self.registry, auth.clone());
        self.auth_retried = true;
        let credentials = cx.session.credentials(&self.registry, cx.now)?;
        match auth {
            RegistryAuth::Basic => {
                if matches!(credentials, Some(Credentials::Basic { .. })) {
                    self.send(cx).map(Progress::Act)
                } else {
                    self.phase = Phase::Finished;
                    Ok(Progress::Head(parts))
                }
            }
            RegistryAuth::Bearer(bearer) => {
                if matches!(credentials, Some(Credentials::RegistryToken(_))) {
                    return self.send(cx).map(Progress::Act);
                }
                let scopes = if self.scopes.is_empty() {
                    bearer.scopes().filter_map(Result::ok).collect()
                } else {
                    self.scopes.clone()
                };
                let fetch = TokenFetch {
                    key: Session::token_key(&self.registry, &bearer, &self.scopes),
                    bearer,
                    scopes,
                    post: match &credentials {
                        Some(Credentials::IdentityToken(_)) => true,
                        Some(Credentials::Basic { .. }) => cx.session.oauth_password_grant,
                        _ => false,
                    },
                    reading_body: false,
                    waiting: false,
                    retries: 0,
                };
                self.send_token_request(fetch, cx)
            }
        }
    }

    fn send_token_request(
        &mut self,
        fetch: TokenFetch,
        cx: &mut Context<'_>,
    ) -> Result<Progress, Error> {
        let request = token_request(&fetch, &self.registry, cx)?;
        self.phase = Phase::Token(fetch);
        Ok(Progress::Act(Action::Send(request)))
    }

    fn on_token_response(
        &mut self,
        mut fetch: TokenFetch,
        parts: &Parts,
        cx: &mut Context<'_>,
    ) -> Result<Progress, Error> {
        if let Ok(realm) = fetch.bearer.realm.parse::<Uri>() {
            cx.session.store_cookies(&realm, &parts.headers);
        }
        let status = parts.status;
        if status.is_success() {
            fetch.reading_body = true;
            self.phase = Phase::Token(fetch);
            return Ok(Progress::Act(Action::ReadBody {
                limit: TOKEN_BODY_LIMIT,
            }));
        }
        // Token servers that do not take the OAuth2 POST (GCR 404,
        // Artifactory 401, ACR 400, others 405): fall back to GET, as
        // containerd does.
        if fetch.post && matches!(status.as_u16(), 400 | 401 | 404 | 405) {
            fetch.post = false;
            return self.send_token_request(fetch, cx);
        }
        if let Retry::After(wait) = cx.session.retry.clone().decide(
            fetch.retries,
            Failure::Status(status, &parts.headers),
            true,
            cx.now,
            &mut cx.session.jitter,
        ) {
            fetch.retries += 1;
            fetch.waiting = true;
            self.phase = Phase::Token(fetch);
            return Ok(Progress::Act(Action::Wait(wait)));
        }
        Err(Error::Unauthorized {
            registry: self.registry.clone(),
            detail: format!(
                "the token server {} answered {status}",
                host_of_uri(&fetch.bearer.realm)
            ),
        })
    }

    pub(crate) fn on_body(&mut self, body: Bytes, cx: &mut Context<'_>) -> Result<Progress, Error> {
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::ReadingBody(parts) => Ok(Progress::Body(parts, body)),
            Phase::Token(fetch) if fetch.reading_body => {
                let response = berth_auth::TokenResponse::from_json(&body).map_err(|e| {
                    Error::Unauthorized {
                        registry: self.registry.clone(),
                        detail: format!(
                            "the token server {} sent an unusable token: {e}",
                            host_of_uri(&fetch.bearer.realm)
                        ),
                    }
                })?;
                cx.session.store_token(fetch.key, &response, cx.now);
                self.fresh_token = Some(berth_auth::Secret::new(format!(
                    "Bearer {}",
                    response.token().expose()
                )));
                self.send(cx).map(Progress::Act)
            }
            _ => Err(Error::Misuse("a body arrived when none was asked for")),
        }
    }

    pub(crate) fn on_timeout(&mut self, cx: &mut Context<'_>) -> Result<Progress, Error> {
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::Waiting => self.send(cx).map(Progress::Act),
            Phase::Token(mut fetch) if fetch.waiting => {
                fetch.waiting = false;
                self.send_token_request(fetch, cx)
            }
            _ => Err(Error::Misuse(
                "a timeout arrived when no wait was asked for",
            )),
        }
    }

    pub(crate) fn on_transport_error(
        &mut self,
        error: TransportError,
        cx: &mut Context<'_>,
    ) -> Result<Progress, Error> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let (retries, idempotent) = match &phase {
            Phase::Token(f) => (f.retries, true),
            _ => (self.retries, self.idempotent),
        };
        let decision = cx.session.retry.clone().decide(
            retries,
            Failure::Connection,
            idempotent,
            cx.now,
            &mut cx.session.jitter,
        );
        match (decision, phase) {
            (Retry::After(wait), Phase::Token(mut fetch)) => {
                fetch.retries += 1;
                fetch.waiting = true;
                fetch.reading_body = false;
                self.phase = Phase::Token(fetch);
                Ok(Progress::Act(Action::Wait(wait)))
            }
            (Retry::After(wait), _) => {
                self.retries += 1;
                self.phase = Phase::Waiting;
                Ok(Progress::Act(Action::Wait(wait)))
            }
            (Retry::No, _) => Err(Error::Transport {
                url: redact_url(&self.uri),
                source: error.source,
            }),
        }
    }
}

fn host_of_uri(url: &str) -> String {
    url.parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| host_of(a.as_str()).to_owned()))
        .unwrap_or_else(|| "(invalid realm)".to_owned())
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request to the token server: GET with `service` and `scope`s (Basic
/// credentials when the user has them), or the OAuth2 POST form for an
/// identity token. Credentials go to the realm only over https, or over
/// plain http to loopback or a host named insecure.
fn token_request(fetch: &TokenFetch, registry: &str, cx: &Context<'_>) -> Result<Request, Error> {
    let realm: Uri = fetch
        .bearer
        .realm
        .parse()
        .map_err(|_| Error::Unauthorized {
            registry: registry.to_owned(),
            detail: format!("the token realm {:?} is not a URL", fetch.bearer.realm),
        })?;
    // Userinfo in a realm would hide the host from the checks below
    // (`http://[::1]@evil.example/` is evil.example, not loopback).
    if realm.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::Unauthorized {
            registry: registry.to_owned(),
            detail: format!(
                "the token realm {:?} has user information in its URL",
                fetch.bearer.realm
            ),
        });
    }
    let authority = realm
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| Error::Unauthorized {
            registry: registry.to_owned(),
            detail: format!(
                "the token realm {:?} is not an absolute URL",
                fetch.bearer.realm
            ),
        })?;
    let secure = match realm.scheme_str() {
        Some("https") => true,
        Some("http") => cx.session.endpoint_policy().allows_plain_http(&authority),
        _ => {
            return Err(Error::Unauthorized {
                registry: registry.to_owned(),
                detail: format!("the token realm {:?} is not http(s)", fetch.bearer.realm),
            });
        }
    };
    let credentials = if secure {
        cx.session.credentials(registry, cx.now)?
    } else {
        None
    };
    let mut params: Vec<(&str, String)> = Vec::new();
    if let Some(service) = &fetch.bearer.service {
        params.push(("service", service.clone()));
    }
    for scope in &fetch.scopes {
        params.push(("scope", scope.to_string()));
    }
    let ua =
        HeaderValue::from_str(&cx.session.user_agent).unwrap_or(HeaderValue::from_static("berth"));
    let cookie = cx.session.cookie_header(&realm);
    // OAuth2 form: an identity token is a refresh token; a user name and
    // password use the password grant when the session asks for OAuth2.
    let grant = match (&credentials, fetch.post) {
        (Some(Credentials::IdentityToken(token)), true) => Some(
            [
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", token.expose().to_owned()),
            ]
            .to_vec(),
        ),
        (Some(Credentials::Basic { username, password }), true) => Some(
            [
                ("grant_type", "password".to_owned()),
                ("username", username.clone()),
                ("password", password.expose().to_owned()),
            ]
            .to_vec(),
        ),
        _ => None,
    };
    if let Some(grant) = grant {
        params.extend(grant);
        params.push(("client_id", "berth".to_owned()));
        let form = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut builder = http::Request::builder()
            .method(Method::POST)
            .uri(realm)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, ua);
        if let Some(cookie) = cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        return builder
            .body(RequestBody::Bytes(Bytes::from(form)))
            .map_err(|e| Error::invalid("token request", e));
    }
    if let Some(Credentials::Basic { username, .. }) = &credentials {
        params.push(("account", username.clone()));
    }
    let mut url = fetch.bearer.realm.clone();
    for (i, (k, v)) in params.iter().enumerate() {
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url.push_str(k);
        url.push('=');
        url.push_str(&encode_component(v));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::invalid("token request URL", e))?;
    let mut builder = http::Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::USER_AGENT, ua);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    if let Some(Credentials::Basic { username, password }) = &credentials {
        let mut v = HeaderValue::from_str(basic_value(username, password).expose())
            .map_err(|_| Error::invalid("credentials", "not a valid header value"))?;
        v.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, v);
    }
    builder
        .body(RequestBody::Empty)
        .map_err(|e| Error::invalid("token request", e))
}

/// What an operation's step decides after a final response.
// Short-lived, moved once per step: not worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Next<T> {
    /// Read the body (at most this many bytes), then call `on_body`.
    ReadBody(Parts, usize),
    /// The response is an error: read its body and fail with it.
    Fail(Parts),
    /// Go on with another exchange.
    Then(Exchange),
    /// Finished.
    Done(T),
}

/// An operation's own logic, between exchanges.
pub(crate) trait Steps {
    type Output;
    /// The first exchange.
    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error>;
    /// The final head of the current exchange.
    fn on_head(
        &mut self,
        ex: &Exchange,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error>;
    /// The body asked for with [`Next::ReadBody`].
    fn on_body(
        &mut self,
        ex: &Exchange,
        parts: Parts,
        body: Bytes,
        cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        let _ = (ex, body, cx);
        Ok(Next::Fail(parts))
    }
    /// The current exchange failed to connect after its retries. An
    /// operation with somewhere else to go (the next endpoint) says so.
    fn on_unreachable(
        &mut self,
        error: Error,
        cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        let _ = cx;
        Err(error)
    }
}

/// Runs [`Steps`] over exchanges; every public operation is one of these.
pub(crate) struct Machine<S> {
    steps: S,
    exchange: Option<Exchange>,
    failing: bool,
    finished: bool,
}

impl<S: Steps> Machine<S> {
    pub(crate) fn new(steps: S) -> Self {
        Machine {
            steps,
            exchange: None,
            failing: false,
            finished: false,
        }
    }

    pub(crate) fn steps_mut(&mut self) -> &mut S {
        &mut self.steps
    }

    fn exchange(&mut self) -> Result<&mut Exchange, Error> {
        if self.finished {
            return Err(Error::Misuse("the operation has finished"));
        }
        self.exchange
            .as_mut()
            .ok_or(Error::Misuse("the operation has not started"))
    }

    fn progress(&mut self, p: Progress, cx: &mut Context<'_>) -> Result<Action<S::Output>, Error> {
        let ex = self
            .exchange
            .as_mut()
            .ok_or(Error::Misuse("the operation has not started"))?;
        let next = match p {
            Progress::Act(a) => return Ok(a.cast()),
            Progress::Head(parts) => self.steps.on_head(ex, parts, cx)?,
            Progress::Body(parts, body) if self.failing => {
                self.finished = true;
                return Err(Error::Registry(Box::new(ex.registry_error(&parts, body))));
            }
            Progress::Body(parts, body) => self.steps.on_body(ex, parts, body, cx)?,
        };
        self.apply(next, cx)
    }

    fn apply(
        &mut self,
        next: Next<S::Output>,
        cx: &mut Context<'_>,
    ) -> Result<Action<S::Output>, Error> {
        const NOT_STARTED: Error = Error::Misuse("the operation has not started");
        match next {
            Next::ReadBody(parts, limit) => Ok(self
                .exchange
                .as_mut()
                .ok_or(NOT_STARTED)?
                .read_body(parts, limit)
                .cast()),
            Next::Fail(parts) => {
                self.failing = true;
                Ok(self
                    .exchange
                    .as_mut()
                    .ok_or(NOT_STARTED)?
                    .read_body(parts, ERROR_BODY_LIMIT)
                    .cast())
            }
            Next::Then(mut next) => {
                let action = next.send(cx)?;
                self.exchange = Some(next);
                Ok(action.cast())
            }
            Next::Done(out) => {
                self.finished = true;
                Ok(Action::Done(out))
            }
        }
    }

    fn guard<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if r.is_err() {
            self.finished = true;
        }
        r
    }
}

impl<S: Steps> Operation for Machine<S> {
    type Output = S::Output;

    fn start(&mut self, cx: &mut Context<'_>) -> Result<Action<S::Output>, Error> {
        if self.exchange.is_some() || self.finished {
            return Err(Error::Misuse("the operation was started twice"));
        }
        let first = self.steps.first(cx);
        let first = self.guard(first)?;
        let r = self.apply(Next::Then(first), cx);
        self.guard(r)
    }

    fn on_response(
        &mut self,
        response: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Action<S::Output>, Error> {
        let r = self.exchange().and_then(|ex| ex.on_response(response, cx));
        let r = r.and_then(|p| self.progress(p, cx));
        self.guard(r)
    }

    fn on_body(&mut self, body: Bytes, cx: &mut Context<'_>) -> Result<Action<S::Output>, Error> {
        let r = self.exchange().and_then(|ex| ex.on_body(body, cx));
        let r = r.and_then(|p| self.progress(p, cx));
        self.guard(r)
    }

    fn on_timeout(&mut self, cx: &mut Context<'_>) -> Result<Action<S::Output>, Error> {
        let r = self.exchange().and_then(|ex| ex.on_timeout(cx));
        let r = r.and_then(|p| self.progress(p, cx));
        self.guard(r)
    }

    fn on_transport_error(
        &mut self,
        error: TransportError,
        cx: &mut Context<'_>,
    ) -> Result<Action<S::Output>, Error> {
        let r = match self
            .exchange()
            .and_then(|ex| ex.on_transport_error(error, cx))
        {
            Err(e @ Error::Transport { .. }) => self
                .steps
                .on_unreachable(e, cx)
                .and_then(|next| self.apply(next, cx)),
            Err(e) => Err(e),
            Ok(p) => self.progress(p, cx),
        };
        self.guard(r)
    }
}

/// Declares a public operation type around a [`Machine`].
macro_rules! operation {
    ($(#[$doc:meta])* $name:ident, $steps:ty, $output:ty) => {
        $(#[$doc])*
        pub struct $name(pub(crate) $crate::exchange::Machine<$steps>);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl $crate::op::Operation for $name {
            type Output = $output;
            fn start(&mut self, cx: &mut $crate::op::Context<'_>) -> Result<$crate::op::Action<$output>, $crate::Error> {
                self.0.start(cx)
            }
            fn on_response(&mut self, r: http::response::Parts, cx: &mut $crate::op::Context<'_>) -> Result<$crate::op::Action<$output>, $crate::Error> {
                self.0.on_response(r, cx)
            }
            fn on_body(&mut self, b: bytes::Bytes, cx: &mut $crate::op::Context<'_>) -> Result<$crate::op::Action<$output>, $crate::Error> {
                self.0.on_body(b, cx)
            }
            fn on_timeout(&mut self, cx: &mut $crate::op::Context<'_>) -> Result<$crate::op::Action<$output>, $crate::Error> {
                self.0.on_timeout(cx)
            }
            fn on_transport_error(&mut self, e: $crate::op::TransportError, cx: &mut $crate::op::Context<'_>) -> Result<$crate::op::Action<$output>, $crate::Error> {
                self.0.on_transport_error(e, cx)
            }
        }
    };
}
pub(crate) use operation;
