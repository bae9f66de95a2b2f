//! Mirrors and blocked registries, as `containers-registries.conf(5)`
//! describes them, as data: which sources to pull a reference from, in
//! which order, and with whose credentials. Parsing the file is the client's
//! job; this is the decision.

use berth_reference::Reference;

use crate::endpoint::{canonical_registry, host_of};

/// When a mirror may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFromMirror {
    /// For any reference (the default).
    #[default]
    All,
    /// Only for references by digest (a mirror cannot vouch for tags).
    DigestOnly,
    /// Only for references by tag.
    TagOnly,
}

/// One mirror of a registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Where the mirror is: `host[:port][/namespace]`.
    pub location: String,
    /// Plain http allowed, TLS not verified.
    pub insecure: bool,
    /// When to use it.
    pub pull_from_mirror: PullFromMirror,
}

/// A `[[registry]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryEntry {
    /// What references it applies to: `host[:port][/namespace...]`, or
    /// `*.example.com` for every subdomain. Empty means `location`.
    pub prefix: String,
    /// Where the registry really is (rewrites the prefix); empty means the
    /// prefix itself.
    pub location: String,
    /// Plain http allowed for the location.
    pub insecure: bool,
    /// Pulls are refused.
    pub blocked: bool,
    /// Mirrors are used only for references by digest (the older switch).
    pub mirror_by_digest_only: bool,
    /// The mirrors, tried in order before the location.
    pub mirrors: Vec<Mirror>,
}

/// A registries.conf as data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registries {
    /// The entries.
    pub entries: Vec<RegistryEntry>,
}

/// One place to pull from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The reference rewritten for this source.
    pub reference: Reference,
    /// Whether this source is a mirror (its own credentials only: never the
    /// primary registry's).
    pub is_mirror: bool,
    /// Plain http allowed, TLS not verified.
    pub insecure: bool,
}

/// Why a reference cannot be pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceError {
    /// The matching entry is blocked.
    Blocked,
    /// A rewritten reference is not valid (the entry's location is bad).
    BadRewrite(String),
}

impl Registries {
    /// The entry with the longest prefix matching `name` (`domain/path`).
    pub fn entry_for(&self, name: &str) -> Option<&RegistryEntry> {
        self.entries
            .iter()
            .filter(|e| matches_prefix(effective_prefix(e), name))
            .max_by_key(|e| effective_prefix(e).len())
    }

    /// The sources to pull `reference` from, in order: usable mirrors, then
    /// the (possibly relocated) registry itself.
    pub fn pull_sources(&self, reference: &Reference) -> Result<Vec<PullSource>, SourceError> {
        let name = reference.name();
        let Some(entry) = self.entry_for(name) else {
            return Ok(vec![PullSource {
                reference: reference.clone(),
                is_mirror: false,
                insecure: false,
            }]);
        };
        if entry.blocked {
            return Err(SourceError::Blocked);
        }
        let prefix = effective_prefix(entry);
        let by_digest = reference.digest().is_some();
        let mut out = Vec::new();
        for m in &entry.mirrors {
            let usable = match m.pull_from_mirror {
                _ if entry.mirror_by_digest_only && !by_digest => false,
                PullFromMirror::All => true,
                PullFromMirror::DigestOnly => by_digest,
                PullFromMirror::TagOnly => !by_digest,
            };
            if usable {
                out.push(PullSource {
                    reference: rewrite(reference, prefix, &m.location)?,
                    is_mirror: true,
                    insecure: m.insecure,
                });
            }
        }
        // No location: the registry is where the reference says.
        out.push(PullSource {
            reference: rewrite(reference, prefix, &entry.location)?,
            is_mirror: false,
            insecure: entry.insecure,
        });
        Ok(out)
    }

    /// Whether a mirror may be given the credentials of `primary`: only
    /// when it is the same registry.
    pub fn may_share_credentials(primary: &Reference, mirror: &Reference) -> bool {
        canonical_registry(primary.domain()) == canonical_registry(mirror.domain())
    }
}

fn effective_prefix(e: &RegistryEntry) -> &str {
    if e.prefix.is_empty() {
        &e.location
    } else {
        &e.prefix
    }
}

