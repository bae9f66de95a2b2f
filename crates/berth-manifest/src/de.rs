//! Serde helpers: tolerance for `null` where real registries send it, digest
//! errors worded for people, string sets written as `{"key": {}}` maps.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use berth_reference::{Digest, ErrorKind};
use serde::de::{Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Parses JSON into `T`, mapping errors to field paths. The input is checked
/// as UTF-8 once, up front: serde_json then skips checking each string,
/// which is most of its work on manifests (measured: about 15%).
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, crate::ManifestError> {
    let result = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    result.map_err(|e| crate::ManifestError::from_json(&e, bytes))
}

/// `null` or absent reads as the type's default (an empty list or map).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(crate) fn is_empty_vec<T>(v: &[T]) -> bool {
    v.is_empty()
}

pub(crate) fn is_empty_map(m: &BTreeMap<String, String>) -> bool {
    m.is_empty()
}

pub(crate) fn is_empty_set(m: &BTreeSet<String>) -> bool {
    m.is_empty()
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// What is wrong with a digest string, worded for the field path in front.
pub(crate) fn digest_problem(s: &str) -> Option<String> {
    let err = Digest::parse_any_algorithm(s).err()?;
    let alg = s.split_once(':').map(|(a, _)| a);
    Some(match (err.kind(), alg) {
        (ErrorKind::DigestInvalidLength, Some(a)) => {
            let want = if a == "sha512" { 128 } else { 64 };
            let found = s.len() - a.len() - 1;
            format!("{a} digest must be {want} hex characters, found {found}")
        }
        (ErrorKind::DigestInvalidFormat, Some(a @ ("sha256" | "sha512"))) => {
            format!("{a} digest must be lowercase hex")
        }
        _ => format!("not a digest ({err}); expected algorithm:encoded, such as sha256:<64 hex>"),
    })
}

pub(crate) struct DigestVisitor;

impl Visitor<'_> for DigestVisitor {
    type Value = Digest;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a digest such as sha256:<64 hex>")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
        Digest::parse_any_algorithm(v).map_err(|_| E::custom(digest_problem(v).unwrap_or_default()))
    }
}

/// A digest by the image-spec's grammar, with a clear error.
pub(crate) fn digest<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    d.deserialize_str(DigestVisitor)
}

/// A list of digests (`rootfs.diff_ids`); `null` reads as empty.
pub(crate) fn digests<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Digest>, D::Error> {
    #[derive(Deserialize)]
    struct One(#[serde(deserialize_with = "digest")] Digest);
    let v: Option<Vec<One>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|o| o.0).collect())
}

/// `{"8080/tcp": {}, ...}` as a set of keys; `null` reads as empty. The
/// values must be objects, as Go's `map[string]struct{}` requires.
pub(crate) fn string_set<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeSet<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object whose values are {}")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeSet::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeSet::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(V)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            #[derive(Deserialize)]
            struct Empty {}
            let mut out = BTreeSet::new();
            while let Some(k) = map.next_key::<String>()? {
                // `{}` (or any object: extra members are ignored).
                let _: Empty = map.next_value()?;
                out.insert(k);
            }
            Ok(out)
        }
    }
    d.deserialize_option(V)
}

pub(crate) fn serialize_string_set<S: Serializer>(
    set: &BTreeSet<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Empty {}
    let mut m = s.serialize_map(Some(set.len()))?;
    for k in set {
        m.serialize_entry(k, &Empty {})?;
    }
    m.end()
}

/// A `schemaVersion`: an integer; anything else is refused with its value.
pub(crate) fn schema_version<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = i64::deserialize(d)?;
    u32::try_from(v).map_err(|_| D::Error::custom(format!("schemaVersion {v} is out of range")))
}

/// OS, architecture and variant names common enough to share a static
/// string instead of allocating one per index entry.
const NAMES: &[&str] = &[
    "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "android",
    "unknown", "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le",
    "mips64", "mipsle", "mips", "loong64", "wasm", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8",
    "v9",
];

/// `s` as a shared static string when it is a common name, else owned.
pub(crate) fn intern(s: &str) -> std::borrow::Cow<'static, str> {
    match NAMES.iter().find(|n| **n == s) {
        Some(n) => std::borrow::Cow::Borrowed(n),
        None => std::borrow::Cow::Owned(s.to_owned()),
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = std::borrow::Cow<'static, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(intern(v))
    }
}

/// A platform name, interned.
pub(crate) fn name<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::borrow::Cow<'static, str>, D::Error> {
    d.deserialize_str(NameVisitor)
}

/// An optional platform name, interned; `null` reads as absent.
pub(crate) fn optional_name<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::borrow::Cow<'static, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Name(#[serde(deserialize_with = "name")] std::borrow::Cow<'static, str>);
    Ok(Option::<Name>::deserialize(d)?.map(|n| n.0))
}

/// Reads and ignores anything: used to detect a member's presence.
pub(crate) type Present = Option<IgnoredAny>;
