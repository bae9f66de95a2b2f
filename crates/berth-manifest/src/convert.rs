//! Conversion between Docker schema 2 and OCI, as `skopeo copy --format`
//! does: the manifest's, config's and layers' media types are swapped;
//! digests and sizes are kept (the blobs do not change).

use std::fmt;

use crate::descriptor::Descriptor;
use crate::docker::{DockerManifest, DockerManifestList};
use crate::media_type::MediaType;
use crate::oci::{ImageIndex, ImageManifest};

/// Why a manifest cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConvertError {
    /// A layer or config media type has no counterpart in the target format
    /// (zstd layers have none in Docker's).
    UnsupportedMediaType {
        /// Where: `layers[2]`, `config`.
        path: String,
        /// The media type.
        media_type: String,
    },
    /// The OCI manifest uses a field Docker's format cannot hold
    /// (`subject`, `artifactType`).
    UnsupportedField(&'static str),
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::UnsupportedMediaType { path, media_type } => {
                write!(
                    f,
                    "{path}: media type {media_type} has no counterpart in the target format"
                )
            }
            ConvertError::UnsupportedField(field) => {
                write!(f, "{field}: Docker schema 2 cannot hold this field")
            }
        }
    }
}

impl std::error::Error for ConvertError {}

/// Docker layer type -> OCI layer type.
const LAYERS: &[(MediaType, MediaType)] = &[
    (MediaType::DOCKER_LAYER, MediaType::OCI_LAYER_TAR_GZIP),
    (MediaType::DOCKER_LAYER_TAR, MediaType::OCI_LAYER_TAR),
    (
        MediaType::DOCKER_FOREIGN_LAYER,
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
    ),
    (
        MediaType::DOCKER_FOREIGN_LAYER_TAR,
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR,
    ),
    (MediaType::DOCKER_LAYER_ZSTD, MediaType::OCI_LAYER_TAR_ZSTD),
];

fn layer_to_oci(d: &Descriptor, i: usize) -> Result<Descriptor, ConvertError> {
    let mut out = d.clone();
    if let Some((_, oci)) = LAYERS
        .iter()
        .find(|(docker, oci)| d.media_type == *docker || d.media_type == *oci)
    {
        out.media_type = oci.clone();
        return Ok(out);
    }
    Err(ConvertError::UnsupportedMediaType {
        path: format!("layers[{i}]"),
        media_type: d.media_type.to_string(),
    })
}

fn layer_to_docker(d: &Descriptor, i: usize) -> Result<Descriptor, ConvertError> {
    let mut out = d.clone();
    // Docker's format has no zstd: containerd's zstd type is not Docker's.
    if let Some((docker, _)) = LAYERS
        .iter()
        .filter(|(docker, _)| *docker != MediaType::DOCKER_LAYER_ZSTD)
        .find(|(docker, oci)| d.media_type == *docker || d.media_type == *oci)
    {
        out.media_type = docker.clone();
        return Ok(out);
    }
    Err(ConvertError::UnsupportedMediaType {
        path: format!("layers[{i}]"),
        media_type: d.media_type.to_string(),
    })
}

fn config_as(d: &Descriptor, to: MediaType) -> Result<Descriptor, ConvertError> {
    if !d.media_type.is_config() {
        return Err(ConvertError::UnsupportedMediaType {
            path: "config".into(),
            media_type: d.media_type.to_string(),
        });
    }
    let mut out = d.clone();
    out.media_type = to;
    Ok(out)
}

fn entry_as(d: &Descriptor, i: usize, to_oci: bool) -> Result<Descriptor, ConvertError> {
    let mut out = d.clone();
    let t = &d.media_type;
    out.media_type = if *t == MediaType::DOCKER_MANIFEST || *t == MediaType::OCI_MANIFEST {
        if to_oci {
            MediaType::OCI_MANIFEST
        } else {
            MediaType::DOCKER_MANIFEST
        }
    } else if *t == MediaType::DOCKER_MANIFEST_LIST || *t == MediaType::OCI_INDEX {
        if to_oci {
            MediaType::OCI_INDEX
        } else {
            MediaType::DOCKER_MANIFEST_LIST
        }
    } else {
        return Err(ConvertError::UnsupportedMediaType {
            path: format!("manifests[{i}]"),
            media_type: t.to_string(),
        });
    };
    Ok(out)
}

impl DockerManifest {
    /// The OCI manifest with the same config and layers: Docker's config
    /// type becomes OCI's, `rootfs.diff.tar.gzip` becomes `tar+gzip`,
    /// foreign layers become non-distributable ones. Digests do not change:
    /// the config and layer blobs are the same bytes.
    ///
    /// ```
    /// use berth_manifest::{Descriptor, Digester, DockerManifest, MediaType};
    /// let m = DockerManifest::new(
    ///     Descriptor::new(MediaType::DOCKER_CONFIG, Digester::sha256_of(b"c"), 1),
    ///     vec![Descriptor::new(MediaType::DOCKER_LAYER, Digester::sha256_of(b"l"), 1)],
    /// );
    /// let oci = m.to_oci()?;
    /// assert_eq!(oci.layers[0].media_type, MediaType::OCI_LAYER_TAR_GZIP);
    /// assert_eq!(oci.to_docker()?, m);
    /// # Ok::<(), berth_manifest::ConvertError>(())
    /// ```
    pub fn to_oci(&self) -> Result<ImageManifest, ConvertError> {
        let config = config_as(&self.config, MediaType::OCI_CONFIG)?;
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, d)| layer_to_oci(d, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ImageManifest::new(config, layers))
    }
}

impl ImageManifest {
    /// The Docker schema 2 manifest with the same config and layers.
    /// Manifest annotations are dropped (Docker's format has none); a
    /// `subject` or `artifactType`, zstd layers or a non-image config
    /// cannot be converted.
    pub fn to_docker(&self) -> Result<DockerManifest, ConvertError> {
        if self.subject.is_some() {
            return Err(ConvertError::UnsupportedField("subject"));
        }
        if self.artifact_type.is_some() {
            return Err(ConvertError::UnsupportedField("artifactType"));
        }
        let config = config_as(&self.config, MediaType::DOCKER_CONFIG)?;
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, d)| layer_to_docker(d, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DockerManifest::new(config, layers))
    }
}

impl DockerManifestList {
    /// The OCI index with the same entries, their manifest types swapped.
    /// Each entry keeps its digest: convert every manifest it names too and
    /// replace the entry's digest and size with the converted manifest's
    /// (skopeo does the same).
    pub fn to_oci(&self) -> Result<ImageIndex, ConvertError> {
        let manifests = self
            .manifests
            .iter()
            .enumerate()
            .map(|(i, d)| entry_as(d, i, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ImageIndex::new(manifests))
    }
}

impl ImageIndex {
    /// The Docker manifest list with the same entries, their manifest types
    /// swapped (see [`DockerManifestList::to_oci`] about digests). Index
    /// annotations are dropped; `subject` or `artifactType` cannot be
    /// converted, nor can entries that are not manifests or indexes.
    pub fn to_docker(&self) -> Result<DockerManifestList, ConvertError> {
        if self.subject.is_some() {
            return Err(ConvertError::UnsupportedField("subject"));
        }
        if self.artifact_type.is_some() {
            return Err(ConvertError::UnsupportedField("artifactType"));
        }
        let manifests = self
            .manifests
            .iter()
            .enumerate()
            .map(|(i, d)| entry_as(d, i, false))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DockerManifestList::new(manifests))
    }
}
