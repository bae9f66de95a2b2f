//! A manifest as received: its exact bytes beside the parsed value, the kind
//! chosen from the Content-Type or sniffed from the body.

use std::io::Read;
use std::sync::OnceLock;

use berth_reference::Digest;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::de::{self, Present};
use crate::descriptor::Descriptor;
use crate::docker::{DockerManifest, DockerManifestList, Schema1Manifest};
use crate::error::ManifestError;
use crate::media_type::{MediaType, essence};
use crate::oci::{ArtifactManifest, ImageIndex, ImageManifest};
use crate::platform::Platform;
use crate::verify::{Digester, LimitedReader, Limits, Verifier, VerifyError};

/// The parsed value of a [`Manifest`], by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// One per manifest held, never in bulk: boxing would cost an allocation per
// parse for no gain.
#[allow(clippy::large_enum_variant)]
pub enum ParsedManifest {
    /// An OCI image manifest (or artifact in image-manifest form).
    Image(ImageManifest),
    /// An OCI image index.
    Index(ImageIndex),
    /// The deprecated OCI artifact manifest.
    Artifact(ArtifactManifest),
    /// A Docker schema 2 manifest.
    Docker(DockerManifest),
    /// A Docker manifest list.
    DockerList(DockerManifestList),
    /// A Docker schema 1 manifest, signed or not.
    Schema1(Schema1Manifest),
}

/// A manifest or index exactly as received: the bytes, the media type it was
/// read as, and the parsed value. Its digest is always of the bytes, never
/// of a re-serialisation.
///
/// ```
/// use berth_manifest::{Manifest, MediaType, Platform};
/// let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
///   "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,
///     "digest":"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
///     "platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
/// // No Content-Type: the body says what it is.
/// let m = Manifest::from_bytes(body, None)?;
/// assert_eq!(m.media_type(), &MediaType::DOCKER_MANIFEST_LIST);
/// assert_eq!(m.raw(), &body[..]);
/// let arm64 = m.select(&"linux/arm64".parse().unwrap()).unwrap();
/// assert_eq!(arm64.size, 528);
/// // A Content-Type that contradicts the body is refused.
/// assert!(Manifest::from_bytes(body, Some("application/vnd.oci.image.index.v1+json")).is_err());
/// # Ok::<(), berth_manifest::ManifestError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Manifest {
    raw: Vec<u8>,
    media_type: MediaType,
    parsed: ParsedManifest,
    digest: OnceLock<Digest>,
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.media_type == other.media_type
    }
}

impl Eq for Manifest {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Image,
    Index,
    Artifact,
    Docker,
    DockerList,
    Schema1,
    Schema1Signed,
}

impl Kind {
    fn of(media_type: &str) -> Option<Kind> {
        Some(match media_type {
            t if t == MediaType::OCI_MANIFEST.as_str() => Kind::Image,
            t if t == MediaType::OCI_INDEX.as_str() => Kind::Index,
            t if t == MediaType::OCI_ARTIFACT_MANIFEST.as_str() => Kind::Artifact,
            t if t == MediaType::DOCKER_MANIFEST.as_str() => Kind::Docker,
            t if t == MediaType::DOCKER_MANIFEST_LIST.as_str() => Kind::DockerList,
            t if t == MediaType::DOCKER_SCHEMA1.as_str() => Kind::Schema1,
            t if t == MediaType::DOCKER_SCHEMA1_SIGNED.as_str() => Kind::Schema1Signed,
            _ => return None,
        })
    }

    fn media_type(self) -> MediaType {
        match self {
            Kind::Image => MediaType::OCI_MANIFEST,
            Kind::Index => MediaType::OCI_INDEX,
            Kind::Artifact => MediaType::OCI_ARTIFACT_MANIFEST,
            Kind::Docker => MediaType::DOCKER_MANIFEST,
            Kind::DockerList => MediaType::DOCKER_MANIFEST_LIST,
            Kind::Schema1 => MediaType::DOCKER_SCHEMA1,
            Kind::Schema1Signed => MediaType::DOCKER_SCHEMA1_SIGNED,
        }
    }
}

/// Content-Types that say nothing about the body: sniff it instead.
fn is_generic(content_type: &str) -> bool {
    matches!(
        content_type,
        "" | "text/plain" | "application/octet-stream" | "application/json" | "binary/octet-stream"
    )
}

/// Just enough of a manifest to tell its kind, as containers/image's
/// `GuessMIMEType` looks at it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sniff {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<SniffConfig>,
    #[serde(default)]
    layers: Present,
    #[serde(default)]
    manifests: Present,
    #[serde(default)]
    fs_layers: Present,
    #[serde(default)]
    signatures: Present,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SniffConfig {
    #[serde(default)]
    media_type: Option<String>,
}

fn sniff(bytes: &[u8]) -> Result<Sniff, ManifestError> {
    de::from_json(bytes)
}

