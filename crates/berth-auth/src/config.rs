//! Credentials files: Docker's `config.json` and containers' `auth.json`,
//! parsed from bytes (reading the file is the client's job).
//!
//! Both files share one format:
//!
//! ```json
//! {
//!   "auths": {
//!     "https://index.docker.io/v1/": { "auth": "dXNlcjpwYXNz" },
//!     "quay.io/org": { "username": "u", "password": "p" },
//!     "ghcr.io": { "identitytoken": "..." }
//!   },
//!   "credsStore": "desktop",
//!   "credHelpers": { "123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login" }
//! }
//! ```
//!
//! Within one file, Docker's order applies: `credHelpers` for the registry,
//! then `credsStore`, then `auths`. `auths` keys may name a namespace
//! (`quay.io/org`, a containers extension): the most specific key wins. Keys
//! are normalised before matching: a scheme (`https://`) and an API path
//! (`/v1/`, `/v2/`) are dropped, the host is lower-cased, and Docker Hub's
//! names (`index.docker.io`, `registry-1.docker.io`, `docker.io`) are one.
//!
//! A file is kept as an ordered JSON tree, so writing it back after
//! [`DockerConfig::set_credentials`] or [`DockerConfig::remove_credentials`]
//! changes only the `auths` entry concerned: every other key keeps its value
//! and its place.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::secret::Secret;

/// Standard base64, padded or not (Docker writes padding; some tools do not).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The `auths` key Docker uses for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The keys of an `auths` entry that hold credentials.
const CREDENTIAL_KEYS: [&str; 5] = [
    "auth",
    "username",
    "password",
    "identitytoken",
    "registrytoken",
];

/// A credentials file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or a value of the wrong kind where an object is needed. The
    /// message gives the line and column and never quotes a value.
    #[error("credentials file is not valid: {0}")]
    Json(#[source] serde_json::Error),
    /// A known key holds a value of the wrong type.
    #[error("credentials file: {path} should be {expected}")]
    Shape {
        /// Where, as `auths["quay.io"].auth`.
        path: String,
        /// What it should be.
        expected: &'static str,
    },
    /// An `auth` value is not base64.
    #[error("credentials file: auths[{key:?}].auth is not valid base64")]
    AuthBase64 {
        /// The `auths` key.
        key: String,
    },
    /// An `auth` value does not decode to UTF-8 `username:password`.
    #[error("credentials file: auths[{key:?}].auth does not decode to \"username:password\"")]
    AuthFormat {
        /// The `auths` key.
        key: String,
    },
}

/// Credentials found inline in a file. `Debug` shows the username only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// A username and password (from `auth`, or `username` and `password`).
    Basic {
        /// The username.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token
    /// endpoint.
    IdentityToken(Secret),
    /// A bearer token sent to the registry as it is (`registrytoken`).
    RegistryToken(Secret),
}

/// Where the credentials for a registry come from, following Docker's order
/// within one file. Running a helper or store is the client's job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `credHelpers` names a helper for this registry: run
    /// `docker-credential-<name> get`.
    Helper(String),
    /// `credsStore` names a store for every registry: run
    /// `docker-credential-<name> get`.
    Store(String),
    /// An `auths` entry holds the credentials.
    Inline(Credentials),
    /// The file has nothing for this registry.
    None,
}

/// A JSON value that keeps the order of object keys.
#[derive(Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

fn get<'j>(obj: &'j [(String, Json)], key: &str) -> Option<&'j Json> {
    obj.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Objects with more keys than this get a hash index while parsing, so that
