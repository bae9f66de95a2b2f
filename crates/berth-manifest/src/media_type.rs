//! Media types: an open string newtype with the registered values as
//! constants, so a type this crate does not know round-trips untouched.

use std::borrow::Cow;
use std::fmt;

/// A media type such as `application/vnd.oci.image.manifest.v1+json`.
///
/// Open: any string is kept as given (parameters included), and the
/// predicates answer for the types this crate knows. Parsing a known type
/// does not allocate.
///
/// ```
/// use berth_manifest::MediaType;
/// let t = MediaType::new("application/vnd.docker.distribution.manifest.list.v2+json");
/// assert_eq!(t, MediaType::DOCKER_MANIFEST_LIST);
/// assert!(t.is_index() && t.is_docker() && !t.is_oci());
/// let custom = MediaType::new("application/vnd.example.sbom.v1+json");
/// assert!(!custom.is_manifest() && custom.check_grammar().is_ok());
/// assert!(MediaType::new("invalid").check_grammar().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaType(Cow<'static, str>);

impl MediaType {
    /// OCI image manifest.
    pub const OCI_MANIFEST: MediaType =
        MediaType::from_static("application/vnd.oci.image.manifest.v1+json");
    /// OCI image index.
    pub const OCI_INDEX: MediaType =
        MediaType::from_static("application/vnd.oci.image.index.v1+json");
    /// OCI image configuration.
    pub const OCI_CONFIG: MediaType =
        MediaType::from_static("application/vnd.oci.image.config.v1+json");
    /// OCI layer, uncompressed tar.
    pub const OCI_LAYER_TAR: MediaType =
        MediaType::from_static("application/vnd.oci.image.layer.v1.tar");
    /// OCI layer, gzip-compressed tar.
    pub const OCI_LAYER_TAR_GZIP: MediaType =
        MediaType::from_static("application/vnd.oci.image.layer.v1.tar+gzip");
    /// OCI layer, zstd-compressed tar.
    pub const OCI_LAYER_TAR_ZSTD: MediaType =
        MediaType::from_static("application/vnd.oci.image.layer.v1.tar+zstd");
    /// OCI non-distributable layer, uncompressed tar (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_TAR: MediaType =
        MediaType::from_static("application/vnd.oci.image.layer.nondistributable.v1.tar");
    /// OCI non-distributable layer, gzip-compressed tar (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP: MediaType =
        MediaType::from_static("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
    /// OCI non-distributable layer, zstd-compressed tar (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD: MediaType =
        MediaType::from_static("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd");
    /// The empty descriptor's type: the blob is `{}`.
    pub const OCI_EMPTY: MediaType = MediaType::from_static("application/vnd.oci.empty.v1+json");
    /// The OCI artifact manifest of image-spec 1.1 release candidates,
    /// removed from the final spec; still found in registries.
    pub const OCI_ARTIFACT_MANIFEST: MediaType =
        MediaType::from_static("application/vnd.oci.artifact.manifest.v1+json");
    /// A content descriptor on its own (image-spec's schema name).
    pub const OCI_DESCRIPTOR: MediaType =
        MediaType::from_static("application/vnd.oci.descriptor.v1+json");
    /// The `oci-layout` file of an image layout.
    pub const OCI_LAYOUT_HEADER: MediaType =
        MediaType::from_static("application/vnd.oci.layout.header.v1+json");

    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: MediaType =
        MediaType::from_static("application/vnd.docker.distribution.manifest.v2+json");
    /// Docker manifest list (the multi-platform index).
    pub const DOCKER_MANIFEST_LIST: MediaType =
        MediaType::from_static("application/vnd.docker.distribution.manifest.list.v2+json");
    /// Docker container configuration.
    pub const DOCKER_CONFIG: MediaType =
        MediaType::from_static("application/vnd.docker.container.image.v1+json");
    /// Docker layer, gzip-compressed tar.
    pub const DOCKER_LAYER: MediaType =
        MediaType::from_static("application/vnd.docker.image.rootfs.diff.tar.gzip");
    /// Docker layer, uncompressed tar.
    pub const DOCKER_LAYER_TAR: MediaType =
        MediaType::from_static("application/vnd.docker.image.rootfs.diff.tar");
    /// Docker layer, zstd (containerd's extension; not in Docker's spec).
    pub const DOCKER_LAYER_ZSTD: MediaType =
        MediaType::from_static("application/vnd.docker.image.rootfs.diff.tar.zstd");
    /// Docker foreign layer (fetched from `urls`), gzip-compressed tar.
    pub const DOCKER_FOREIGN_LAYER: MediaType =
        MediaType::from_static("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
    /// Docker foreign layer, uncompressed tar.
    pub const DOCKER_FOREIGN_LAYER_TAR: MediaType =
        MediaType::from_static("application/vnd.docker.image.rootfs.foreign.diff.tar");
    /// Docker image manifest, schema 1 (unsigned). Read only.
    pub const DOCKER_SCHEMA1: MediaType =
        MediaType::from_static("application/vnd.docker.distribution.manifest.v1+json");
    /// Docker image manifest, schema 1 with JWS signatures. Read only.
    pub const DOCKER_SCHEMA1_SIGNED: MediaType =
        MediaType::from_static("application/vnd.docker.distribution.manifest.v1+prettyjws");
    /// A Docker plugin configuration.
    pub const DOCKER_PLUGIN_CONFIG: MediaType =
        MediaType::from_static("application/vnd.docker.plugin.v1+json");

    /// Every type with a constant here, so parsing one does not allocate.
    const KNOWN: &'static [MediaType] = &[
        MediaType::OCI_MANIFEST,
        MediaType::OCI_INDEX,
        MediaType::OCI_CONFIG,
        MediaType::OCI_LAYER_TAR,
        MediaType::OCI_LAYER_TAR_GZIP,
        MediaType::OCI_LAYER_TAR_ZSTD,
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR,
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
        MediaType::OCI_EMPTY,
        MediaType::OCI_ARTIFACT_MANIFEST,
        MediaType::OCI_DESCRIPTOR,
        MediaType::OCI_LAYOUT_HEADER,
        MediaType::DOCKER_MANIFEST,
        MediaType::DOCKER_MANIFEST_LIST,
        MediaType::DOCKER_CONFIG,
        MediaType::DOCKER_LAYER,
        MediaType::DOCKER_LAYER_TAR,
        MediaType::DOCKER_LAYER_ZSTD,
        MediaType::DOCKER_FOREIGN_LAYER,
        MediaType::DOCKER_FOREIGN_LAYER_TAR,
        MediaType::DOCKER_SCHEMA1,
        MediaType::DOCKER_SCHEMA1_SIGNED,
        MediaType::DOCKER_PLUGIN_CONFIG,
    ];

    /// A media type from a static string, usable in constants.
    pub const fn from_static(s: &'static str) -> MediaType {
        MediaType(Cow::Borrowed(s))
    }

    /// A media type from any string, kept as given. Known types share the
    /// constant's static string.
    pub fn new(s: &str) -> MediaType {
        match MediaType::known(s) {
            Some(k) => k,
            None => MediaType(Cow::Owned(s.to_owned())),
        }
    }

    fn known(s: &str) -> Option<MediaType> {
        // Every known type starts with "application/vnd."; skip the search
        // for anything else.
        if !s.starts_with("application/vnd.") {
            return None;
        }
        MediaType::KNOWN.iter().find(|k| k.as_str() == s).cloned()
    }

    /// The type as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The type without parameters (`; charset=...`), trimmed and in ASCII
    /// lowercase, as a Content-Type header is compared.
    pub fn essence(&self) -> Cow<'_, str> {
        essence(self.as_str())
    }

