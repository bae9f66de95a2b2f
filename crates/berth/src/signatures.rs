//! Image signatures, found where containers/image (skopeo, podman) looks
//! for them:
//!
//! - **Sigstore (cosign) attachments** in the registry:
//!   [`Client::sigstore_signatures`] reads the tag `sha256-<hex>.sig`, and
//!   [`Client::sigstore_bundles`] lists referrers of type
//!   [`SIGSTORE_BUNDLE_ARTIFACT_TYPE`].
//! - **Lookaside stores** (simple signing, "separate storage" as
//!   `registries.d` configures it): [`Client::lookaside_signatures`].
//! - **The registry signature extension** of the OpenShift (Atomic)
//!   registry: [`Client::extension_signatures`].
//!
//! This is discovery only. **Nothing here verifies a signature**: payloads
//! fetched from the registry are checked against their digests (that is
//! content addressing, not trust), and everything else is returned as the
//! store sent it. Deciding whether a signature is valid, and whether it
//! satisfies a policy, is the caller's job (as containers/image leaves it to
//! its `signature` package and `policy.json`).
//!
//! Bounds: each signature (payload) is at most [`MAX_SIGNATURE_SIZE`]
//! bytes, as containers/image's `MaxSignatureBodySize`; a lookaside store
//! is read for at most [`MAX_LOOKASIDE_SIGNATURES`] signatures and a
//! `.sig` manifest may have at most [`MAX_SIGSTORE_LAYERS`] layers. Going
//! over a bound is an error, never a silent truncation.
//!
//! ```no_run
//! # async fn f(client: berth::Client<impl berth::protocol::driver::Transport>) -> Result<(), berth::Error> {
//! let image: berth::reference::Reference = "registry.example/team/app:v1".parse().expect("reference");
//! for s in client.sigstore_signatures(&image).await? {
//!     println!("{} bytes signed by {:?}", s.payload.len(), s.signature);
//! }
//! let stored = client
//!     .lookaside_signatures("https://sigstore.example/signatures", &image)
//!     .await?;
//! println!("{} simple-signing signatures in the lookaside store", stored.len());
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_manifest::{Descriptor, MediaType};
use berth_protocol::driver::Transport;
use berth_protocol::ops::{ExtensionSignatures, ManifestAddress, ManifestRef};
use berth_protocol::retry::{Failure, Jitter, Retry, RetryPolicy};
use berth_protocol::{
    Action, Context, ERROR_BODY_LIMIT, Operation, RegistryError, Request, RequestBody, Subject,
    TransportError, redact_url,
};
use berth_reference::{Digest, Reference};
use bytes::Bytes;
use futures_core::Stream;
use http::response::Parts;
use http::{Method, StatusCode, Uri, header};

use crate::client::{Client, next_chunk};
use crate::error::Error;

/// The media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: MediaType =
    MediaType::from_static("application/vnd.dev.cosign.simplesigning.v1+json");

/// The artifact type of a Sigstore bundle attached with the referrers API
/// (cosign's newer scheme).
pub const SIGSTORE_BUNDLE_ARTIFACT_TYPE: MediaType =
    MediaType::from_static("application/vnd.dev.sigstore.bundle.v0.3+json");

/// The layer annotation holding the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation holding the signing certificate (PEM), if any.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding the certificate chain (PEM), if any.
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The layer annotation holding the Rekor bundle (JSON), if any.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// The largest signature or payload read, in bytes (4 MiB, as
/// containers/image's `iolimits.MaxSignatureBodySize`).
pub const MAX_SIGNATURE_SIZE: u64 = 4 * 1024 * 1024;

/// The most signatures read from a lookaside store; a store with more is an
/// error (containers/image's `maxLookasideSignatures`).
pub const MAX_LOOKASIDE_SIGNATURES: usize = 128;

/// The most layers (signatures) a `.sig` manifest may have.
pub const MAX_SIGSTORE_LAYERS: usize = 128;