/// repeated keys (the last wins, as in Go) are found in constant time.
const INDEX_AFTER: usize = 16;

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Json>()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out: Vec<(String, Json)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Json>()?;
            let slot = if out.len() > INDEX_AFTER {
                if index.is_empty() {
                    index = out
                        .iter()
                        .enumerate()
                        .map(|(k, (name, _))| (name.clone(), k))
                        .collect();
                }
                index.get(&key).copied()
            } else {
                out.iter().position(|(k, _)| *k == key)
            };
            match slot {
                Some(k) => out[k].1 = value,
                None => {
                    if !index.is_empty() {
                        index.insert(key.clone(), out.len());
                    }
                    out.push((key, value));
                }
            }
        }
        Ok(Json::Object(out))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => Object(entries).serialize(s),
        }
    }
}

/// An ordered object, serialised in place (the file's root is kept as one).
struct Object<'j>(&'j [(String, Json)]);

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Normalises an `auths` (or `credHelpers`) key, or a registry name, for
/// matching:
///
/// - a scheme (`https://`, `http://`) is dropped, and with it any path
///   (keys written as URLs name a registry: `https://index.docker.io/v1/`);
/// - otherwise a trailing `/`, and an API path `/v1` or `/v2`, are dropped,
///   and a namespace path (`quay.io/org`) is kept;
/// - the host is lower-cased, and `index.docker.io`, `registry-1.docker.io`,
///   `www.docker.io`, `registry.hub.docker.com` and `docker.io` all become
///   `docker.io`;
/// - a default port is dropped: `host:443` (https's) and `host:80` (http's)
///   are `host`.
///
/// ```
/// use berth_auth::normalize_auth_key;
/// assert_eq!(normalize_auth_key("https://index.docker.io/v1/"), "docker.io");
/// assert_eq!(normalize_auth_key("registry-1.docker.io"), "docker.io");
/// assert_eq!(normalize_auth_key("http://Quay.IO/v2/"), "quay.io");
/// assert_eq!(normalize_auth_key("quay.io/org/"), "quay.io/org");
/// assert_eq!(normalize_auth_key("https://myreg.lan:443/v2/"), "myreg.lan");
/// assert_eq!(normalize_auth_key("http://myreg.lan:80"), "myreg.lan");
/// ```
pub fn normalize_auth_key(key: &str) -> String {
    let key = key.trim();
    let (had_scheme, rest) = strip_scheme(key);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut host = host.to_ascii_lowercase();
    for default_port in [":443", ":80"] {
        if let Some(h) = host.strip_suffix(default_port)
            && !h.is_empty()
            && (!h.contains(':') || h.ends_with(']'))
        {
            host = h.to_owned();
        }
    }
    if matches!(
        host.as_str(),
        "index.docker.io" | "registry-1.docker.io" | "www.docker.io" | "registry.hub.docker.com"
    ) {
        host = "docker.io".to_owned();
    }
    let path = path.trim_matches('/');
    if had_scheme || path.is_empty() || path == "v1" || path == "v2" {
        host
    } else {
        format!("{host}/{path}")
    }
}

fn strip_scheme(key: &str) -> (bool, &str) {
    for scheme in ["https://", "http://"] {
        if let Some(prefix) = key.get(..scheme.len())
            && prefix.eq_ignore_ascii_case(scheme)
        {
            return (true, key.get(scheme.len()..).unwrap_or_default());
        }
    }
    (false, key)
}

/// The key Docker writes in `auths` (and passes to credential helpers) for a
/// registry: [`DOCKER_HUB_AUTH_KEY`] for Docker Hub, else the normalised
/// registry name.
pub fn docker_auth_key(registry: &str) -> String {
    match normalize_auth_key(registry) {
        n if n == "docker.io" => DOCKER_HUB_AUTH_KEY.to_owned(),
        n => n,
    }
}

