//! The registry operations, one state machine each.

mod blob;
mod extension;
mod list;
mod manifest;
mod ping;
mod referrers;
mod upload;

pub use blob::{
    BlobInfo, BlobResponse, DeleteBlob, GetBlob, GetForeignBlob, HeadBlob, foreign_url,
};
pub use extension::{
    ExtensionSignatures, SIGNATURE_LIST_LIMIT, SUPPORTS_SIGNATURES_HEADER, parse_signature_list,
};
pub use list::{Catalog, ListTags, MAX_CATALOG_PAGE, MAX_ENTRIES, PAGE_BODY_LIMIT};
pub use manifest::{
    Content, DeleteManifest, FetchedManifest, GetContent, GetManifest, MANIFEST_ACCEPT,
    ManifestAddress, ManifestRef, OCTET_STREAM, PutManifest, Resolve, Store,
};
pub use ping::{CheckAuth, Ping, PingInfo};
pub use referrers::{ListReferrers, Referrers};
pub use upload::{CancelUpload, PushBlob, PushOutcome, UploadPolicy};

use berth_auth::Scope;
use http::HeaderMap;

use crate::error::Error;

/// `repository:<name>:<actions>`.
pub(crate) fn repo_scope(name: &str, actions: &[&str]) -> Result<Scope, Error> {
    Scope::repository(name, actions.iter().copied())
        .map_err(|e| Error::invalid("repository name", e))
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header_str(
    headers: &HeaderMap,
    name: impl http::header::AsHeaderName,
) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Content-Length`, if present and a number (never trusted for
/// allocation: it only sizes progress and checks).
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, http::header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}
