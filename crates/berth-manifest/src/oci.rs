//! OCI image manifest, image index, the deprecated artifact manifest, and the
//! image layout's `oci-layout` file.

use std::collections::BTreeMap;

use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::descriptor::{Descriptor, check_media_type};
use crate::error::{ManifestError, Path};
use crate::media_type::MediaType;
use crate::platform::Platform;
use crate::verify::Digester;

/// Bytes ready to push, with their digest and the descriptor that names
/// them. The digest is of `bytes`, which are serialised once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawManifest {
    /// The canonical bytes.
    pub bytes: Vec<u8>,
    /// The sha256 digest of `bytes`.
    pub digest: Digest,
    /// Media type, digest and size of `bytes` (with the artifact type, when
    /// there is one).
    pub descriptor: Descriptor,
}

impl RawManifest {
    pub(crate) fn from_bytes(
        bytes: Vec<u8>,
        media_type: MediaType,
        artifact_type: Option<MediaType>,
    ) -> Self {
        let digest = Digester::sha256_of(&bytes);
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let mut descriptor = Descriptor::new(media_type, digest.clone(), size);
        descriptor.artifact_type = artifact_type;
        RawManifest {
            bytes,
            digest,
            descriptor,
        }
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("manifest types serialise: every map key is a string")
}

fn check_schema_version(found: u32, want: u32, at: &Path<'_>) -> Result<(), ManifestError> {
    if found == want {
        Ok(())
    } else {
        Err(at
            .field("schemaVersion")
            .error(format!("must be {want}, found {found}")))
    }
}

pub(crate) fn check_own_media_type(
    found: Option<&MediaType>,
    want: &MediaType,
    at: &Path<'_>,
) -> Result<(), ManifestError> {
    match found {
        Some(t) if t != want => Err(at
            .field("mediaType")
            .error(format!("must be {want}, found {t}"))),
        _ => Ok(()),
    }
}

fn check_list(list: &[Descriptor], name: &str, at: &Path<'_>) -> Result<(), ManifestError> {
    let field = at.field(name);
    for (i, d) in list.iter().enumerate() {
        d.check(&field.index(i))?;
    }
    Ok(())
}

fn check_subject(
    subject: Option<&Descriptor>,
    artifact_type: Option<&MediaType>,
    at: &Path<'_>,
) -> Result<(), ManifestError> {
    if let Some(s) = subject {
        s.check(&at.field("subject"))?;
    }
    if let Some(t) = artifact_type {
        check_media_type(t, &at.field("artifactType"))?;
    }
    Ok(())
}

/// An OCI image manifest (`application/vnd.oci.image.manifest.v1+json`):
/// a config and layers, or an artifact (`artifactType`, `subject`).
///
/// ```
/// use berth_manifest::{Descriptor, Digester, ImageManifest, Manifest, MediaType};
/// let config = Descriptor::new(MediaType::OCI_CONFIG, Digester::sha256_of(b"cfg"), 3);
/// let layer = Descriptor::new(MediaType::OCI_LAYER_TAR_GZIP, Digester::sha256_of(b"layer"), 5);
/// let raw = ImageManifest::new(config, vec![layer]).to_raw()?;
/// let parsed = Manifest::from_bytes(&raw.bytes, Some(MediaType::OCI_MANIFEST.as_str()))?;
/// assert_eq!(parsed.digest(), raw.digest);
/// assert_eq!(parsed.descriptor(), raw.descriptor);
/// # Ok::<(), berth_manifest::ManifestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageManifest {
    /// Always 2.
    #[serde(deserialize_with = "de::schema_version")]
    pub schema_version: u32,
    /// The manifest's own type; optional before image-spec 1.0.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// The artifact's type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The image configuration (or an artifact's config, or the empty
    /// descriptor).
    pub config: Descriptor,
    /// The layers, base first. `null` reads as empty.
    #[serde(deserialize_with = "de::null_default")]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (signatures, SBOMs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_map"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// A manifest with its media type set, a config and layers.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::OCI_MANIFEST),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// An artifact manifest as image-spec 1.1 advises: the empty config,
    /// `artifactType` set, the given blobs as layers (the empty descriptor
    /// when there are none).
    pub fn artifact(artifact_type: MediaType, blobs: Vec<Descriptor>) -> Self {
        let layers = if blobs.is_empty() {
            vec![Descriptor::empty()]
        } else {
            blobs
        };
        let mut m = ImageManifest::new(Descriptor::empty(), layers);
        m.artifact_type = Some(artifact_type);
        m
    }

    /// This manifest with a subject.
    pub fn with_subject(mut self, subject: Descriptor) -> Self {
        self.subject = Some(subject);
        self
    }

