//! Docker's formats: image manifest schema 2, manifest list, and schema 1
//! (read only).

use std::borrow::Cow;
use std::collections::BTreeMap;

use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::descriptor::{Descriptor, base64_decode};
use crate::error::{ManifestError, Path};
use crate::media_type::MediaType;
use crate::oci::{RawManifest, check_own_media_type, to_json};
use crate::platform::Platform;

fn check_descriptors(list: &[Descriptor], name: &str, at: &Path<'_>) -> Result<(), ManifestError> {
    let field = at.field(name);
    for (i, d) in list.iter().enumerate() {
        d.check(&field.index(i))?;
    }
    Ok(())
}

fn check_version(found: u32, want: u32) -> Result<(), ManifestError> {
    if found == want {
        Ok(())
    } else {
        Err(ManifestError::invalid(
            "schemaVersion",
            format!("must be {want}, found {found}"),
        ))
    }
}

/// A Docker image manifest, schema 2
/// (`application/vnd.docker.distribution.manifest.v2+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DockerManifest {
    /// Always 2.
    #[serde(deserialize_with = "de::schema_version")]
    pub schema_version: u32,
    /// Always [`MediaType::DOCKER_MANIFEST`].
    pub media_type: MediaType,
    /// The container configuration.
    pub config: Descriptor,
    /// The layers, base first. `null` reads as empty.
    #[serde(deserialize_with = "de::null_default")]
    pub layers: Vec<Descriptor>,
}

impl DockerManifest {
    /// A schema 2 manifest.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        DockerManifest {
            schema_version: 2,
            media_type: MediaType::DOCKER_MANIFEST,
            config,
            layers,
        }
    }

    /// Checks the schema version, the media types and descriptors.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let at = Path::Root;
        check_version(self.schema_version, 2)?;
        check_own_media_type(Some(&self.media_type), &MediaType::DOCKER_MANIFEST, &at)?;
        self.config.check(&at.field("config"))?;
        check_descriptors(&self.layers, "layers", &at)
    }

    /// Validates, then serialises once, with digest and descriptor.
    pub fn to_raw(&self) -> Result<RawManifest, ManifestError> {
        self.validate()?;
        Ok(RawManifest::from_bytes(
            to_json(self),
            MediaType::DOCKER_MANIFEST,
            None,
        ))
    }
}

/// A Docker manifest list
/// (`application/vnd.docker.distribution.manifest.list.v2+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DockerManifestList {
    /// Always 2.
    #[serde(deserialize_with = "de::schema_version")]
    pub schema_version: u32,
    /// Always [`MediaType::DOCKER_MANIFEST_LIST`].
    pub media_type: MediaType,
    /// One manifest per platform. `null` reads as empty.
    #[serde(deserialize_with = "de::null_default")]
    pub manifests: Vec<Descriptor>,
}

impl DockerManifestList {
    /// A manifest list.
    pub fn new(manifests: Vec<Descriptor>) -> Self {
        DockerManifestList {
            schema_version: 2,
            media_type: MediaType::DOCKER_MANIFEST_LIST,
            manifests,
        }
    }

    /// Checks the schema version, the media types and descriptors.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let at = Path::Root;
        check_version(self.schema_version, 2)?;
        check_own_media_type(
            Some(&self.media_type),
            &MediaType::DOCKER_MANIFEST_LIST,
            &at,
        )?;
        check_descriptors(&self.manifests, "manifests", &at)
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
            MediaType::DOCKER_MANIFEST_LIST,
            None,
        ))
    }
}

/// A Docker schema 1 manifest, signed or not. Read only: registries still
/// serve it for old images, nothing should push it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Schema1Manifest {
    /// Always 1.
    #[serde(deserialize_with = "de::schema_version")]
    pub schema_version: u32,
    /// The repository name.
    #[serde(default)]
    pub name: String,
    /// The tag.
    #[serde(default)]
    pub tag: String,
    /// The architecture.
    #[serde(default)]
    pub architecture: String,
    /// The layers, newest first.
    #[serde(deserialize_with = "de::null_default")]
    pub fs_layers: Vec<FsLayer>,
    /// One entry per layer, newest first.
    #[serde(default, deserialize_with = "de::null_default")]
    pub history: Vec<V1History>,
    /// JWS signatures (`prettyjws`).
    #[serde(default, deserialize_with = "de::null_default")]
    pub signatures: Vec<Schema1Signature>,
}

/// A schema 1 layer reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FsLayer {
    /// The layer's digest.
    #[serde(rename = "blobSum", deserialize_with = "de::digest")]
    pub blob_sum: Digest,
}

/// A schema 1 history entry: the v1 image JSON, as a string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct V1History {
    /// The layer's v1 image JSON.
    #[serde(rename = "v1Compatibility")]
    pub v1_compatibility: String,
}

/// A JWS signature of a signed schema 1 manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Schema1Signature {
    /// The unprotected header: the key and algorithm.
    pub header: JwsHeader,
    /// The signature, base64url.
    pub signature: String,
    /// The protected header, base64url: says how to rebuild the payload.
    pub protected: String,
}

/// A JWS header (libtrust's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct JwsHeader {
    /// The signing algorithm (`ES256`).
    pub alg: String,
    /// The public key (`kty`, `crv`, `x`, `y`, `kid`...).
    #[serde(default)]
    pub jwk: Option<BTreeMap<String, String>>,
    /// A certificate chain instead of a key.
    #[serde(default, rename = "x5c", deserialize_with = "de::null_default")]
    pub chain: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProtectedHeader {
    format_length: usize,
    format_tail: String,
}

impl Schema1Manifest {
    /// Checks the schema version, that every layer has its history entry,
    /// and that signatures carry the payload's format.
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_version(self.schema_version, 1)?;
        if self.fs_layers.len() != self.history.len() {
            return Err(ManifestError::invalid(
                "history",
                format!(
                    "has {} entries for {} fsLayers",
                    self.history.len(),
                    self.fs_layers.len()
                ),
            ));
        }
        Ok(())
    }

    /// Whether the manifest carries JWS signatures.
    pub fn is_signed(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// The signed payload: `raw` (the manifest's exact bytes) without the
    /// signatures, rebuilt as libtrust does from the protected header's
    /// `formatLength` and `formatTail`. Registries name a signed schema 1
    /// manifest by this payload's digest, not by the digest of its bytes.
    pub fn payload<'a>(&self, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, ManifestError> {
        let Some(sig) = self.signatures.first() else {
            return Ok(Cow::Borrowed(raw));
        };
        let bad =
            |problem: &str| ManifestError::invalid("signatures[0].protected", problem.to_owned());
        let header = base64_decode(&sig.protected, true).ok_or_else(|| bad("not base64url"))?;
        let header: ProtectedHeader = serde_json::from_slice(&header)
            .map_err(|e| bad(&format!("not a JWS protected header: {e}")))?;
        let tail = base64_decode(&header.format_tail, true)
            .ok_or_else(|| bad("formatTail is not base64url"))?;
        let head = raw
            .get(..header.format_length)
            .ok_or_else(|| bad("formatLength is past the end"))?;
        let mut payload = Vec::with_capacity(head.len() + tail.len());
        payload.extend_from_slice(head);
        payload.extend_from_slice(&tail);
        Ok(Cow::Owned(payload))
    }
}
