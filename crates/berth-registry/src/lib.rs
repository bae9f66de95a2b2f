//! An OCI Distribution registry as a library, for tests and demos: start
//! one on `127.0.0.1:0`, push and pull with any client, stop it.
//!
//! - [`Registry::builder`] → [`RegistryBuilder::start`] →
//!   [`RunningRegistry`] (with [`addr`](RunningRegistry::addr),
//!   [`host`](RunningRegistry::host), [`stop`](RunningRegistry::stop);
//!   dropping it stops it too). HTTP/1.1 over hyper 1, on the current Tokio
//!   runtime.
//! - [`Storage::memory`] or [`Storage::disk`] (blobs at
//!   `dir/blobs/sha256/<hex>`, written to `dir/tmp/` and renamed once
//!   their digest is checked), or any [`Store`].
//! - The distribution spec as a client sees it: `/v2/`; manifests by tag
//!   and digest (GET, HEAD, PUT, DELETE; a PUT is parsed, its blobs and
//!   child manifests must be in the repository, 4 MiB at most); blobs
//!   (GET with `Range` — a range that breaks the grammar is ignored, one
//!   that cannot be satisfied is 416 —, HEAD, DELETE); uploads (monolithic, chunked with
//!   `Content-Range` that must start where the session ends — else 416 —,
//!   cross-repository mounts, status, cancel; the digest is checked and
//!   nothing is stored on a mismatch; at most
//!   [`max_uploads`](RegistryBuilder::max_uploads) sessions open, and
//!   abandoned ones dropped after
//!   [`upload_idle_timeout`](RegistryBuilder::upload_idle_timeout)); tags and catalog in lexical order
//!   with `n`, `last` and `Link`; the referrers API with `artifactType`
//!   filtering; the spec's error bodies and codes.
//! - Names are validated with `berth-reference`'s grammar before they
//!   reach storage: `../../etc` is `NAME_INVALID`.
//! - [`Auth::basic`]: one user and password.
//! - [`Faults`]: answer a status (5xx, 429 with `Retry-After`) for the
//!   first K matching requests, cut a body after N bytes, slow it down,
//!   flip a byte, ignore `Range`. Changeable while the registry runs.
//!
//! Deliberate choices where the spec leaves room: an upload session's
//! `Range` header is left out while it holds no bytes (`0-0` would claim
//! one); a tag that breaks the grammar is `TAG_INVALID`; a missing
//! repository is `NAME_UNKNOWN`, a missing manifest in an existing one
//! `MANIFEST_UNKNOWN`.
//!
//! ```
//! use berth_registry::{Registry, Storage};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let registry = Registry::builder()
//!         .storage(Storage::memory())
//!         .bind("127.0.0.1:0")
//!         .start()
//!         .await?;
//!     assert!(registry.host().starts_with("127.0.0.1:"));
//!
//!     // Any HTTP client will do; here, by hand.
//!     let mut conn = tokio::net::TcpStream::connect(registry.addr()).await?;
//!     conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
//!     let mut answer = String::new();
//!     conn.read_to_string(&mut answer).await?;
//!     assert!(answer.starts_with("HTTP/1.1 200 OK"));
//!     assert!(answer.to_ascii_lowercase().contains("docker-distribution-api-version: registry/2.0"));
//!
//!     registry.stop().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod api;
mod body;
mod error;
mod faults;
mod names;
mod server;
mod sessions;
pub mod storage;

pub use error::{ApiError, StartError, status_of};
pub use faults::{Fault, FaultRule, Faults};
pub use names::{RepoName, TagName, UploadId, parse_digest};
pub use server::{Auth, Registry, RegistryBuilder, RunningRegistry};
pub use sessions::{DEFAULT_MAX_UPLOADS, DEFAULT_UPLOAD_IDLE};
pub use storage::{DiskStore, MemoryStore, Storage, Store};

/// The realm of the Basic challenge: `WWW-Authenticate: Basic
/// realm="berth-registry"`.
pub const REALM: &str = api::REALM;
