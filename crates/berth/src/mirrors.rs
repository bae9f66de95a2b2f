//! `registries.conf` (containers-registries.conf(5), version 2), read into
//! the protocol core's mirror table: which sources to pull a reference
//! from, in which order. Reading the file is the caller's choice (the CLI's
//! `--registries-conf FILE`).

use std::path::Path;

use berth_protocol::mirror::{Mirror, PullFromMirror, Registries, RegistryEntry};
use serde::Deserialize;

use crate::error::Error;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    registry: Vec<RegistryToml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistryToml {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<MirrorToml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct MirrorToml {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

/// Parses registries.conf text (`[[registry]]` tables with their
/// `[[registry.mirror]]`s; other keys are ignored).
pub fn parse_registries_conf(text: &str) -> Result<Registries, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    for (i, r) in file.registry.into_iter().enumerate() {
        if r.prefix.is_empty() && r.location.is_empty() {
            return Err(format!("registry[{i}]: needs a prefix or a location"));
        }
        // As containers/image: a wildcard names many registries, so no one
        // location can stand for them.
        if r.prefix.starts_with("*.") && !r.location.is_empty() {
            return Err(format!(
                "registry[{i}]: the wildcard prefix {:?} cannot have a location",
                r.prefix
            ));
        }
        let mut mirrors = Vec::new();
        for (j, m) in r.mirror.into_iter().enumerate() {
            let pull_from_mirror = match m.pull_from_mirror.as_deref() {
                None | Some("all") => PullFromMirror::All,
                Some("digest-only") => PullFromMirror::DigestOnly,
                Some("tag-only") => PullFromMirror::TagOnly,
                Some(other) => {
                    return Err(format!(
                        "registry[{i}].mirror[{j}].pull-from-mirror: unknown value {other:?}"
                    ));
                }
            };
            mirrors.push(Mirror {
                location: m.location,
                insecure: m.insecure,
                pull_from_mirror,
            });
        }
        entries.push(RegistryEntry {
            prefix: r.prefix,
            location: r.location,
            insecure: r.insecure,
            blocked: r.blocked,
            mirror_by_digest_only: r.mirror_by_digest_only,
            mirrors,
        });
    }
    Ok(Registries { entries })
}

/// Reads and parses a registries.conf file.
pub fn read_registries_conf(path: &Path) -> Result<Registries, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_registries_conf(&text).map_err(|e| Error::layout(path, format!("registries.conf: {e}")))
}

/// The registries (`host[:port]`, or a `*.` wildcard) a configuration marks
/// insecure, mirrors included, for the endpoint policy. berth's insecure
/// setting is per host: `insecure` on an entry whose prefix has a path
/// (`example.com/team`) covers the whole host.
pub fn insecure_hosts(registries: &Registries) -> Vec<String> {
    let host = |location: &str| location.split('/').next().unwrap_or(location).to_owned();
    let mut out = Vec::new();
    for e in &registries.entries {
        if e.insecure {
            out.push(host(if e.location.is_empty() {
                &e.prefix
            } else {
                &e.location
            }));
        }
        out.extend(
            e.mirrors
                .iter()
                .filter(|m| m.insecure)
                .map(|m| host(&m.location)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_v2_format() {
        let conf = parse_registries_conf(
            r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
mirror-by-digest-only = false

[[registry.mirror]]
location = "mirror.local:5000/hub"
insecure = true

[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "quay.io/blocked"
blocked = true
"#,
        )
        .expect("parses");
        assert_eq!(conf.entries.len(), 2);
        assert_eq!(
            conf.entries[0].mirrors[1].pull_from_mirror,
            PullFromMirror::DigestOnly
        );
        assert!(conf.entries[1].blocked);
        assert_eq!(insecure_hosts(&conf), ["mirror.local:5000"]);
        assert!(parse_registries_conf("[[registry]]\nprefix = 1").is_err());
        let wildcard =
            parse_registries_conf("[[registry]]\nprefix = \"*.corp.example\"\ninsecure = true")
                .expect("a wildcard without location");
        assert_eq!(insecure_hosts(&wildcard), ["*.corp.example"]);
        let e = parse_registries_conf(
            "[[registry]]\nprefix = \"*.corp.example\"\nlocation = \"r.example\"",
        )
        .expect_err("a wildcard with a location");
        assert!(e.contains("wildcard"), "{e}");
        assert!(
            parse_registries_conf(
                "[[registry]]\n[[registry.mirror]]\nlocation = \"x\"\npull-from-mirror = \"some\""
            )
            .is_err()
        );
    }
}
