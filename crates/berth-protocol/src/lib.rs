//! The OCI Distribution protocol (the Docker Registry HTTP API v2) as a
//! state machine, with no I/O.
//!
//! This crate holds no networking code, reads no clock, sleeps never and
//! touches no files or environment. It decides; a transport moves bytes.
//! Every operation (ping, resolve, fetch, push, list, ...) is a value that
//! hands out [`Action`]s — send this [`http::Request`], read this body,
//! wait this long — and takes the responses back, until it yields a typed
//! result or a typed [`Error`]. Time comes in with every call, in the
//! [`Context`]. See [`op`] for the order of calls.
//!
//! Auth lives in the machine: a 401 with a challenge yields the token
//! request, the token is cached in the [`Session`] per realm, service and
//! scope until it expires, and the original request is sent again once.
//!
//! ```
//! use std::time::SystemTime;
//! use berth_protocol::{Action, Context, Operation, Session, ops::Ping};
//!
//! let mut session = Session::anonymous();
//! let mut ping = Ping::new(&session, "registry.example");
//! let mut cx = Context::new(&mut session, SystemTime::UNIX_EPOCH);
//! let Action::Send(request) = ping.start(&mut cx)? else { unreachable!() };
//! assert_eq!(request.uri(), "https://registry.example/v2/");
//!
//! // The registry answers 200 with the API version header.
//! let response = http::Response::builder()
//!     .status(200)
//!     .header("Docker-Distribution-API-Version", "registry/2.0")
//!     .body(())?;
//! let (head, ()) = response.into_parts();
//! let Action::Done(info) = ping.on_response(head, &mut cx)? else { unreachable!() };
//! assert_eq!(info.api_version.as_deref(), Some("registry/2.0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub use berth_auth as auth;
pub use berth_manifest as manifest;
pub use berth_reference as reference;

pub mod cookies;
pub mod driver;
pub mod endpoint;
mod error;
mod exchange;
pub mod link;
pub mod mirror;
pub mod op;
pub mod ops;
pub mod redirect;
pub mod retry;
mod session;
pub mod token_source;

pub use cookies::CookieJar;
pub use error::{
    Diagnostic, ERROR_BODY_LIMIT, Error, ErrorCode, NotFound, RegistryError, Subject,
    parse_diagnostics, redact_url,
};
pub use exchange::TOKEN_BODY_LIMIT;
pub use op::{Action, BlobTransfer, Context, Operation, Request, RequestBody, TransportError};
pub use session::{Anonymous, CredentialProvider, Session, StaticCredentials};
pub use token_source::{
    AccessToken, CredentialError, StaticToken, TokenForm, TokenSource, TokenSourceCredentials,
};