/// A Docker `config.json` or containers `auth.json`, kept whole.
///
/// ```
/// use berth_auth::{CredentialSource, Credentials, DockerConfig};
/// let file = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}},"credHelpers":{"gcr.io":"gcloud"}}"#;
/// let config = DockerConfig::parse(file)?;
/// match config.lookup("registry-1.docker.io", "library/ubuntu")? {
///     CredentialSource::Inline(Credentials::Basic { username, password }) => {
///         assert_eq!(username, "user");
///         assert_eq!(password.expose(), "pass");
///     }
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(config.lookup("gcr.io", "p/img")?, CredentialSource::Helper("gcloud".into()));
/// # Ok::<(), berth_auth::ConfigError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct DockerConfig {
    root: Vec<(String, Json)>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self::new()
    }
}

fn shape(path: String, expected: &'static str) -> ConfigError {
    ConfigError::Shape { path, expected }
}

impl DockerConfig {
    /// An empty file (`{}`); writing it after a login gives `{"auths": {...}}`.
    pub fn new() -> Self {
        DockerConfig { root: Vec::new() }
    }

    /// Parses a file's bytes. An empty (or all-whitespace) file holds no
    /// entries. Known keys must have their types (`auths` an object of
    /// objects whose credential fields are strings, `credsStore` a string,
    /// `credHelpers` an object of strings; `null` counts as absent); unknown
    /// keys may hold anything and are kept. Invalid base64 in `auth` is
    /// reported by [`lookup`](Self::lookup) for that registry only.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::new());
        }
        let json: Json = serde_json::from_slice(bytes).map_err(ConfigError::Json)?;
        let Json::Object(root) = json else {
            return Err(shape("the file".to_owned(), "a JSON object"));
        };
        if let Some(auths) = get(&root, "auths") {
            match auths {
                Json::Null => {}
                Json::Object(entries) => {
                    for (key, entry) in entries {
                        let Some(fields) = entry.as_object() else {
                            return Err(shape(format!("auths[{key:?}]"), "an object"));
                        };
                        for name in CREDENTIAL_KEYS.iter().chain(&["email"]) {
                            match get(fields, name) {
                                None | Some(Json::Null | Json::String(_)) => {}
                                Some(_) => {
                                    return Err(shape(
                                        format!("auths[{key:?}].{name}"),
                                        "a string",
                                    ));
                                }
                            }
                        }
                    }
                }
                _ => return Err(shape("auths".to_owned(), "an object")),
            }
        }
        match get(&root, "credsStore") {
            None | Some(Json::Null | Json::String(_)) => {}
            Some(_) => return Err(shape("credsStore".to_owned(), "a string")),
        }
        match get(&root, "credHelpers") {
            None | Some(Json::Null) => {}
            Some(Json::Object(helpers)) => {
                if let Some((key, _)) = helpers.iter().find(|(_, v)| v.as_str().is_none()) {
                    return Err(shape(format!("credHelpers[{key:?}]"), "a string"));
                }
            }
            Some(_) => return Err(shape("credHelpers".to_owned(), "an object")),
        }
        Ok(DockerConfig { root })
    }

    /// The file as JSON, indented with tabs as Docker writes it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        Object(&self.root)
            .serialize(&mut ser)
            .expect("an ordered JSON tree always serialises into a Vec");
        out
    }

    /// The top-level keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.root.iter().map(|(k, _)| k.as_str())
    }

    /// A top-level value as `serde_json::Value` (object key order is lost in
    /// the copy; the file itself keeps it).
    pub fn get(&self, key: &str) -> Option<serde_json::Value> {
        get(&self.root, key).map(to_value)
    }

    /// `credsStore`, when set and not empty.
    pub fn creds_store(&self) -> Option<&str> {
        get(&self.root, "credsStore")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `credHelpers`: (registry key, helper name), in file order.
    pub fn cred_helpers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let helpers = get(&self.root, "credHelpers")
            .and_then(Json::as_object)
            .unwrap_or_default();
        helpers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// The `auths` keys, in file order.
    pub fn auth_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.auths().iter().map(|(k, _)| k.as_str())
    }

    fn auths(&self) -> &[(String, Json)] {
        get(&self.root, "auths")
            .and_then(Json::as_object)
            .unwrap_or_default()
    }

    /// Where the credentials for `repository` on `registry` come from
    /// (Docker's order: `credHelpers` for the registry, then `credsStore`,
    /// then `auths`, most specific key first: `registry/a/b`, `registry/a`,
    /// `registry`). Among keys that match a candidate, the one written
    /// exactly so wins over one that only normalises to it. An `auths` entry
    /// without credentials (as Docker leaves beside a store) does not count.
    /// `repository` may be empty for a registry-wide lookup.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<CredentialSource, ConfigError> {
        let registry_key = normalize_auth_key(registry);
        let host = registry_key
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let helper = self
            .cred_helpers()
            .find(|(k, _)| *k == registry)
            .or_else(|| {
                self.cred_helpers()
                    .find(|(k, _)| normalize_auth_key(k) == host)
            });
        if let Some((_, name)) = helper {
            return Ok(CredentialSource::Helper(name.to_owned()));
        }
        if let Some(store) = self.creds_store() {
            return Ok(CredentialSource::Store(store.to_owned()));
        }
        let repository = repository.trim_matches('/');
        let mut candidate = if repository.is_empty() {
            host.clone()
        } else {
            format!("{host}/{repository}")
        };
        let auths = self.auths();
        let normalised: Vec<String> = auths.iter().map(|(k, _)| normalize_auth_key(k)).collect();
        loop {
            let exact = auths.iter().position(|(k, _)| *k == candidate);
            let found = exact.into_iter().chain(
                normalised
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n == candidate)
                    .map(|(k, _)| k),
            );
            for k in found {
                let (key, entry) = &auths[k];
                if let Some(credentials) = entry_credentials(key, entry)? {
                    return Ok(CredentialSource::Inline(credentials));
                }
            }
            match candidate.rfind('/') {
                Some(cut) if candidate.len() > host.len() => candidate.truncate(cut),
                _ => return Ok(CredentialSource::None),
            }
        }
    }

    /// Stores `credentials` in `auths` for `key` (a registry, or
    /// `registry/namespace` for auth.json), as `berth login` does. An entry
    /// whose key normalises to the same name is updated in place (its
    /// credential fields replaced, other fields kept); otherwise a new entry
    /// is added under [`docker_auth_key`]'s spelling.
    pub fn set_credentials(&mut self, key: &str, credentials: &Credentials) {
        let (name, value) = match credentials {
            Credentials::Basic { username, password } => (
                "auth",
                BASE64.encode(format!("{username}:{}", password.expose())),
            ),
            Credentials::IdentityToken(t) => ("identitytoken", t.expose().to_owned()),
            Credentials::RegistryToken(t) => ("registrytoken", t.expose().to_owned()),
        };
        let wanted = normalize_auth_key(key);
        let new_key = if wanted.contains('/') {
            wanted.clone()
        } else {
            docker_auth_key(key)
        };
        self.with_auths(|auths| {
            let existing = auths
                .iter_mut()
                .find(|(k, _)| normalize_auth_key(k) == wanted);
            if let Some((_, Json::Object(fields))) = existing {
                let at = fields
                    .iter()
                    .position(|(k, _)| CREDENTIAL_KEYS.contains(&k.as_str()))
                    .unwrap_or(fields.len());
                fields.retain(|(k, _)| !CREDENTIAL_KEYS.contains(&k.as_str()));
                fields.insert(at.min(fields.len()), (name.to_owned(), Json::String(value)));
            } else {
                auths.push((
                    new_key,
                    Json::Object(vec![(name.to_owned(), Json::String(value))]),
                ));
            }
        });
    }

    /// Removes the `auths` entries whose key normalises to `key`'s
    /// normalisation, as `berth logout` does. Returns whether one was there.
    pub fn remove_credentials(&mut self, key: &str) -> bool {
        if self.auths().is_empty() {
            return false;
        }
        let wanted = normalize_auth_key(key);
        self.with_auths(|auths| {
            let before = auths.len();
            auths.retain(|(k, _)| normalize_auth_key(k) != wanted);
            auths.len() != before
        })
    }

    /// Runs `f` on the `auths` entries, creating `auths` (first in the file)
    /// when it is missing or null.
    fn with_auths<R>(&mut self, f: impl FnOnce(&mut Vec<(String, Json)>) -> R) -> R {
        let at = match self.root.iter().position(|(k, _)| k == "auths") {
            Some(at) => at,
            None => {
                self.root
                    .insert(0, ("auths".to_owned(), Json::Object(Vec::new())));
                0
            }
        };
        let mut entries = Vec::new();
        if let Some((_, slot)) = self.root.get_mut(at)
            && let Json::Object(e) = std::mem::replace(slot, Json::Null)
        {
            entries = e;
        }
        let result = f(&mut entries);
        if let Some((_, slot)) = self.root.get_mut(at) {
            *slot = Json::Object(entries);
        }
        result
    }
}