/// `prefix` matches `name` at a component boundary; `*.example.com`
/// matches any subdomain's names.
fn matches_prefix(prefix: &str, name: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or("");
        return crate::endpoint::is_subdomain(host_of(host), domain);
    }
    name == prefix || (name.starts_with(prefix) && name[prefix.len()..].starts_with('/'))
}

fn rewrite(reference: &Reference, prefix: &str, location: &str) -> Result<Reference, SourceError> {
    let text = reference.to_string();
    // What the prefix matched: for a wildcard, the reference's whole host,
    // as containers/image rewrites it.
    let matched = if prefix.starts_with("*.") {
        reference.domain().len()
    } else {
        prefix.len()
    };
    let rewritten = if location.is_empty() {
        text
    } else {
        format!("{location}{}", &text[matched..])
    };
    Reference::parse(&rewritten).map_err(|e| SourceError::BadRewrite(format!("{rewritten}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).expect("reference")
    }

    fn conf() -> Registries {
        Registries {
            entries: vec![
                RegistryEntry {
                    prefix: "docker.io".into(),
                    mirrors: vec![
                        Mirror {
                            location: "mirror.local:5000/hub".into(),
                            insecure: true,
                            pull_from_mirror: PullFromMirror::All,
                        },
                        Mirror {
                            location: "digests.local".into(),
                            insecure: false,
                            pull_from_mirror: PullFromMirror::DigestOnly,
                        },
                    ],
                    ..RegistryEntry::default()
                },
                RegistryEntry {
                    prefix: "docker.io/library/secret".into(),
                    blocked: true,
                    ..RegistryEntry::default()
                },
                RegistryEntry {
                    prefix: "old.example/team".into(),
                    location: "new.example/team".into(),
                    ..RegistryEntry::default()
                },
                RegistryEntry {
                    prefix: "*.corp.example".into(),
                    insecure: true,
                    mirrors: vec![Mirror {
                        location: "mirror.corp:5000/cache".into(),
                        insecure: false,
                        pull_from_mirror: PullFromMirror::All,
                    }],
                    ..RegistryEntry::default()
                },
            ],
        }
    }

    #[test]
    fn mirrors_in_order_then_the_registry() {
        let s = conf().pull_sources(&r("ubuntu:24.04")).expect("sources");
        let refs: Vec<String> = s.iter().map(|p| p.reference.to_string()).collect();
        assert_eq!(
            refs,
            [
                "mirror.local:5000/hub/library/ubuntu:24.04",
                "docker.io/library/ubuntu:24.04"
            ]
        );
        assert!(s[0].is_mirror && s[0].insecure && !s[1].is_mirror);
        let digest = format!("ubuntu@sha256:{}", "a".repeat(64));
        let s = conf().pull_sources(&r(&digest)).expect("sources");
        assert_eq!(s.len(), 3, "the digest-only mirror joins for a digest");
        assert!(!Registries::may_share_credentials(
            &r("ubuntu"),
            &s[0].reference
        ));
    }

    #[test]
    fn longest_prefix_blocked_relocated_and_wildcards() {
        assert_eq!(conf().pull_sources(&r("secret")), Err(SourceError::Blocked));
        assert!(
            conf().pull_sources(&r("secretive")).is_ok(),
            "prefixes match whole components"
        );
        let s = conf()
            .pull_sources(&r("old.example/team/app:1"))
            .expect("sources");
        assert_eq!(s[0].reference.to_string(), "new.example/team/app:1");
        let s = conf()
            .pull_sources(&r("reg.corp.example/x"))
            .expect("sources");
        assert_eq!(
            s.iter()
                .map(|p| p.reference.to_string())
                .collect::<Vec<_>>(),
            ["mirror.corp:5000/cache/x", "reg.corp.example/x"],
            "a wildcard's mirror takes the place of the matched host"
        );
        assert!(s[0].is_mirror && !s[0].insecure);
        assert!(!s[1].is_mirror && s[1].insecure);
        let s = conf().pull_sources(&r("quay.io/x")).expect("sources");
        assert_eq!(s.len(), 1);
    }
}