/// The tag cosign attaches signatures of `digest` under:
/// `<algorithm>-<hex>.sig` (`sha256-ab12….sig`).
///
/// ```
/// let d: berth::reference::Digest =
///     "sha256:0000000000000000000000000000000000000000000000000000000000000001".parse().unwrap();
/// assert_eq!(
///     berth::signatures::sigstore_tag(&d),
///     "sha256-0000000000000000000000000000000000000000000000000000000000000001.sig"
/// );
/// ```
pub fn sigstore_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.encoded())
}

/// Where signature number `index` (from 1) of manifest `digest` in
/// repository `repository` lives in a lookaside store, relative to the
/// store's base URL: `<repository>@<algorithm>=<hex>/signature-<index>`.
///
/// `repository` is the repository path **without the registry host**
/// (`library/busybox` for `docker.io/library/busybox`), exactly as
/// containers/image builds it (`reference.Path` in
/// `docker/registries_d.go`; `docs/signature-protocols.md`, "Path
/// structure").
///
/// ```
/// let d: berth::reference::Digest =
///     "sha256:0000000000000000000000000000000000000000000000000000000000000001".parse().unwrap();
/// assert_eq!(
///     berth::signatures::lookaside_path("library/busybox", &d, 2),
///     "library/busybox@sha256=0000000000000000000000000000000000000000000000000000000000000001/signature-2"
/// );
/// ```
pub fn lookaside_path(repository: &str, digest: &Digest, index: usize) -> String {
    format!(
        "{repository}@{}={}/signature-{index}",
        digest.algorithm(),
        digest.encoded()
    )
}

/// One layer of a cosign `.sig` manifest: the signed payload and the
/// annotations that carry the signature. Not verified (see the module
/// docs); only the payload's digest and size are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigstoreSignature {
    /// The layer's descriptor: media type (normally
    /// [`SIMPLE_SIGNING_MEDIA_TYPE`]), digest, size and every annotation.
    pub layer: Descriptor,
    /// The payload, byte for byte, verified against the layer's digest and
    /// size.
    pub payload: Bytes,
    /// The base64 signature ([`SIGNATURE_ANNOTATION`]). `None` when the
    /// layer has none: such layers are returned anyway, as containers/image
    /// does, and a verifier rejects them.
    pub signature: Option<String>,
    /// The signing certificate ([`CERTIFICATE_ANNOTATION`]), if any.
    pub certificate: Option<String>,
    /// The certificate chain ([`CHAIN_ANNOTATION`]), if any.
    pub chain: Option<String>,
    /// The Rekor bundle ([`BUNDLE_ANNOTATION`]), if any.
    pub bundle: Option<String>,
}

impl SigstoreSignature {
    /// Whether the layer is a cosign simple-signing payload.
    pub fn is_simple_signing(&self) -> bool {
        self.layer.media_type.essence() == SIMPLE_SIGNING_MEDIA_TYPE.essence()
    }
}

fn invalid(what: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Protocol(berth_protocol::Error::InvalidResponse {
        what,
        detail: detail.to_string(),
    })
}

fn too_large(what: &'static str, limit: u64) -> Error {
    Error::Protocol(berth_protocol::Error::TooLarge { what, limit })
}

impl<T: Transport> Client<T> {
    /// The digest of the manifest `reference` names: its own digest, or
    /// the tag resolved.
    async fn manifest_digest(&self, reference: &Reference) -> Result<Digest, Error> {
        match reference.digest() {
            Some(d) => Ok(d.clone()),
            None => Ok(self.resolve(reference).await?.digest),
        }
    }