    fn is(&self, other: &MediaType) -> bool {
        self.as_str() == other.as_str() || self.essence() == other.as_str()
    }

    fn is_any(&self, others: &[MediaType]) -> bool {
        others.iter().any(|o| self.is(o))
    }

    /// An index of manifests: OCI image index or Docker manifest list.
    pub fn is_index(&self) -> bool {
        self.is_any(&[MediaType::OCI_INDEX, MediaType::DOCKER_MANIFEST_LIST])
    }

    /// A single-image manifest: OCI image manifest, the OCI artifact
    /// manifest, Docker schema 2 or schema 1.
    pub fn is_manifest(&self) -> bool {
        self.is_any(&[
            MediaType::OCI_MANIFEST,
            MediaType::OCI_ARTIFACT_MANIFEST,
            MediaType::DOCKER_MANIFEST,
            MediaType::DOCKER_SCHEMA1,
            MediaType::DOCKER_SCHEMA1_SIGNED,
        ])
    }

    /// A manifest or an index: something a registry serves under
    /// `/manifests/`.
    pub fn is_manifest_or_index(&self) -> bool {
        self.is_manifest() || self.is_index()
    }

    /// A layer of an image, OCI or Docker, compressed or not, distributable
    /// or not.
    pub fn is_layer(&self) -> bool {
        self.is_any(&[
            MediaType::OCI_LAYER_TAR,
            MediaType::OCI_LAYER_TAR_GZIP,
            MediaType::OCI_LAYER_TAR_ZSTD,
            MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR,
            MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
            MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
            MediaType::DOCKER_LAYER,
            MediaType::DOCKER_LAYER_TAR,
            MediaType::DOCKER_LAYER_ZSTD,
            MediaType::DOCKER_FOREIGN_LAYER,
            MediaType::DOCKER_FOREIGN_LAYER_TAR,
        ])
    }

    /// An image configuration: OCI or Docker.
    pub fn is_config(&self) -> bool {
        self.is_any(&[MediaType::OCI_CONFIG, MediaType::DOCKER_CONFIG])
    }

    /// A layer that must not be pushed to other registries (Docker foreign
    /// layers, OCI non-distributable layers): it is fetched from `urls`.
    pub fn is_foreign(&self) -> bool {
        self.is_any(&[
            MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR,
            MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
            MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
            MediaType::DOCKER_FOREIGN_LAYER,
            MediaType::DOCKER_FOREIGN_LAYER_TAR,
        ])
    }