    /// This manifest with an annotation added.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Parses and validates, with no Content-Type or size rules
    /// ([`crate::Manifest::from_bytes`] has them).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: ImageManifest = de::from_json(bytes)?;
        m.validate()?;
        Ok(m)
    }

    /// Checks what the types do not: schema version 2, media types by
    /// grammar, the manifest's own media type, descriptors.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let at = Path::Root;
        check_schema_version(self.schema_version, 2, &at)?;
        check_own_media_type(self.media_type.as_ref(), &MediaType::OCI_MANIFEST, &at)?;
        self.config.check(&at.field("config"))?;
        check_list(&self.layers, "layers", &at)?;
        check_subject(self.subject.as_ref(), self.artifact_type.as_ref(), &at)
    }

    /// The artifact type as the referrers API reports it: `artifactType`,
    /// else the config's media type (the image-spec's rule).
    pub fn effective_artifact_type(&self) -> &MediaType {
        self.artifact_type
            .as_ref()
            .unwrap_or(&self.config.media_type)
    }

    /// Validates, then serialises once to canonical bytes (compact JSON,
    /// fields in the spec's order) with their digest and descriptor.
    pub fn to_raw(&self) -> Result<RawManifest, ManifestError> {
        self.validate()?;
        Ok(RawManifest::from_bytes(
            to_json(self),
            MediaType::OCI_MANIFEST,
            self.artifact_type.clone(),
        ))
    }
}

/// An OCI image index (`application/vnd.oci.image.index.v1+json`): a list
/// of manifests, usually one per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageIndex {
    /// Always 2.
    #[serde(deserialize_with = "de::schema_version")]
    pub schema_version: u32,
    /// The index's own type; optional before image-spec 1.0.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// The artifact's type, for artifact indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The manifests. `null` reads as empty.
    #[serde(deserialize_with = "de::null_default")]
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_map"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An index with its media type set.
    pub fn new(manifests: Vec<Descriptor>) -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::OCI_INDEX),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// This index with an annotation added.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Parses and validates, with no Content-Type or size rules.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: ImageIndex = de::from_json(bytes)?;
        m.validate()?;
        Ok(m)
    }

    /// Checks what the types do not: schema version 2, media types,
    /// descriptors.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let at = Path::Root;
        check_schema_version(self.schema_version, 2, &at)?;
        check_own_media_type(self.media_type.as_ref(), &MediaType::OCI_INDEX, &at)?;
        check_list(&self.manifests, "manifests", &at)?;
        check_subject(self.subject.as_ref(), self.artifact_type.as_ref(), &at)
    }

    /// The best manifest for `platform` (see [`Platform::select`]).
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        platform.select(&self.manifests)
    }

    /// Validates, then serialises once, with digest and descriptor.
    pub fn to_raw(&self) -> Result<RawManifest, ManifestError> {
        self.validate()?;
        Ok(RawManifest::from_bytes(
            to_json(self),
            MediaType::OCI_INDEX,
            self.artifact_type.clone(),
        ))
    }
}

/// The OCI artifact manifest (`application/vnd.oci.artifact.manifest.v1+json`)
/// of the image-spec 1.1 release candidates, dropped from the final spec but
/// still stored in some registries. Read it; push [`ImageManifest::artifact`]
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactManifest {
    /// Always the artifact manifest type.
    pub media_type: MediaType,
    /// The artifact's type.
    pub artifact_type: MediaType,
    /// The artifact's blobs.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub blobs: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_map"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactManifest {
    /// An artifact manifest (for tests and for reading old layouts; push
    /// [`ImageManifest::artifact`]).
    pub fn new(artifact_type: MediaType, blobs: Vec<Descriptor>) -> Self {
        ArtifactManifest {
            media_type: MediaType::OCI_ARTIFACT_MANIFEST,
            artifact_type,
            blobs,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Checks the media types and descriptors.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let at = Path::Root;
        check_own_media_type(
            Some(&self.media_type),
            &MediaType::OCI_ARTIFACT_MANIFEST,
            &at,
        )?;
        check_list(&self.blobs, "blobs", &at)?;
        check_subject(self.subject.as_ref(), Some(&self.artifact_type), &at)
    }
}

/// The `oci-layout` file at the root of an OCI image layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OciLayout {
    /// The layout version: `1.0.0`.
    pub image_layout_version: String,
}

impl Default for OciLayout {
    fn default() -> Self {
        OciLayout {
            image_layout_version: OciLayout::VERSION.to_owned(),
        }
    }
}

impl OciLayout {
    /// The only layout version the spec defines.
    pub const VERSION: &'static str = "1.0.0";

    /// Parses and checks the version.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let l: OciLayout = de::from_json(bytes)?;
        if l.image_layout_version != OciLayout::VERSION {
            return Err(ManifestError::invalid(
                "imageLayoutVersion",
                format!(
                    "must be {}, found {:?}",
                    OciLayout::VERSION,
                    l.image_layout_version
                ),
            ));
        }
        Ok(l)
    }
}