    /// The cosign signatures attached to the image `reference` names, as
    /// containers/image reads them: the reference is resolved to its
    /// manifest digest, the manifest at tag [`sigstore_tag`] in the same
    /// repository is fetched (none: an empty list, not an error), and each
    /// of its layers' payload is fetched, verified against its digest and
    /// size, and returned with the signature annotations, in layer order.
    ///
    /// The `.sig` manifest must be an image manifest (OCI, or Docker
    /// schema 2; containers/image takes only OCI); each payload may be at
    /// most [`MAX_SIGNATURE_SIZE`] bytes, and there may be at most
    /// [`MAX_SIGSTORE_LAYERS`] of them. A payload that fails any of that is
    /// an error for the whole call, as in containers/image.
    ///
    /// Discovery only: no signature is verified.
    pub async fn sigstore_signatures(
        &self,
        reference: &Reference,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        let digest = self.manifest_digest(reference).await?;
        let (domain, name) = (reference.domain(), reference.path());
        let address = ManifestAddress {
            domain: domain.to_owned(),
            name: name.to_owned(),
            reference: ManifestRef::Tag(sigstore_tag(&digest)),
        };
        let fetched = match self.manifest_at(address).await {
            Ok(m) => m,
            Err(Error::Protocol(e)) if e.not_found().is_some() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let media_type = fetched.manifest.media_type().essence();
        if media_type != MediaType::OCI_MANIFEST.essence()
            && media_type != MediaType::DOCKER_MANIFEST.essence()
        {
            return Err(invalid(
                "sigstore signature manifest",
                format!(
                    "{} is a {media_type}, not an image manifest",
                    sigstore_tag(&digest)
                ),
            ));
        }
        let layers = fetched.manifest.layers();
        if layers.len() > MAX_SIGSTORE_LAYERS {
            return Err(invalid(
                "sigstore signature manifest",
                format!(
                    "{} has {} layers, more than the {MAX_SIGSTORE_LAYERS} read",
                    sigstore_tag(&digest),
                    layers.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(layers.len());
        for layer in layers {
            if layer.size > MAX_SIGNATURE_SIZE {
                return Err(too_large("signature payload", MAX_SIGNATURE_SIZE));
            }
            let capacity = usize::try_from(layer.size).unwrap_or(0);
            let mut payload = Vec::with_capacity(capacity);
            self.fetch_blob(domain, name, layer, |chunk| {
                payload.extend_from_slice(chunk);
                Ok(())
            })
            .await?;
            let annotation = |key: &str| layer.annotations.get(key).cloned();
            out.push(SigstoreSignature {
                signature: annotation(SIGNATURE_ANNOTATION),
                certificate: annotation(CERTIFICATE_ANNOTATION),
                chain: annotation(CHAIN_ANNOTATION),
                bundle: annotation(BUNDLE_ANNOTATION),
                layer: layer.clone(),
                payload: Bytes::from(payload),
            });
        }
        Ok(out)
    }

    /// The Sigstore bundles attached to the image `reference` names with
    /// the referrers API (cosign's newer scheme): the descriptors of the
    /// referrers of artifact type [`SIGSTORE_BUNDLE_ARTIFACT_TYPE`] (through
    /// the referrers tag schema where the registry lacks the API). Fetch
    /// one with [`Client::manifest`] at its digest.
    ///
    /// Discovery only: no bundle is fetched or verified.
    pub async fn sigstore_bundles(&self, reference: &Reference) -> Result<Vec<Descriptor>, Error> {
        let found = self
            .referrers(reference, Some(SIGSTORE_BUNDLE_ARTIFACT_TYPE))
            .await?;
        Ok(found.descriptors)
    }

    /// The simple-signing signatures of the image `reference` names in the
    /// lookaside store at `base`, as containers/image reads a `lookaside`
    /// (formerly `sigstore`) URL from `registries.d`.
    ///
    /// The layout (containers/image's `docs/signature-protocols.md`):
    /// signature `n` of manifest `sha256:<hex>` of repository
    /// `<host>/<path>` is at `<base>/<path>@sha256=<hex>/signature-<n>` (see
    /// [`lookaside_path`]; the registry host is **not** in the path), read
    /// for `n = 1, 2, …` until the first one that does not exist. A tag is
    /// resolved to its manifest digest first.
    ///
    /// `base` is:
    /// - `file:///dir` (or `file://localhost/dir`): the files are read from
    ///   the local file system; a missing file ends the list.
    /// - `https://host/path`, or `http://` for a loopback host or one named
    ///   insecure on the client: fetched with the client's transport but
    ///   **without any credentials** (the store is not the registry), with
    ///   redirects (never https to http) and retries for connection
    ///   failures, 429 and 5xx as the default [`RetryPolicy`] says (not a
    ///   policy set on the builder); a 404 ends the list, any other status
    ///   but 200 is an error. The registry of `reference` is pinged first,
    ///   as before any request the client sends.
    ///
    /// A trailing `/` on `base` is ignored. Each signature may be at most
    /// [`MAX_SIGNATURE_SIZE`] bytes, and a store holding more than
    /// [`MAX_LOOKASIDE_SIGNATURES`] for one image is an error. The bytes
    /// are returned as the store holds them: discovery only, no signature
    /// is parsed or verified.
    pub async fn lookaside_signatures(
        &self,
        base: &str,
        reference: &Reference,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let store = LookasideStore::parse(base)?;
        let digest = self.manifest_digest(reference).await?;
        let mut out = Vec::new();
        for index in 1..=MAX_LOOKASIDE_SIGNATURES + 1 {
            let relative = lookaside_path(reference.path(), &digest, index);
            let found = match &store {
                LookasideStore::Dir(dir) => read_signature_file(&dir.join(&relative))?,
                LookasideStore::Http { prefix, query } => {
                    let url = match query {
                        Some(q) => format!("{prefix}/{relative}?{q}"),
                        None => format!("{prefix}/{relative}"),
                    };
                    self.get_lookaside(reference.domain(), &url).await?
                }
            };
            match found {
                None => return Ok(out),
                Some(_) if index > MAX_LOOKASIDE_SIGNATURES => {
                    return Err(invalid(
                        "lookaside signature store",
                        format!(
                            "more than {MAX_LOOKASIDE_SIGNATURES} signatures for {}@{digest}",
                            reference.name()
                        ),
                    ));
                }
                Some(sig) => out.push(sig),
            }
        }
        Ok(out)
    }

    /// One signature over http(s): `None` on 404.
    async fn get_lookaside(&self, domain: &str, url: &str) -> Result<Option<Vec<u8>>, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::Usage(format!("invalid lookaside signature URL {url:?}: {e}")))?;
        let (outcome, body) = self.run(domain, LookasideGet::new(uri), None).await?;
        match outcome {
            Fetched::Missing => Ok(None),
            Fetched::Refused(detail) => Err(Error::Usage(detail)),
            Fetched::Found { uri, parts } => {
                if content_length(&parts).is_some_and(|n| n > MAX_SIGNATURE_SIZE) {
                    return Err(too_large("lookaside signature", MAX_SIGNATURE_SIZE));
                }
                let mut body = body.ok_or_else(|| invalid("lookaside signature", "no body"))?;
                match read_at_most(&mut body, MAX_SIGNATURE_SIZE).await {
                    Ok(Some(bytes)) => Ok(Some(bytes)),
                    Ok(None) => Err(too_large("lookaside signature", MAX_SIGNATURE_SIZE)),
                    Err(e) => Err(Error::Protocol(berth_protocol::Error::Transport {
                        url: redact_url(&uri),
                        source: e.source,
                    })),
                }
            }
            Fetched::Failed { uri, parts } => {
                let text = match body {
                    Some(mut b) => read_at_most(&mut b, ERROR_BODY_LIMIT as u64)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                Err(Error::Protocol(berth_protocol::Error::Registry(Box::new(
                    RegistryError::new(
                        Method::GET,
                        &uri,
                        parts.status,
                        Bytes::from(text),
                        Subject::Blob,
                        true,
                    ),
                ))))
            }
        }
    }

    /// The simple-signing signatures of the image `reference` names, read
    /// through the registry's signature extension (the OpenShift / Atomic
    /// registry; see [`berth_protocol::ops::ExtensionSignatures`]): `None`
    /// when the registry's `GET /v2/` does not answer
    /// `X-Registry-Supports-Signatures: 1`, else the decoded `content` of
    /// each version-2 `atomic` entry of
    /// `GET /extensions/v2/<path>/signatures/<digest>` (with the registry's
    /// credentials, pull scope), in order. A tag is resolved to its
    /// manifest digest first. The list may be at most 4 MiB.
    ///
    /// Discovery only: no signature is parsed or verified.
    pub async fn extension_signatures(
        &self,
        reference: &Reference,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        let digest = self.manifest_digest(reference).await?;
        let op = ExtensionSignatures::new(reference.domain(), reference.path(), &digest);
        let (signatures, _) = self.run(reference.domain(), op, None).await?;
        Ok(signatures)
    }
}

/// A lookaside store's base URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LookasideStore {
    /// `file://`: a local directory.
    Dir(PathBuf),
    /// `http(s)://`: the URL up to its path (no trailing `/`), and the
    /// query, if any, to put after each signature's path.
    Http {
        prefix: String,
        query: Option<String>,
    },
}

impl LookasideStore {
    fn parse(base: &str) -> Result<LookasideStore, Error> {
        let usage = |why: &str| Error::Usage(format!("lookaside signature store {base:?}: {why}"));
        let scheme_end = base
            .find("://")
            .ok_or_else(|| usage("not a URL (file://, https:// or http://)"))?;
        let scheme = base[..scheme_end].to_ascii_lowercase();
        let rest = &base[scheme_end + 3..];
        match scheme.as_str() {
            "file" => {
                let path = if rest.starts_with('/') {
                    rest
                } else if rest
                    .get(..10)
                    .is_some_and(|p| p.eq_ignore_ascii_case("localhost/"))
                {
                    &rest[9..]
                } else {
                    return Err(usage("a file URL must name a local path (file:///dir)"));
                };
                if path.contains(['?', '#']) {
                    return Err(usage("a file URL has no query or fragment"));
                }
                let decoded = percent_decode(path).ok_or_else(|| usage("bad percent-encoding"))?;
                let trimmed = decoded.trim_end_matches('/');
                Ok(LookasideStore::Dir(PathBuf::from(if trimmed.is_empty() {
                    "/"
                } else {
                    trimmed
                })))
            }
            "http" | "https" => {
                let uri: Uri = base.parse().map_err(|e| usage(&format!("{e}")))?;
                let authority = uri
                    .authority()
                    .ok_or_else(|| usage("the URL has no host"))?;
                if authority.as_str().contains('@') {
                    return Err(usage(
                        "credentials in the URL are not supported: lookaside stores are read anonymously",
                    ));
                }
                let path = uri.path().trim_end_matches('/');
                Ok(LookasideStore::Http {
                    prefix: format!("{scheme}://{authority}{path}"),
                    query: uri.query().map(str::to_owned),
                })
            }
            other => Err(usage(&format!(
                "the scheme {other:?} is not supported (file, https, or http for loopback)"
            ))),
        }
    }
}

/// `%XX` decoding of a file URL's path; `None` on a bad escape or a path
/// that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One signature file: `None` when it does not exist; at most
/// [`MAX_SIGNATURE_SIZE`] bytes read.
fn read_signature_file(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_SIGNATURE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > MAX_SIGNATURE_SIZE {
        return Err(too_large("lookaside signature", MAX_SIGNATURE_SIZE));
    }
    Ok(Some(buf))
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads a body to its end; `Ok(None)` as soon as it passes `limit` bytes
/// (the rest is never read).
async fn read_at_most<B>(body: &mut B, limit: u64) -> Result<Option<Vec<u8>>, TransportError>
where
    B: Stream<Item = Result<Bytes, TransportError>> + Unpin,
{
    let mut buf = Vec::new();
    while let Some(chunk) = next_chunk(body).await {
        let chunk = chunk?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

/// What a lookaside GET found.
#[derive(Debug)]
enum Fetched {
    /// 200: the body is the signature (left unread for the caller).
    Found { uri: Uri, parts: Parts },
    /// 404: no such signature.
    Missing,
    /// Another status, after retries.
    Failed { uri: Uri, parts: Parts },
    /// The URL may not be fetched (plain http to a host that is not
    /// loopback and not named insecure).
    Refused(String),
}

/// A plain `GET` of a lookaside signature: built here, never through the
/// registry session's exchange, so no `Authorization` header is ever
/// added; redirects followed (not from https to http), retries on
/// connection failures, 429 and 5xx as the default [`RetryPolicy`] says.
#[derive(Debug)]
struct LookasideGet {
    uri: Uri,
    retries: u32,
    redirects: usize,
    policy: RetryPolicy,
    jitter: Jitter,
}

impl LookasideGet {
    fn new(uri: Uri) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
        LookasideGet {
            uri,
            retries: 0,
            redirects: 0,
            policy: RetryPolicy::default(),
            jitter: Jitter::new(seed),
        }
    }

    fn send(&self, cx: &Context<'_>) -> Result<Action<Fetched>, berth_protocol::Error> {
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or("");
        match self.uri.scheme_str() {
            Some("https") => {}
            Some("http") if cx.session.endpoint_policy().allows_plain_http(authority) => {}
            _ => {
                return Ok(Action::Done(Fetched::Refused(format!(
                    "lookaside signature store {}: plain http only to a loopback host or one named insecure",
                    redact_url(&self.uri)
                ))));
            }
        }
        let request: Request = http::Request::builder()
            .method(Method::GET)
            .uri(self.uri.clone())
            .header(
                header::USER_AGENT,
                concat!("berth/", env!("CARGO_PKG_VERSION")),
            )
            .body(RequestBody::Empty)
            .map_err(|_| berth_protocol::Error::Misuse("the lookaside request is invalid"))?;
        Ok(Action::Send(request))
    }
}

impl Operation for LookasideGet {
    type Output = Fetched;

    fn start(&mut self, cx: &mut Context<'_>) -> Result<Action<Fetched>, berth_protocol::Error> {
        self.send(cx)
    }

    fn on_response(
        &mut self,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Action<Fetched>, berth_protocol::Error> {
        let status = parts.status;
        if status == StatusCode::OK {
            return Ok(Action::Done(Fetched::Found {
                uri: self.uri.clone(),
                parts,
            }));
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(Action::Done(Fetched::Missing));
        }
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location = parts
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let to = berth_protocol::redirect::follow(&self.uri, location, self.redirects)
                .map_err(berth_protocol::Error::Redirect)?;
            self.redirects += 1;
            self.uri = to.to;
            return self.send(cx);
        }
        match self.policy.decide(
            self.retries,
            Failure::Status(status, &parts.headers),
            true,
            cx.now,
            &mut self.jitter,
        ) {
            Retry::After(wait) => {
                self.retries += 1;
                Ok(Action::Wait(wait))
            }
            Retry::No => Ok(Action::Done(Fetched::Failed {
                uri: self.uri.clone(),
                parts,
            })),
        }
    }

    fn on_body(
        &mut self,
        _body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Action<Fetched>, berth_protocol::Error> {
        Err(berth_protocol::Error::Misuse(
            "a body arrived when none was asked for",
        ))
    }

    fn on_timeout(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Result<Action<Fetched>, berth_protocol::Error> {
        self.send(cx)
    }

    fn on_transport_error(
        &mut self,
        error: TransportError,
        cx: &mut Context<'_>,
    ) -> Result<Action<Fetched>, berth_protocol::Error> {
        match self.policy.decide(
            self.retries,
            Failure::Connection,
            true,
            cx.now,
            &mut self.jitter,
        ) {
            Retry::After(wait) => {
                self.retries += 1;
                Ok(Action::Wait(wait))
            }
            Retry::No => Err(berth_protocol::Error::Transport {
                url: redact_url(&self.uri),
                source: error.source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse() {
        assert_eq!(
            LookasideStore::parse("file:///var/lib/containers/sigstore/").expect("file"),
            LookasideStore::Dir(PathBuf::from("/var/lib/containers/sigstore"))
        );
        assert_eq!(
            LookasideStore::parse("file://localhost/a%20b").expect("file"),
            LookasideStore::Dir(PathBuf::from("/a b"))
        );
        assert_eq!(
            LookasideStore::parse("https://example.com/sigstore/").expect("https"),
            LookasideStore::Http {
                prefix: "https://example.com/sigstore".into(),
                query: None
            }
        );
        assert_eq!(
            LookasideStore::parse("HTTP://127.0.0.1:8080?x=1").expect("http"),
            LookasideStore::Http {
                prefix: "http://127.0.0.1:8080".into(),
                query: Some("x=1".into())
            }
        );
        for bad in [
            "",
            "/just/a/path",
            "file://otherhost/dir",
            "file:///a%zz",
            "file:///a?b",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
            "https:///x",
        ] {
            assert!(
                matches!(LookasideStore::parse(bad), Err(Error::Usage(_))),
                "{bad:?}"
            );
        }
    }
}