fn guess(s: &Sniff) -> Option<Kind> {
    if let Some(kind) = s.media_type.as_deref().and_then(Kind::of)
        && !matches!(kind, Kind::Schema1 | Kind::Schema1Signed)
    {
        return Some(kind);
    }
    match s.schema_version {
        Some(1) if s.fs_layers.is_some() || s.signatures.is_some() => {
            Some(if s.signatures.is_some() {
                Kind::Schema1Signed
            } else {
                Kind::Schema1
            })
        }
        Some(2) => {
            let config_type = s.config.as_ref().and_then(|c| c.media_type.as_deref());
            if config_type == Some(MediaType::DOCKER_CONFIG.as_str()) {
                Some(Kind::Docker)
            } else if s.manifests.is_some() && s.config.is_none() {
                Some(Kind::Index)
            } else if s.config.is_some() || s.layers.is_some() {
                // An OCI manifest from before `mediaType` was required, or
                // an artifact with its own config type.
                Some(Kind::Image)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn parse_as<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ManifestError> {
    de::from_json(bytes)
}

fn mismatch(content_type: &MediaType, body: &MediaType) -> Result<(), ManifestError> {
    if content_type == body {
        Ok(())
    } else {
        Err(ManifestError::MediaTypeMismatch {
            content_type: content_type.to_string(),
            body: body.to_string(),
        })
    }
}

fn parse_kind(kind: Kind, bytes: &[u8]) -> Result<ParsedManifest, ManifestError> {
    let want = kind.media_type();
    Ok(match kind {
        Kind::Image => {
            let m: ImageManifest = parse_as(bytes)?;
            if let Some(t) = &m.media_type {
                mismatch(&want, t)?;
            }
            m.validate()?;
            ParsedManifest::Image(m)
        }
        Kind::Index => {
            let m: ImageIndex = parse_as(bytes)?;
            if let Some(t) = &m.media_type {
                mismatch(&want, t)?;
            }
            m.validate()?;
            ParsedManifest::Index(m)
        }
        Kind::Artifact => {
            let m: ArtifactManifest = parse_as(bytes)?;
            mismatch(&want, &m.media_type)?;
            m.validate()?;
            ParsedManifest::Artifact(m)
        }
        Kind::Docker => {
            let m: DockerManifest = parse_as(bytes)?;
            mismatch(&want, &m.media_type)?;
            m.validate()?;
            ParsedManifest::Docker(m)
        }
        Kind::DockerList => {
            let m: DockerManifestList = parse_as(bytes)?;
            mismatch(&want, &m.media_type)?;
            m.validate()?;
            ParsedManifest::DockerList(m)
        }
        Kind::Schema1 | Kind::Schema1Signed => {
            let m: Schema1Manifest = parse_as(bytes)?;
            m.validate()?;
            ParsedManifest::Schema1(m)
        }
    })
}

impl Manifest {
    /// Parses `bytes` (copied only once they are accepted) as the
    /// `Content-Type` says, sniffing the body when the header is missing or
    /// generic (`text/plain`, `application/octet-stream`,
    /// `application/json`), with the default [`Limits`].
    pub fn from_bytes(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        Manifest::from_bytes_with_limits(bytes, content_type, &Limits::default())
    }

    /// As [`Manifest::from_bytes`], with these limits.
    pub fn from_bytes_with_limits(
        bytes: &[u8],
        content_type: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, ManifestError> {
        let (media_type, parsed) = Manifest::parse(bytes, content_type, limits)?;
        Ok(Manifest {
            raw: bytes.to_vec(),
            media_type,
            parsed,
            digest: OnceLock::new(),
        })
    }

    /// As [`Manifest::from_bytes`], keeping the vector without a copy.
    pub fn from_vec(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self, ManifestError> {
        Manifest::from_vec_with_limits(bytes, content_type, &Limits::default())
    }

    /// As [`Manifest::from_vec`], with these limits.
    pub fn from_vec_with_limits(
        bytes: Vec<u8>,
        content_type: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, ManifestError> {
        let (media_type, parsed) = Manifest::parse(&bytes, content_type, limits)?;
        Ok(Manifest {
            raw: bytes,
            media_type,
            parsed,
            digest: OnceLock::new(),
        })
    }

    /// Reads a manifest from `reader`, refusing it as soon as more than
    /// `limits.manifest` bytes arrive, then parses it.
    pub fn read_from<R: Read>(
        reader: R,
        content_type: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, ManifestError> {
        let mut limited = LimitedReader::new(reader, limits.manifest);
        let mut bytes = Vec::new();
        if let Err(e) = limited.read_to_end(&mut bytes) {
            return Err(match VerifyError::from_io(&e) {
                Some(VerifyError::TooLarge { limit }) => ManifestError::TooLarge {
                    size: limited.bytes_read(),
                    limit: *limit,
                },
                _ => ManifestError::Read(e.to_string()),
            });
        }
        Manifest::from_vec_with_limits(bytes, content_type, limits)
    }

    fn parse(
        bytes: &[u8],
        content_type: Option<&str>,
        limits: &Limits,
    ) -> Result<(MediaType, ParsedManifest), ManifestError> {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > limits.manifest {
            return Err(ManifestError::TooLarge {
                size,
                limit: limits.manifest,
            });
        }
        let header = content_type.map(essence);
        let header_kind = match header.as_deref() {
            None => None,
            Some(h) if is_generic(h) => None,
            Some(h) => {
                Some(Kind::of(h).ok_or_else(|| ManifestError::UnsupportedMediaType(h.to_owned()))?)
            }
        };
        let kind = match header_kind {
            Some(k) => k,
            None => guess(&sniff(bytes)?).ok_or(ManifestError::UnknownKind)?,
        };
        match parse_kind(kind, bytes) {
            Ok(parsed) => Ok((kind.media_type(), parsed)),
            Err(err) => {
                // A body of another kind fails to parse in confusing ways;
                // say that the kinds differ when the body says so.
                if header_kind.is_some()
                    && !matches!(err, ManifestError::MediaTypeMismatch { .. })
                    && let Ok(s) = sniff(bytes)
                    && let Some(body) = s.media_type
                    && body != kind.media_type().as_str()
                {
                    return Err(ManifestError::MediaTypeMismatch {
                        content_type: kind.media_type().to_string(),
                        body,
                    });
                }
                Err(err)
            }
        }
    }

    /// The exact bytes received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes, without the parsed value.
    pub fn into_raw(self) -> Vec<u8> {
        self.raw
    }

    /// The sha256 digest of the bytes received (computed once, on first
    /// use).
    pub fn digest(&self) -> Digest {
        self.digest
            .get_or_init(|| Digester::sha256_of(&self.raw))
            .clone()
    }

    /// The size of the bytes received.
    pub fn size(&self) -> u64 {
        u64::try_from(self.raw.len()).unwrap_or(u64::MAX)
    }

    /// The media type the manifest was read as (the Content-Type's essence,
    /// or the sniffed kind).
    pub fn media_type(&self) -> &MediaType {
        &self.media_type
    }

    /// The parsed value.
    pub fn parsed(&self) -> &ParsedManifest {
        &self.parsed
    }

    /// The parsed value, without the bytes.
    pub fn into_parsed(self) -> ParsedManifest {
        self.parsed
    }

    /// A descriptor of these bytes: media type, digest, size, and the
    /// artifact type when the manifest states one.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(self.media_type.clone(), self.digest(), self.size());
        d.artifact_type = match &self.parsed {
            ParsedManifest::Image(m) => m.artifact_type.clone(),
            ParsedManifest::Index(m) => m.artifact_type.clone(),
            ParsedManifest::Artifact(m) => Some(m.artifact_type.clone()),
            _ => None,
        };
        d
    }

    /// Whether this is an index of manifests (OCI index or Docker list).
    pub fn is_index(&self) -> bool {
        matches!(
            self.parsed,
            ParsedManifest::Index(_) | ParsedManifest::DockerList(_)
        )
    }

    /// The manifests an index lists (empty for a single manifest).
    pub fn manifests(&self) -> &[Descriptor] {
        match &self.parsed {
            ParsedManifest::Index(m) => &m.manifests,
            ParsedManifest::DockerList(m) => &m.manifests,
            _ => &[],
        }
    }

    /// The config of an image manifest.
    pub fn config(&self) -> Option<&Descriptor> {
        match &self.parsed {
            ParsedManifest::Image(m) => Some(&m.config),
            ParsedManifest::Docker(m) => Some(&m.config),
            _ => None,
        }
    }

    /// The layers of an image manifest, base first (the blobs of an
    /// artifact manifest; empty for an index and for schema 1, whose
    /// `fsLayers` are not descriptors).
    pub fn layers(&self) -> &[Descriptor] {
        match &self.parsed {
            ParsedManifest::Image(m) => &m.layers,
            ParsedManifest::Docker(m) => &m.layers,
            ParsedManifest::Artifact(m) => &m.blobs,
            _ => &[],
        }
    }

    /// The manifest this one refers to, if any.
    pub fn subject(&self) -> Option<&Descriptor> {
        match &self.parsed {
            ParsedManifest::Image(m) => m.subject.as_ref(),
            ParsedManifest::Index(m) => m.subject.as_ref(),
            ParsedManifest::Artifact(m) => m.subject.as_ref(),
            _ => None,
        }
    }

    /// For an index, the best manifest for `platform` (containerd's rules;
    /// attestations never); `None` for a single manifest.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        platform.select(self.manifests())
    }

    /// Checks that these bytes have digest `expected` (sha256 or sha512).
    /// A signed schema 1 manifest also passes when `expected` is its
    /// payload's digest, which is how registries name it.
    pub fn verify(&self, expected: &Digest) -> Result<(), VerifyError> {
        match Verifier::verify(expected, self.size(), &self.raw) {
            Err(err @ VerifyError::DigestMismatch { .. }) => {
                if let ParsedManifest::Schema1(s) = &self.parsed
                    && s.is_signed()
                    && let Ok(payload) = s.payload(&self.raw)
                {
                    let size = u64::try_from(payload.len()).unwrap_or(u64::MAX);
                    if Verifier::verify(expected, size, &payload).is_ok() {
                        return Ok(());
                    }
                }
                Err(err)
            }
            other => other,
        }
    }
}