    /// One of Docker's types (`application/vnd.docker.`).
    pub fn is_docker(&self) -> bool {
        self.essence().starts_with("application/vnd.docker.")
    }

    /// One of the OCI's types (`application/vnd.oci.`).
    pub fn is_oci(&self) -> bool {
        self.essence().starts_with("application/vnd.oci.")
    }

    /// Docker schema 1, signed or not.
    pub fn is_schema1(&self) -> bool {
        self.is_any(&[MediaType::DOCKER_SCHEMA1, MediaType::DOCKER_SCHEMA1_SIGNED])
    }

    /// Checks the type against RFC 6838's grammar as the image-spec's
    /// schema does: `type/subtype`, each 1 to 127 characters, starting with
    /// a letter or digit, then letters, digits and `!#$&-^_.+`. Parameters
    /// are not allowed.
    pub fn check_grammar(&self) -> Result<(), &'static str> {
        // The constants are valid: skip the scan for them.
        if let Cow::Borrowed(s) = &self.0
            && MediaType::KNOWN
                .iter()
                .any(|k| std::ptr::eq(k.as_str(), *s))
        {
            return Ok(());
        }
        check_grammar(self.as_str())
    }
}

/// A header value's essence: parameters stripped, trimmed, ASCII lowercase.
pub(crate) fn essence(s: &str) -> Cow<'_, str> {
    let base = s.split(';').next().unwrap_or("").trim();
    if base.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(base.to_ascii_lowercase())
    } else {
        Cow::Borrowed(base)
    }
}

/// RFC 6838 `restricted-name "/" restricted-name`.
pub(crate) fn check_grammar(s: &str) -> Result<(), &'static str> {
    let Some((ty, sub)) = s.split_once('/') else {
        return Err("media type must be type/subtype");
    };
    check_restricted_name(ty).map_err(|e| match e {
        NameError::Empty => "media type has an empty type",
        NameError::First => "media type's type must start with a letter or digit",
        NameError::Char => "media type's type has a character RFC 6838 does not allow",
        NameError::Long => "media type's type is longer than 127 characters",
    })?;
    check_restricted_name(sub).map_err(|e| match e {
        NameError::Empty => "media type has an empty subtype",
        NameError::First => "media type's subtype must start with a letter or digit",
        NameError::Char => "media type's subtype has a character RFC 6838 does not allow",
        NameError::Long => "media type's subtype is longer than 127 characters",
    })
}

enum NameError {
    Empty,
    First,
    Char,
    Long,
}

fn check_restricted_name(s: &str) -> Result<(), NameError> {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return Err(NameError::Empty);
    };
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::First);
    }
    if !b[1..].iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
            )
    }) {
        return Err(NameError::Char);
    }
    if b.len() > 127 {
        return Err(NameError::Long);
    }
    Ok(())
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaType({:?})", self.as_str())
    }
}

impl AsRef<str> for MediaType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        MediaType::new(s)
    }
}

impl From<String> for MediaType {
    fn from(s: String) -> Self {
        match MediaType::known(&s) {
            Some(k) => k,
            None => MediaType(Cow::Owned(s)),
        }
    }
}

impl PartialEq<str> for MediaType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MediaType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MediaType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a media type string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MediaType, E> {
                Ok(MediaType::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<MediaType, E> {
                Ok(MediaType::from(v))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_are_static_and_predicates_hold() {
        let t = MediaType::new("application/vnd.oci.image.layer.v1.tar+zstd");
        assert!(matches!(t.0, Cow::Borrowed(_)));
        assert!(t.is_layer() && t.is_oci() && !t.is_foreign());
        assert!(
            MediaType::DOCKER_FOREIGN_LAYER.is_foreign()
                && MediaType::DOCKER_FOREIGN_LAYER.is_layer()
        );
        assert!(MediaType::OCI_CONFIG.is_config() && MediaType::DOCKER_CONFIG.is_config());
        assert!(
            MediaType::DOCKER_SCHEMA1_SIGNED.is_manifest()
                && MediaType::DOCKER_SCHEMA1_SIGNED.is_schema1()
        );
        assert!(MediaType::OCI_INDEX.is_index() && !MediaType::OCI_INDEX.is_manifest());
        let with_params = MediaType::new("Application/VND.oci.image.index.v1+json; charset=utf-8");
        assert!(with_params.is_index());
        assert_eq!(
            with_params.as_str(),
            "Application/VND.oci.image.index.v1+json; charset=utf-8"
        );
    }

    #[test]
    fn grammar() {
        assert!(check_grammar("application/vnd.oci.image.manifest.v1+json").is_ok());
        assert!(check_grammar("application").is_err());
        assert!(check_grammar(".foo/bar").is_err());
        assert!(check_grammar("foo/.bar").is_err());
        assert!(check_grammar("foo/").is_err());
        assert!(check_grammar("text/plain; charset=utf-8").is_err());
        assert!(check_grammar(&format!("{}/{}", "a".repeat(127), "b".repeat(127))).is_ok());
        assert!(check_grammar(&format!("{}/b", "a".repeat(128))).is_err());
    }
}
