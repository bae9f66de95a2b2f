//! berth: a container-registry client that pulls, pushes and copies images
//! and OCI artifacts, verifying everything by digest.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
mod client;
pub mod cookies;
pub mod credentials;
mod error;
mod image;
pub mod layout;
pub mod mirrors;
mod process;
pub mod progress;
pub mod signatures;
mod slots;
pub mod token_command;

pub use berth_manifest as manifest;
pub use berth_protocol as protocol;
pub use berth_reference as reference;
pub use cache::BlobInfoCache;
pub use client::{
    BlobPush, Client, ClientBuilder, DEFAULT_CONCURRENCY, FileBlob, MAX_RESUMES, TokioClock,
};
pub use cookies::HostCookieJar;
pub use credentials::{CredentialFiles, DockerCredentials, run_credential_helper};
pub use error::{Error, ErrorKind};
pub use image::{MAX_INDEX_DEPTH, PullOptions, Report};
pub use layout::Layout;
pub use progress::{Event, Progress};
pub use token_command::CommandTokenSource;
