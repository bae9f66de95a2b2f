//! Registry authentication for berth, without I/O.
//!
//! Every registry conversation starts with a `401` and a `WWW-Authenticate`
//! challenge. This crate parses challenges exactly as RFC 9110 §11 writes them
//! ([`parse_challenges`]: several challenges per header, quoted strings with
//! escapes, token68, case-insensitive schemes and names, unknown schemes
//! kept), gives typed views of the two schemes registries use ([`Bearer`],
//! [`Basic`]), builds token [`Scope`]s, reads token server answers
//! ([`TokenResponse`]) and models the credentials files people already have
//! ([`DockerConfig`]: Docker's `config.json` and containers' `auth.json`).
//!
//! It does no I/O: it reads no file, no environment variable and no clock.
//! Bytes come in, values go out, and time is a parameter
//! ([`TokenResponse::expires_at`] takes `now`). Running credential helpers,
//! sending token requests and reading files are the client's job.
//!
//! Secrets ([`Secret`]: passwords, tokens, the base64 `auth`) never show in
//! `Debug` output.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use berth_auth::{Bearer, Scope, TokenResponse, parse_challenges, scopes_new_first, join_scopes};
//!
//! // The 401 from Docker Hub.
//! let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#;
//! let challenges = parse_challenges(header)?;
//! let bearer = Bearer::from_challenge(&challenges[0])?;
//! assert_eq!(bearer.realm, "https://auth.docker.io/token");
//!
//! // The scopes for the token request: the newly needed one first.
//! let held: Vec<Scope> = bearer.scopes().collect::<Result<_, _>>()?;
//! let push = Scope::repository("me/app", ["pull", "push"])?;
//! let scopes = scopes_new_first(&push, &held);
//! assert_eq!(join_scopes(&scopes), "repository:me/app:pull,push repository:library/ubuntu:pull");
//!
//! // The token server's answer; opaque tokens are fine.
//! let token = TokenResponse::from_json(br#"{"access_token":"opaque","expires_in":300}"#)?;
//! let received = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! assert_eq!(token.expires_at(received), received + Duration::from_secs(300));
//! assert_eq!(format!("{:?}", token.token()), "<redacted>");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod challenge;
mod config;
mod scope;
mod secret;
mod time;
mod token;
mod view;

pub use challenge::{
    Challenge, Expected, InvalidChallenge, OwnedChallenge, Params, ParseError, format_challenges,
    parse_challenge_fields, parse_challenges, parse_challenges_into,
};
pub use config::{
    ConfigError, CredentialSource, Credentials, DOCKER_HUB_AUTH_KEY, DockerConfig, docker_auth_key,
    normalize_auth_key,
};
pub use scope::{Scope, ScopeError, join_scopes, merge_scopes, parse_scopes, scopes_new_first};
pub use secret::Secret;
pub use time::{TimestampError, parse_rfc3339};
pub use token::{DEFAULT_TOKEN_LIFETIME, TokenError, TokenResponse};
pub use view::{Basic, Bearer, ChallengeError};
