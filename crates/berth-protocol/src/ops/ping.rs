//! `GET /v2/`: is this a V2 registry, on which endpoint, and how does it
//! want to be authenticated.

use berth_auth::{OwnedChallenge, parse_challenge_fields};
use http::response::Parts;
use http::{Method, StatusCode, header};

use crate::endpoint::Endpoint;
use crate::error::{Error, Subject};
use crate::exchange::{Exchange, Machine, Next, Steps, operation};
use crate::op::Context;
use crate::session::Session;

/// What a ping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingInfo {
    /// The endpoint that answered (https, or http for loopback and insecure
    /// hosts when https failed).
    pub endpoint: Endpoint,
    /// The `Docker-Distribution-API-Version` header, if sent.
    pub api_version: Option<String>,
    /// The challenges of a 401 answer (empty when the registry is open).
    pub challenges: Vec<OwnedChallenge>,
}

pub(crate) struct PingSteps {
    candidates: Vec<Endpoint>,
    index: usize,
    /// Why the first (https) endpoint failed, when a fallback is tried.
    first_error: Option<Error>,
}

impl PingSteps {
    fn exchange(&self) -> Result<Exchange, Error> {
        let endpoint = &self.candidates[self.index];
        let last = self.index + 1 == self.candidates.len();
        // With another endpoint to try, a connection failure moves on at
        // once instead of retrying.
        Ok(
            Exchange::new(endpoint, Method::GET, "/v2/", Subject::Registry, Vec::new())?
                .without_auth()
                .retryable(last),
        )
    }
}

impl Steps for PingSteps {
    type Output = PingInfo;

    fn first(&mut self, _cx: &mut Context<'_>) -> Result<Exchange, Error> {
        self.exchange()
    }

    fn on_head(
        &mut self,
        ex: &Exchange,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Next<PingInfo>, Error> {
        let endpoint = self.candidates[self.index].clone();
        let api_version = parts
            .headers
            .get("docker-distribution-api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let challenges: Vec<OwnedChallenge> = {
            let fields = parts
                .headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok());
            parse_challenge_fields(fields)
                .map(|cs| cs.iter().map(|c| c.to_owned()).collect())
                .unwrap_or_default()
        };
        match parts.status {
            s if s.is_success() || s == StatusCode::UNAUTHORIZED => {
                // Only the registry's own origin speaks for it: a challenge
                // from where a redirect led is not remembered.
                let own = endpoint
                    .url("/v2/")
                    .is_ok_and(|base| crate::redirect::same_origin(&base, ex.uri()));
                if own && let Some(auth) = Session::pick_challenge(&challenges) {
                    cx.session.remember_challenge(&endpoint.registry, auth);
                }
                cx.session.choose_endpoint(endpoint.clone());
                Ok(Next::Done(PingInfo {
                    endpoint,
                    api_version,
                    challenges,
                }))
            }
            // The plain-http fallback found no registry (a TLS server
            // answers 400 to plain http): the https failure is the story.
            _ if self.first_error.is_some() => {
                Err(self.first_error.take().expect("checked just above"))
            }
            StatusCode::NOT_FOUND => Err(Error::NotV2 {
                url: endpoint.base_url(),
            }),
            _ => Ok(Next::Fail(parts)),
        }
    }

    fn on_unreachable(
        &mut self,
        error: Error,
        _cx: &mut Context<'_>,
    ) -> Result<Next<PingInfo>, Error> {
        if self.index + 1 < self.candidates.len() {
            self.first_error.get_or_insert(error);
            self.index += 1;
            return Ok(Next::Then(self.exchange()?));
        }
        Err(self.first_error.take().unwrap_or(error))
    }
}

operation!(
    /// `GET /v2/` on each endpoint of a registry in turn (https; then plain
    /// http for loopback and insecure hosts). Records the endpoint that
    /// answered and the registry's challenge in the session.
    Ping,
    PingSteps,
    PingInfo
);

impl Ping {
    /// A ping of the registry `domain` (`docker.io`, `localhost:5000`).
    pub fn new(session: &Session, domain: &str) -> Ping {
        Ping(Machine::new(PingSteps {
            candidates: session.endpoint_policy().endpoints(domain),
            index: 0,
            first_error: None,
        }))
    }
}

pub(crate) struct CheckAuthSteps {
    domain: String,
}

impl Steps for CheckAuthSteps {
    type Output = ();

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        Exchange::new(
            &endpoint,
            Method::GET,
            "/v2/",
            Subject::Registry,
            Vec::new(),
        )
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<()>, Error> {
        if parts.status.is_success() {
            Ok(Next::Done(()))
        } else {
            Ok(Next::Fail(parts))
        }
    }
}

operation!(
    /// `GET /v2/` with the session's credentials, answering the registry's
    /// challenge: succeeds when the registry accepts them (what `docker
    /// login` checks).
    CheckAuth,
    CheckAuthSteps,
    ()
);

impl CheckAuth {
    /// Checks the credentials for registry `domain`.
    pub fn new(domain: &str) -> CheckAuth {
        CheckAuth(Machine::new(CheckAuthSteps {
            domain: domain.to_owned(),
        }))
    }
}