fn to_value(j: &Json) -> serde_json::Value {
    use serde_json::Value;
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
    }
}

/// The credentials of one `auths` entry: `registrytoken`, then
/// `identitytoken`, then `auth` (base64 `username:password`), then
/// `username` + `password`.
fn entry_credentials(key: &str, entry: &Json) -> Result<Option<Credentials>, ConfigError> {
    let fields = entry.as_object().unwrap_or_default();
    let field = |name: &str| {
        get(fields, name)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(t) = field("registrytoken") {
        return Ok(Some(Credentials::RegistryToken(Secret::new(t))));
    }
    if let Some(t) = field("identitytoken") {
        return Ok(Some(Credentials::IdentityToken(Secret::new(t))));
    }
    if let Some(auth) = field("auth") {
        let bytes = BASE64
            .decode(auth.trim())
            .map_err(|_| ConfigError::AuthBase64 {
                key: key.to_owned(),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::AuthFormat {
            key: key.to_owned(),
        })?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| ConfigError::AuthFormat {
                key: key.to_owned(),
            })?;
        let (user, pass) = (user.trim_matches('\0'), pass.trim_matches('\0'));
        if user.is_empty() && pass.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Credentials::Basic {
            username: user.to_owned(),
            password: Secret::new(pass),
        }));
    }
    match (field("username"), field("password")) {
        (Some(u), Some(p)) => Ok(Some(Credentials::Basic {
            username: u.to_owned(),
            password: Secret::new(p),
        })),
        _ => Ok(None),
    }
}

