//! What container images are made of: media types, descriptors, platforms,
//! OCI manifests, indexes and configs, Docker schema 2 manifests and lists,
//! schema 1 (read only), and the digests that check them.
//!
//! No I/O: bytes come in, typed values and verdicts go out.
//!
//! - [`Manifest::from_bytes`] parses a manifest as a registry sent it: the
//!   kind from the `Content-Type` (or sniffed from the body when the header
//!   is missing or generic), validated, with the exact bytes kept beside the
//!   parsed value. [`Manifest::digest`] is always the digest of those bytes.
//! - [`ImageManifest`], [`ImageIndex`], [`ImageConfig`], [`DockerManifest`],
//!   [`DockerManifestList`], [`Schema1Manifest`]: the formats, with
//!   `to_raw()` for pushing (canonical bytes, digest and descriptor made
//!   together) and conversion between Docker and OCI.
//! - [`Platform`]: `linux/arm64/v8`, normalised and matched with
//!   containerd's rules; [`Platform::select`] picks an index's best entry
//!   and never an attestation.
//! - [`Digester`], [`Verifier`], [`VerifyingReader`], [`LimitedReader`]:
//!   sha256/sha512 over streams, verification against a digest and size,
//!   and size limits enforced while reading.
//!
//! ```
//! use berth_manifest::{Digester, ImageIndex, Manifest, MediaType, Platform, Verifier};
//!
//! // A registry answered with an index (its Content-Type stripped by a proxy).
//! let body = br#"{
//!   "schemaVersion": 2,
//!   "mediaType": "application/vnd.oci.image.index.v1+json",
//!   "manifests": [
//!     {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024,
//!      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
//!      "platform": {"architecture": "amd64", "os": "linux"}},
//!     {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1100,
//!      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
//!      "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
//!     {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 566,
//!      "digest": "sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b",
//!      "platform": {"architecture": "unknown", "os": "unknown"},
//!      "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
//!   ]
//! }"#;
//! let index = Manifest::from_bytes(body, Some("application/octet-stream"))?;
//! assert_eq!(index.media_type(), &MediaType::OCI_INDEX);
//! assert_eq!(index.digest(), Digester::sha256_of(body));
//! index.verify(&index.digest()).expect("the digest is of the exact bytes");
//!
//! // An arm/v7 machine runs the arm/v6 image; nothing runs the attestation.
//! let pick = index.select(&"linux/arm/v7".parse()?).expect("compatible entry");
//! assert_eq!(pick.size, 1100);
//! assert!(index.select(&"linux/s390x".parse()?).is_none());
//!
//! // Content that does not match its descriptor is refused.
//! let err = Verifier::verify(&pick.digest, 3, b"abc").unwrap_err();
//! assert!(err.to_string().starts_with("digest mismatch: expected sha256:5b0bcabd"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod config;
mod convert;
mod de;
mod descriptor;
mod docker;
mod error;
mod manifest;
mod media_type;
mod oci;
mod platform;
mod verify;

pub use berth_reference::{Algorithm, Digest};
pub use config::{History, ImageConfig, RootFs, RuntimeConfig};
pub use convert::ConvertError;
pub use descriptor::Descriptor;
pub use docker::{
    DockerManifest, DockerManifestList, FsLayer, JwsHeader, Schema1Manifest, Schema1Signature,
    V1History,
};
pub use error::ManifestError;
pub use manifest::{Manifest, ParsedManifest};
pub use media_type::MediaType;
pub use oci::{ArtifactManifest, ImageIndex, ImageManifest, OciLayout, RawManifest};
pub use platform::{Platform, PlatformParseError};
pub use verify::{
    CONFIG_SIZE_LIMIT, Digester, LimitedReader, Limits, MANIFEST_SIZE_LIMIT, Verifier, VerifyError,
    VerifyingReader, read_limited,
};
