//! Container image references, parsed exactly as Go's
//! `distribution/reference` parses them, and fast.
//!
//! A reference names an image: `[domain[:port]/]path[:tag][@digest]`.
//! This crate parses, validates, normalises and formats references and
//! digests. It has no I/O and nothing async; its one dependency is `nom`.
//!
//! - [`Reference::parse`] applies the grammar alone, like Go's `Parse`.
//! - [`Reference::parse_normalized`] (also [`str::parse`]) applies Docker's
//!   rules, like Go's `ParseNormalizedNamed`: `ubuntu` is
//!   `docker.io/library/ubuntu`.
//! - [`ReferenceRef`] is the borrowed twin: parsing one never allocates.
//! - [`Digest`] is a validated `algorithm:encoded` digest; sha256 and sha512
//!   are registered, as the OCI image-spec registers them.
//! - [`grammar`] exposes each rule, for other layers that validate parts.
//!
//! Errors say which rule was broken and at which byte:
//!
//! ```
//! use berth_reference::{Reference, ErrorKind};
//!
//! let r: Reference = "ubuntu:24.04".parse()?;
//! assert_eq!(r.domain(), "docker.io");
//! assert_eq!(r.path(), "library/ubuntu");
//! assert_eq!(r.tag(), Some("24.04"));
//! assert_eq!(r.to_string(), "docker.io/library/ubuntu:24.04");
//! assert_eq!(r.familiar(), "ubuntu:24.04");
//!
//! let err = Reference::parse_normalized("ubuntu:-bad").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidFormat);
//! assert_eq!(err.offset(), 7);
//! assert_eq!(err.to_string(), "invalid reference format: a tag must start with a letter, a digit or '_' at byte 7");
//! # Ok::<(), berth_reference::ParseError>(())
//! ```
//!
//! Deliberate differences from Go: sha512 digests are accepted (the OCI
//! image-spec registers sha512; Go's tests register only sha256), and
//! [`Digest`] values are always valid, so Go's `WithDigest` cases with a
//! too-short sha256 cannot be expressed.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod digest;
mod error;
pub mod grammar;
mod matching;
mod reference;

pub use digest::{Algorithm, Digest, DigestRef};
pub use error::{ErrorKind, ParseError};
pub use reference::{
    AnyReference, DEFAULT_TAG, DOCKER_HUB_DOMAIN, DOCKER_HUB_LEGACY_DOMAIN, OFFICIAL_REPO_PREFIX,
    PATH_MAX_LEN, Reference, ReferenceRef,
};