impl fmt::Debug for DockerConfig {
    /// Shows keys and helper names only: no `auths` value and no value of an
    /// unknown key (either may hold a secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let other: Vec<&str> = self
            .keys()
            .filter(|k| !matches!(*k, "auths" | "credsStore" | "credHelpers"))
            .collect();
        f.debug_struct("DockerConfig")
            .field("auths", &self.auth_keys().collect::<Vec<_>>())
            .field("creds_store", &self.creds_store())
            .field("cred_helpers", &self.cred_helpers().collect::<Vec<_>>())
            .field("other_keys", &other)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> DockerConfig {
        DockerConfig::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn basic(user: &str, pass: &str) -> CredentialSource {
        CredentialSource::Inline(Credentials::Basic {
            username: user.into(),
            password: Secret::new(pass),
        })
    }

    #[test]
    fn auth_is_base64_user_colon_password() {
        // "user:pa:ss" — the password may hold ':'.
        let c = config(r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYTpzcw=="}}}"#);
        assert_eq!(
            c.lookup("quay.io", "org/app").unwrap(),
            basic("user", "pa:ss")
        );
        // Unpadded base64 is accepted too.
        let c = config(r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYTpzcw"}}}"#);
        assert_eq!(c.lookup("quay.io", "").unwrap(), basic("user", "pa:ss"));
        let c = config(r#"{"auths":{"quay.io":{"username":"u","password":"p"}}}"#);
        assert_eq!(c.lookup("quay.io", "").unwrap(), basic("u", "p"));
        let c = config(r#"{"auths":{"quay.io":{"auth":"!!!"}}}"#);
        assert!(matches!(
            c.lookup("quay.io", ""),
            Err(ConfigError::AuthBase64 { .. })
        ));
        // "nocolon"
        let c = config(r#"{"auths":{"quay.io":{"auth":"bm9jb2xvbg=="}}}"#);
        assert!(matches!(
            c.lookup("quay.io", ""),
            Err(ConfigError::AuthFormat { .. })
        ));
        // A broken entry does not matter for another registry.
        assert_eq!(c.lookup("ghcr.io", "").unwrap(), CredentialSource::None);
    }

    #[test]
    fn tokens() {
        let c = config(
            r#"{"auths":{"a.io":{"auth":"dTpw","identitytoken":"refresh"},"b.io":{"registrytoken":"bearer","identitytoken":"x"}}}"#,
        );
        assert_eq!(
            c.lookup("a.io", "").unwrap(),
            CredentialSource::Inline(Credentials::IdentityToken("refresh".into()))
        );
        assert_eq!(
            c.lookup("b.io", "").unwrap(),
            CredentialSource::Inline(Credentials::RegistryToken("bearer".into()))
        );
    }

    #[test]
    fn helpers_then_store_then_auths() {
        let text = r#"{
            "auths": {"gcr.io": {"auth": "dTpw"}, "quay.io": {"auth": "dTpw"}, "docker.io": {}},
            "credsStore": "desktop",
            "credHelpers": {"gcr.io": "gcloud", "https://index.docker.io/v1/": "hub-helper"}
        }"#;
        let c = config(text);
        assert_eq!(
            c.lookup("gcr.io", "p/i").unwrap(),
            CredentialSource::Helper("gcloud".into())
        );
        assert_eq!(
            c.lookup("registry-1.docker.io", "library/a").unwrap(),
            CredentialSource::Helper("hub-helper".into())
        );
        assert_eq!(
            c.lookup("quay.io", "x").unwrap(),
            CredentialSource::Store("desktop".into())
        );
        let c = config(&text.replace(r#""credsStore": "desktop","#, ""));
        assert_eq!(c.lookup("quay.io", "x").unwrap(), basic("u", "p"));
        assert_eq!(c.lookup("ghcr.io", "x").unwrap(), CredentialSource::None);
        let c = config(&text.replace(r#""credsStore": "desktop","#, r#""credsStore": "","#));
        assert_eq!(c.lookup("quay.io", "x").unwrap(), basic("u", "p"));
    }

    #[test]
    fn key_normalisation() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "https://registry-1.docker.io/v2/",
            "http://docker.io",
            "docker.io/v1/",
        ] {
            let c = config(&format!(r#"{{"auths":{{"{key}":{{"auth":"dTpw"}}}}}}"#));
            for registry in [
                "docker.io",
                "index.docker.io",
                "registry-1.docker.io",
                "https://index.docker.io/v1/",
            ] {
                assert_eq!(
                    c.lookup(registry, "library/ubuntu").unwrap(),
                    basic("u", "p"),
                    "{key} / {registry}"
                );
            }
        }
        assert_eq!(
            normalize_auth_key("HTTPS://Localhost:5000/"),
            "localhost:5000"
        );
        assert_eq!(normalize_auth_key("localhost:5000/v2"), "localhost:5000");
        assert_eq!(normalize_auth_key("https://quay.io/org"), "quay.io");
        assert_eq!(normalize_auth_key("quay.io/org/app"), "quay.io/org/app");
        assert_eq!(docker_auth_key("registry-1.docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(docker_auth_key("Quay.io"), "quay.io");
        for alias in [
            "myreg.lan",
            "myreg.lan:443",
            "myreg.lan:80",
            "https://myreg.lan:443/v2/",
            "http://myreg.lan:80",
            "https://MyReg.lan/v1/",
        ] {
            assert_eq!(normalize_auth_key(alias), "myreg.lan", "{alias}");
        }
        assert_eq!(normalize_auth_key("myreg.lan:8080"), "myreg.lan:8080");
        assert_eq!(normalize_auth_key("[::1]:80"), "[::1]");
        assert_eq!(docker_auth_key("www.docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(
            docker_auth_key("registry.hub.docker.com:443"),
            DOCKER_HUB_AUTH_KEY
        );
    }

    #[test]
    fn namespace_keys_most_specific_wins() {
        // u1:p1, u2:p2, u3:p3
        let c = config(
            r#"{"auths":{"quay.io":{"auth":"dTE6cDE="},"quay.io/org":{"auth":"dTI6cDI="},"quay.io/org/app":{"auth":"dTM6cDM="}}}"#,
        );
        assert_eq!(c.lookup("quay.io", "org/app").unwrap(), basic("u3", "p3"));
        assert_eq!(
            c.lookup("quay.io", "org/app/sub").unwrap(),
            basic("u3", "p3")
        );
        assert_eq!(c.lookup("quay.io", "org/other").unwrap(), basic("u2", "p2"));
        assert_eq!(c.lookup("quay.io", "orgx/app").unwrap(), basic("u1", "p1"));
        assert_eq!(c.lookup("quay.io", "").unwrap(), basic("u1", "p1"));
        assert_eq!(c.lookup("QUAY.IO", "org").unwrap(), basic("u2", "p2"));
        // An exact spelling wins over a key that only normalises to it.
        let c = config(
            r#"{"auths":{"https://quay.io":{"auth":"dTE6cDE="},"quay.io":{"auth":"dTI6cDI="}}}"#,
        );
        assert_eq!(c.lookup("quay.io", "a").unwrap(), basic("u2", "p2"));
        // An empty entry falls through to the less specific one.
        let c = config(r#"{"auths":{"quay.io":{"auth":"dTE6cDE="},"quay.io/org":{}}}"#);
        assert_eq!(c.lookup("quay.io", "org/app").unwrap(), basic("u1", "p1"));
    }

    #[test]
    fn shapes_are_checked_without_quoting_values() {
        for (text, needle) in [
            (
                r#"{"auths":{"x":"c2VjcmV0"}}"#,
                r#"auths["x"] should be an object"#,
            ),
            (
                r#"{"auths":{"x":{"auth":5}}}"#,
                "auths[\"x\"].auth should be a string",
            ),
            (r#"{"auths":[]}"#, "auths should be an object"),
            (r#"{"credsStore":{}}"#, "credsStore should be a string"),
            (
                r#"{"credHelpers":{"a":1}}"#,
                "credHelpers[\"a\"] should be a string",
            ),
            (r#""c2VjcmV0""#, "the file should be a JSON object"),
        ] {
            let e = DockerConfig::parse(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains("c2VjcmV0"), "{e}");
        }
        let e = DockerConfig::parse(br#"{"auths": {"x": {"auth": "c2VjcmV0"}"#).unwrap_err();
        assert!(matches!(e, ConfigError::Json(_)));
        assert!(!e.to_string().contains("c2VjcmV0"));
        assert_eq!(DockerConfig::parse(b"  \n").unwrap(), DockerConfig::new());
        let c = config(r#"{"auths":null,"credsStore":null,"credHelpers":null}"#);
        assert_eq!(c.lookup("a", "").unwrap(), CredentialSource::None);
    }

    #[test]
    fn login_and_logout_keep_everything_else() {
        let text = "{\n\t\"psFormat\": \"table {{.ID}}\",\n\t\"auths\": {\n\t\t\"quay.io\": {\n\t\t\t\"email\": \"a@b.c\",\n\t\t\t\"auth\": \"dTE6cDE=\"\n\t\t},\n\t\t\"https://index.docker.io/v1/\": {\n\t\t\t\"auth\": \"dTI6cDI=\"\n\t\t}\n\t},\n\t\"zeta\": [1, 2.5, {\"y\": 1, \"x\": null}],\n\t\"HttpHeaders\": {\n\t\t\"User-Agent\": \"me\"\n\t}\n}";
        let mut c = config(text);
        // Untouched: byte for byte the same layout (tab indentation, order).
        let same = String::from_utf8(c.to_json()).unwrap();
        assert_eq!(
            same,
            text.replace(
                "[1, 2.5, {\"y\": 1, \"x\": null}]",
                "[\n\t\t1,\n\t\t2.5,\n\t\t{\n\t\t\t\"y\": 1,\n\t\t\t\"x\": null\n\t\t}\n\t]"
            )
        );

        c.set_credentials(
            "quay.io",
            &Credentials::Basic {
                username: "new".into(),
                password: "pw".into(),
            },
        );
        c.set_credentials("ghcr.io", &Credentials::IdentityToken("tok".into()));
        c.set_credentials(
            "docker.io",
            &Credentials::Basic {
                username: "hub".into(),
                password: "x".into(),
            },
        );
        assert!(c.remove_credentials("index.docker.io"));
        assert!(!c.remove_credentials("nowhere.io"));
        let out: serde_json::Value = serde_json::from_slice(&c.to_json()).unwrap();
        let expected = serde_json::json!({
            "psFormat": "table {{.ID}}",
            "auths": {
                "quay.io": {"email": "a@b.c", "auth": "bmV3OnB3"},
                "ghcr.io": {"identitytoken": "tok"}
            },
            "zeta": [1, 2.5, {"y": 1, "x": null}],
            "HttpHeaders": {"User-Agent": "me"}
        });
        assert_eq!(out, expected);
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            ["psFormat", "auths", "zeta", "HttpHeaders"]
        );
        assert_eq!(
            c.get("HttpHeaders"),
            Some(serde_json::json!({"User-Agent": "me"}))
        );

        let mut empty = DockerConfig::new();
        empty.set_credentials(
            "registry-1.docker.io",
            &Credentials::Basic {
                username: "u".into(),
                password: "p".into(),
            },
        );
        let out: serde_json::Value = serde_json::from_slice(&empty.to_json()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}})
        );
        assert_eq!(DockerConfig::parse(&empty.to_json()).unwrap(), empty);
    }

    #[test]
    fn repeated_keys_last_wins_in_place() {
        let mut text = String::from("{");
        for k in 0..40 {
            text.push_str(&format!("\"k{k}\": {k}, "));
        }
        text.push_str("\"k3\": \"last\", \"k39\": true}");
        let c = config(&text);
        assert_eq!(c.keys().count(), 40);
        assert_eq!(c.get("k3"), Some(serde_json::json!("last")));
        assert_eq!(c.get("k39"), Some(serde_json::json!(true)));
        let c = config(r#"{"a": 1, "a": 2}"#);
        assert_eq!(c.get("a"), Some(serde_json::json!(2)));
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = config(
            r#"{"auths":{"quay.io":{"auth":"c2VjcmV0OnNlY3JldA==","password":"hunter2","identitytoken":"idtok","registrytoken":"regtok"}},"HttpHeaders":{"X-Token":"hdrtok"}}"#,
        );
        let creds = c.lookup("quay.io", "").unwrap();
        let basic_creds = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let text = format!("{c:?} {c:#?} {creds:?} {basic_creds:?} {basic_creds:#?}");
        for secret in ["c2VjcmV0", "hunter2", "idtok", "regtok", "hdrtok", "secret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("<redacted>"));
        assert!(text.contains("quay.io"));
    }
}
