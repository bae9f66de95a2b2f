//! The image configuration (`application/vnd.oci.image.config.v1+json`, and
//! Docker's container config, which has the same shape).

use std::collections::{BTreeMap, BTreeSet};

use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::error::{ManifestError, Path};
use crate::platform::Platform;

/// An image configuration: platform, runtime defaults, layer diff IDs and
/// history.
///
/// Tolerant of what real registries hold: `null` lists and maps (`"Env":
/// null`, `"history": null`), a `rootfs` without `diff_ids`, and fields this
/// type does not know are ignored.
///
/// ```
/// use berth_manifest::ImageConfig;
/// let c = ImageConfig::from_slice(br#"{"architecture":"amd64","os":"linux",
///     "config":{"Env":null,"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}}},
///     "rootfs":{"type":"layers"},"history":null}"#)?;
/// assert!(c.config.as_ref().is_some_and(|r| r.env.is_empty() && r.exposed_ports.contains("80/tcp")));
/// assert!(c.rootfs.diff_ids.is_empty() && c.history.is_empty());
/// # Ok::<(), berth_manifest::ManifestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageConfig {
    /// When the image was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The CPU architecture.
    pub architecture: String,
    /// The operating system.
    pub os: String,
    /// The OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features required (Windows).
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub os_features: Vec<String>,
    /// The CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Defaults for running a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    /// The uncompressed layers' digests.
    #[serde(default)]
    pub rootfs: RootFs,
    /// How each layer was made, base first. `null` reads as empty.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub history: Vec<History>,
}

/// The runtime defaults of an image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// `user`, `uid`, `user:group`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Ports to expose (`8080/tcp`).
    #[serde(
        default,
        deserialize_with = "de::string_set",
        serialize_with = "de::serialize_string_set",
        skip_serializing_if = "de::is_empty_set"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// Environment, `NAME=value`. `null` reads as empty.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub env: Vec<String>,
    /// The entrypoint; `None` when absent or `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments; `None` when absent or `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Volumes.
    #[serde(
        default,
        deserialize_with = "de::string_set",
        serialize_with = "de::serialize_string_set",
        skip_serializing_if = "de::is_empty_set"
    )]
    pub volumes: BTreeSet<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Labels. `null` reads as empty.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// The signal that stops the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Windows: whether `Cmd`/`Entrypoint` are already escaped (deprecated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Docker: build triggers. `null` reads as empty.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub on_build: Vec<String>,
    /// Docker: the shell for shell-form commands.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub shell: Vec<String>,
}

/// The layers' uncompressed digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default = "layers")]
    pub kind: String,
    /// One digest per layer, base first; absent or `null` reads as empty.
    #[serde(default, deserialize_with = "de::digests")]
    pub diff_ids: Vec<Digest>,
}

fn layers() -> String {
    "layers".to_owned()
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of an image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct History {
    /// When the step ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the step made no layer.
    #[serde(default, skip_serializing_if = "de::is_false")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// A config for `platform`, with nothing else set.
    pub fn new(platform: &Platform) -> Self {
        ImageConfig {
            created: None,
            author: None,
            architecture: platform.architecture.to_string(),
            os: platform.os.to_string(),
            os_version: platform.os_version.clone(),
            os_features: platform.os_features.clone(),
            variant: platform.variant.as_deref().map(str::to_owned),
            config: None,
            rootfs: RootFs::default(),
            history: Vec::new(),
        }
    }

    /// Parses and validates.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let c: ImageConfig = de::from_json(bytes)?;
        c.validate()?;
        Ok(c)
    }

    /// The platform this image is for.
    pub fn platform(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.architecture);
        p.variant = self.variant.as_deref().map(crate::de::intern);
        p.os_version = self.os_version.clone();
        p.os_features = self.os_features.clone();
        p
    }

    /// Checks what the types do not: `rootfs.type` is `layers`, every `Env`
    /// entry is `NAME=value` with a non-empty name (`^[^=]+=.*$`).
    pub fn validate(&self) -> Result<(), ManifestError> {
        let at = Path::Root;
        if self.rootfs.kind != "layers" {
            return Err(at
                .field("rootfs")
                .field("type")
                .error(format!("must be \"layers\", found {:?}", self.rootfs.kind)));
        }
        if let Some(rc) = &self.config {
            let config = at.field("config");
            let env = config.field("Env");
            for (i, e) in rc.env.iter().enumerate() {
                match e.find('=') {
                    // Go's `.` stops at a newline: the value may not hold one.
                    Some(n) if n > 0 && !e[n + 1..].contains('\n') => {}
                    _ => {
                        return Err(env
                            .index(i)
                            .error(format!("must be NAME=value, found {e:?}")));
                    }
                }
            }
        }
        Ok(())
    }
}
