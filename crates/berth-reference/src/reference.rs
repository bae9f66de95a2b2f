//! Image references: `[domain[:port]/]path[:tag][@digest]`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestRef};
use crate::error::{ErrorKind, ParseError};
use crate::grammar;

/// The longest repository path (the name without its domain) Go accepts.
pub const PATH_MAX_LEN: usize = 255;
/// Docker Hub's canonical domain.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DOCKER_HUB_DOMAIN`].
pub const DOCKER_HUB_LEGACY_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag [`Reference::with_default_tag`] adds.
pub const DEFAULT_TAG: &str = "latest";

/// Where the parts of a reference lie in its text. The text is always the
/// canonical form: `name[:tag][@digest]`, with `name = [domain/]path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Layout {
    /// Length of the domain; 0 when there is none.
    domain_len: usize,
    /// Length of `domain/path`.
    name_len: usize,
    /// Length of the tag; 0 when there is none.
    tag_len: usize,
}

impl Layout {
    fn domain<'t>(&self, text: &'t str) -> &'t str {
        &text[..self.domain_len]
    }
    fn path<'t>(&self, text: &'t str) -> &'t str {
        let start = if self.domain_len == 0 {
            0
        } else {
            self.domain_len + 1
        };
        &text[start..self.name_len]
    }
    fn name<'t>(&self, text: &'t str) -> &'t str {
        &text[..self.name_len]
    }
    fn tag<'t>(&self, text: &'t str) -> Option<&'t str> {
        (self.tag_len > 0).then(|| &text[self.name_len + 1..self.name_len + 1 + self.tag_len])
    }
}

/// Parses `s` by the grammar alone (Go's `reference.Parse`), in one pass
/// over the bytes.
fn parse_layout(s: &str) -> Result<(Layout, Option<DigestRef<'_>>), ParseError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(ParseError::with_detail(
            ErrorKind::NameEmpty,
            0,
            "the reference is empty",
        ));
    }
    // With two or more components, the first is the domain when it fits
    // the domain grammar (Go's anchoredNameRegexp prefers that reading):
    // the grammar, run greedily, must stop exactly at a '/'.
    let domain_len = match grammar::domain_prefix(b) {
        Some(end) if b.get(end) == Some(&b'/') => end,
        _ => 0,
    };
    let path_start = if domain_len == 0 { 0 } else { domain_len + 1 };
    let (layout, digest) = parse_rest(s, path_start, 0)?;
    Ok((
        Layout {
            domain_len,
            ..layout
        },
        digest,
    ))
}

/// Path, tag and digest of `s` from `path_start`, as a layout without its
/// domain. `path_prefix_len` bytes of path that are not in `s` go before it
/// (normalisation's `library/`), and count towards the path's length limit.
fn parse_rest(
    s: &str,
    path_start: usize,
    path_prefix_len: usize,
) -> Result<(Layout, Option<DigestRef<'_>>), ParseError> {
    let b = s.as_bytes();
    match scan_rest(b, path_start, false) {
        Ok((layout, digest_start, sha256_fast)) => {
            let path_len = layout.name_len - path_start + path_prefix_len;
            if path_len > PATH_MAX_LEN {
                return Err(ParseError::with_detail(
                    ErrorKind::NameTooLong,
                    path_start + PATH_MAX_LEN - path_prefix_len,
                    "the path after the domain is longer than 255 characters",
                ));
            }
            let digest = match digest_start {
                Some(d) if sha256_fast => Some(DigestRef::sha256_unchecked(&s[d + 7..])),
                Some(d) => Some(DigestRef::parse(&s[d..]).map_err(|e| e.shifted(d))?),
                None => None,
            };
            Ok((layout, digest))
        }
        Err((at, rule)) => {
            // Go lower-cases the input and tries again to tell "must be
            // lowercase" from "invalid format"; only the path cares about
            // case.
            if scan_rest(b, path_start, true).is_ok() {
                Err(ParseError::new(ErrorKind::NameContainsUppercase, at))
            } else {
                Err(ParseError::with_detail(ErrorKind::InvalidFormat, at, rule))
            }
        }
    }
}

/// Scans path, tag and digest grammar from `path_start`: the layout (without
/// its domain), where the digest starts, and whether it is a plain sha256.
fn scan_rest(
    b: &[u8],
    path_start: usize,
    upper_ok: bool,
) -> Result<(Layout, Option<usize>, bool), grammar::RuleError> {
    let name_end = path_start
        + grammar::scan_path(&b[path_start..], upper_ok).map_err(|(at, r)| (path_start + at, r))?;
    let mut tag_len = 0;
    let mut at = name_end;
    if b.get(at) == Some(&b':') {
        let tag_start = at + 1;
        let tag_end = b[tag_start..]
            .iter()
            .position(|&c| c == b'@')
            .map_or(b.len(), |p| tag_start + p);
        grammar::check_tag_bytes(&b[tag_start..tag_end]).map_err(|(p, r)| (tag_start + p, r))?;
        tag_len = tag_end - tag_start;
        at = tag_end;
    }
    let mut digest_start = None;
    let mut sha256_fast = false;
    match b.get(at) {
        None => {}
        Some(b'@') => {
            let d = at + 1;
            let t = &b[d..];
            // The common digest, sha256 with 64 lowercase hex digits, is
            // checked in one pass; anything else takes the general rules.
            sha256_fast = grammar::is_plain_sha256(t);
            if !sha256_fast {
                grammar::check_reference_digest_pattern(t).map_err(|(p, r)| (d + p, r))?;
            }
            digest_start = Some(d);
        }
        Some(&c) => return Err((at, grammar::path_stop_rule(c))),
    }
    let layout = Layout {
        domain_len: 0,
        name_len: name_end,
        tag_len,
    };
    Ok((layout, digest_start, sha256_fast))
}

/// A reference borrowed from the string it was parsed from. Parsing one
/// never allocates.
///
/// This is the syntax-level parse ([`ReferenceRef::parse`], like Go's
/// `reference.Parse`): nothing is added or normalised. Use
/// [`Reference::parse_normalized`] for Docker's rules.
///
/// ```
/// use berth_reference::ReferenceRef;
/// let r = ReferenceRef::parse("localhost:5000/team/app:v1")?;
/// assert_eq!(r.domain(), "localhost:5000");
/// assert_eq!(r.path(), "team/app");
/// assert_eq!(r.tag(), Some("v1"));
/// # Ok::<(), berth_reference::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReferenceRef<'a> {
    text: &'a str,
    layout: Layout,
    digest: Option<DigestRef<'a>>,
}

impl<'a> ReferenceRef<'a> {
    /// Parses `s` by the reference grammar only.
    pub fn parse(s: &'a str) -> Result<ReferenceRef<'a>, ParseError> {
        let (layout, digest) = parse_layout(s)?;
        Ok(ReferenceRef {
            text: s,
            layout,
            digest,
        })
    }

    /// The domain (with port), or `""` when the reference has none.
    pub fn domain(&self) -> &'a str {
        self.layout.domain(self.text)
    }

    /// The repository path, without the domain.
    pub fn path(&self) -> &'a str {
        self.layout.path(self.text)
    }

    /// `domain/path`, or just the path when there is no domain.
    pub fn name(&self) -> &'a str {
        self.layout.name(self.text)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&'a str> {
        self.layout.tag(self.text)
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<DigestRef<'a>> {
        self.digest
    }

    /// The whole reference, exactly as parsed (which is its canonical form).
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Reference {
        Reference {
            text: self.text.into(),
            layout: self.layout,
            digest: self.digest.map(|d| d.to_owned()),
        }
    }
}

impl fmt::Display for ReferenceRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

/// An image reference: `[domain[:port]/]path[:tag][@digest]`.
///
/// Two ways in, as in Go's `distribution/reference`:
/// - [`Reference::parse`]: the grammar alone, nothing added
///   (`ubuntu` stays `ubuntu`, with no domain).
/// - [`Reference::parse_normalized`] (and [`FromStr`]): Docker's rules
///   (`ubuntu` is `docker.io/library/ubuntu`). No tag is added; call
///   [`Reference::with_default_tag`] for `:latest`.
///
/// ```
/// use berth_reference::Reference;
/// let r: Reference = "ubuntu".parse()?;
/// assert_eq!(r.to_string(), "docker.io/library/ubuntu");
/// assert_eq!(r.with_default_tag().to_string(), "docker.io/library/ubuntu:latest");
///
/// let r = Reference::parse_normalized("ghcr.io/org/app:1.2@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")?;
/// assert_eq!((r.domain(), r.path(), r.tag()), ("ghcr.io", "org/app", Some("1.2")));
/// assert_eq!(r.digest().map(|d| d.algorithm()), Some("sha256"));
/// assert_eq!(Reference::parse_normalized("docker.io/library/redis:7")?.familiar(), "redis:7");
/// # Ok::<(), berth_reference::ParseError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    text: Box<str>,
    layout: Layout,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `s` by the grammar alone, like Go's `reference.Parse`: when the
    /// name has two or more components and the first fits the domain grammar,
    /// it is the domain (`bitnami/postgresql` has domain `bitnami`).
    pub fn parse(s: &str) -> Result<Reference, ParseError> {
        ReferenceRef::parse(s).map(|r| r.to_owned())
    }

    /// Parses `s` with Docker's normalisation, like Go's
    /// `ParseNormalizedNamed`: a first component is a domain only if it holds
    /// `.` or `:`, is `localhost`, or has an uppercase letter; otherwise the
    /// domain is `docker.io`, with `library/` before a single component;
    /// `index.docker.io` becomes `docker.io`. A name of exactly 64 hex
    /// characters is refused (it reads as an image ID).
    pub fn parse_normalized(s: &str) -> Result<Reference, ParseError> {
        if grammar::is_identifier(s) {
            return Err(ParseError::with_detail(
                ErrorKind::HexRepositoryName,
                0,
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }
        // Docker's split: the domain, then the rest as the user wrote it.
        let (domain, rest_at, library) = split_docker_domain(s);
        if domain != DOCKER_HUB_DOMAIN {
            // Another registry: the input is already canonical, and the
            // grammar alone reads it (a first component that is not a valid
            // domain makes the whole name a path, as in Go).
            return match parse_layout(s) {
                Ok((layout, digest)) => Ok(Reference {
                    text: s.into(),
                    layout,
                    digest: digest.map(|d| d.to_owned()),
                }),
                Err(e) => Err(normalized_error(&s[rest_at..], rest_at, e)),
            };
        }
        // Docker Hub: the rest is parsed where it is, and the canonical text
        // is `docker.io/[library/]rest`.
        let rest = &s[rest_at..];
        let library_len = if library {
            OFFICIAL_REPO_PREFIX.len()
        } else {
            0
        };
        let (layout, digest) = parse_rest(rest, 0, library_len)
            .map_err(|e| normalized_error(rest, rest_at, e.shifted(rest_at)))?;
        let prefix_len = DOCKER_HUB_DOMAIN.len() + 1 + library_len;
        let mut text = String::with_capacity(prefix_len + rest.len());
        text.push_str(DOCKER_HUB_DOMAIN);
        text.push('/');
        if library {
            text.push_str(OFFICIAL_REPO_PREFIX);
        }
        text.push_str(rest);
        Ok(Reference {
            text: text.into_boxed_str(),
            layout: Layout {
                domain_len: DOCKER_HUB_DOMAIN.len(),
                name_len: prefix_len + layout.name_len,
                tag_len: layout.tag_len,
            },
            digest: digest.map(|d| d.to_owned()),
        })
    }

    /// Parses a reference that may be a bare digest or image ID, like Go's
    /// `ParseAnyReference`: 64 hex characters are `sha256:<hex>`, a valid
    /// digest is itself, anything else is [`Reference::parse_normalized`].
    pub fn parse_any(s: &str) -> Result<AnyReference, ParseError> {
        if grammar::is_identifier(s) {
            let mut raw = [0u8; 32];
            grammar::decode_hex(s.as_bytes(), &mut raw).expect("validated hex");
            return Ok(AnyReference::Digest(Digest::from_sha256(&raw)));
        }
        if let Ok(d) = Digest::parse(s) {
            return Ok(AnyReference::Digest(d));
        }
        Reference::parse_normalized(s).map(AnyReference::Named)
    }

    /// A name-only reference from `domain/path` (or a path alone), like Go's
    /// `WithName`: the grammar of a name, no normalisation.
    pub fn with_name(name: &str) -> Result<Reference, ParseError> {
        let b = name.as_bytes();
        let domain_len = match b.iter().position(|&c| c == b'/') {
            Some(slash) if grammar::domain_and_port(&b[..slash]) => slash,
            _ => 0,
        };
        let path_start = if domain_len == 0 { 0 } else { domain_len + 1 };
        grammar::check_path(&b[path_start..], false).map_err(|(at, rule)| {
            ParseError::with_detail(ErrorKind::InvalidFormat, path_start + at, rule)
        })?;
        if b.len() - path_start > PATH_MAX_LEN {
            return Err(ParseError::with_detail(
                ErrorKind::NameTooLong,
                path_start + PATH_MAX_LEN,
                "the path after the domain is longer than 255 characters",
            ));
        }
        Ok(Reference {
            text: name.into(),
            layout: Layout {
                domain_len,
                name_len: name.len(),
                tag_len: 0,
            },
            digest: None,
        })
    }

    /// The same reference with `tag` (replacing any tag; a digest is kept),
    /// like Go's `WithTag`.
    pub fn with_tag(self, tag: &str) -> Result<Reference, ParseError> {
        grammar::check_tag(tag)?;
        Ok(self.rebuild(Some(tag), self.digest.clone()))
    }

    /// The same reference with `digest` (replacing any digest; a tag is
    /// kept), like Go's `WithDigest`.
    pub fn with_digest(self, digest: Digest) -> Reference {
        let tag = self.tag().map(str::to_owned);
        self.rebuild(tag.as_deref(), Some(digest))
    }

    /// The same reference without its tag and digest (Go's `TrimNamed`).
    pub fn name_only(self) -> Reference {
        self.rebuild(None, None)
    }

    /// Adds the tag `latest` when the reference has neither tag nor digest,
    /// like Go's `TagNameOnly`.
    pub fn with_default_tag(self) -> Reference {
        if self.tag().is_none() && self.digest.is_none() {
            self.rebuild(Some(DEFAULT_TAG), None)
        } else {
            self
        }
    }

    fn rebuild(&self, tag: Option<&str>, digest: Option<Digest>) -> Reference {
        let name = self.name();
        let mut text = String::with_capacity(
            name.len()
                + tag.map_or(0, |t| t.len() + 1)
                + digest.as_ref().map_or(0, |d| d.text_len() + 1),
        );
        text.push_str(name);
        if let Some(t) = tag {
            text.push(':');
            text.push_str(t);
        }
        if let Some(d) = &digest {
            use fmt::Write;
            write!(text, "@{d}").expect("writing to a String cannot fail");
        }
        Reference {
            text: text.into_boxed_str(),
            layout: Layout {
                tag_len: tag.map_or(0, str::len),
                ..self.layout
            },
            digest,
        }
    }

    /// The domain (with port), or `""` when [`Reference::parse`] found none.
    pub fn domain(&self) -> &str {
        self.layout.domain(&self.text)
    }

    /// The repository path without the domain.
    pub fn path(&self) -> &str {
        self.layout.path(&self.text)
    }

    /// `domain/path`, or the path alone when there is no domain.
    pub fn name(&self) -> &str {
        self.layout.name(&self.text)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.layout.tag(&self.text)
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.layout.tag_len == 0 && self.digest.is_none()
    }

    /// The canonical text (what [`fmt::Display`] writes).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Borrows this reference.
    pub fn as_reference_ref(&self) -> ReferenceRef<'_> {
        ReferenceRef {
            text: &self.text,
            layout: self.layout,
            digest: self.digest.as_ref().map(Digest::as_digest_ref),
        }
    }

    /// The name as a person types it, like Go's `FamiliarName`:
    /// `docker.io/library/ubuntu` is `ubuntu`, `docker.io/org/app` is
    /// `org/app`; other domains stay.
    pub fn familiar_name(&self) -> &str {
        if self.domain() != DOCKER_HUB_DOMAIN {
            return self.name();
        }
        let path = self.path();
        match path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest,
            _ => path,
        }
    }

    /// The reference as a person types it, like Go's `FamiliarString`:
    /// `docker.io/library/ubuntu:latest` is `ubuntu:latest`.
    pub fn familiar(&self) -> String {
        let name = self.familiar_name();
        let mut s = String::with_capacity(self.text.len());
        s.push_str(name);
        s.push_str(&self.text[self.layout.name_len..]);
        s
    }

    /// Whether `pattern` (Go's `path.Match` syntax: `*`, `?`, `[a-z]`, `\`)
    /// matches the familiar form, or else the familiar name, like Go's
    /// `FamiliarMatch`.
    pub fn familiar_match(&self, pattern: &str) -> Result<bool, ParseError> {
        let full = crate::matching::path_match(pattern, &self.familiar())?;
        if full {
            return Ok(true);
        }
        crate::matching::path_match(pattern, self.familiar_name())
    }
}

/// The error [`Reference::parse_normalized`] reports when the grammar
/// refused `e`: Go refuses any uppercase letter in the rest (the input after
/// its domain, which starts at `rest_at`) before its first `:` ahead of
/// whatever else is wrong. A reference that parses has none there, so the
/// check is needed only on failure.
fn normalized_error(rest: &str, rest_at: usize, e: ParseError) -> ParseError {
    let remote = &rest[..memchr::memchr(b':', rest.as_bytes()).unwrap_or(rest.len())];
    match remote.char_indices().find(|(_, c)| c.is_uppercase()) {
        Some((at, _)) => ParseError::with_detail(
            ErrorKind::NameContainsUppercase,
            rest_at + at,
            "the repository path must be lowercase",
        ),
        None => e,
    }
}

/// Go's `splitDockerDomain`: the domain to use, where the rest of `s` starts,
/// and whether `library/` goes before it.
fn split_docker_domain(s: &str) -> (&str, usize, bool) {
    let b = s.as_bytes();
    let Some(slash) = memchr::memchr(b'/', b) else {
        return (DOCKER_HUB_DOMAIN, 0, true);
    };
    let first = &s[..slash];
    let is_domain = first == "localhost"
        || first
            .bytes()
            .any(|c| c == b'.' || c == b':' || c.is_ascii_uppercase())
        || (!first.is_ascii() && first.chars().any(char::is_uppercase));
    let (domain, rest_at) = if first == DOCKER_HUB_LEGACY_DOMAIN {
        (DOCKER_HUB_DOMAIN, slash + 1)
    } else if is_domain {
        (first, slash + 1)
    } else {
        (DOCKER_HUB_DOMAIN, 0)
    };
    let library = domain == DOCKER_HUB_DOMAIN && memchr::memchr(b'/', &b[rest_at..]).is_none();
    (domain, rest_at, library)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({})", self.text)
    }
}

impl FromStr for Reference {
    type Err = ParseError;
    /// [`Reference::parse_normalized`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

impl PartialOrd for Reference {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reference {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

/// What [`Reference::parse_any`] found: a named reference or a bare digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A reference with a repository name.
    Named(Reference),
    /// A digest (or an image ID, as `sha256:<id>`) with no name.
    Digest(Digest),
}

impl fmt::Display for AnyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyReference::Named(r) => r.fmt(f),
            AnyReference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Reference {
    /// Deserialises with [`Reference::parse_normalized`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Reference;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image reference such as docker.io/library/ubuntu:24.04")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Reference, E> {
                Reference::parse_normalized(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rules() {
        let r = Reference::parse("bitnami/postgresql").expect("valid");
        assert_eq!((r.domain(), r.path()), ("bitnami", "postgresql"));
        let r = Reference::parse("my_registry.com/foo").expect("valid");
        assert_eq!((r.domain(), r.path()), ("", "my_registry.com/foo"));
        let r = Reference::parse("test.com:5000").expect("valid");
        assert_eq!((r.name(), r.tag()), ("test.com", Some("5000")));
        let r = Reference::parse("[::1]:5000/a/b:c").expect("valid");
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("[::1]:5000", "a/b", Some("c"))
        );
    }

    #[test]
    fn normalization() {
        let n = |s: &str| Reference::parse_normalized(s).map(|r| r.to_string());
        assert_eq!(n("ubuntu").as_deref(), Ok("docker.io/library/ubuntu"));
        assert_eq!(n("index.docker.io/x").as_deref(), Ok("docker.io/library/x"));
        assert_eq!(n("index.docker.io/x/y").as_deref(), Ok("docker.io/x/y"));
        assert_eq!(n("localhost/x").as_deref(), Ok("localhost/x"));
        assert_eq!(n("Foo/bar").as_deref(), Ok("Foo/bar"));
        assert_eq!(
            n("bitnami/postgresql:16").as_deref(),
            Ok("docker.io/bitnami/postgresql:16")
        );
        let e = Reference::parse_normalized(&"a".repeat(64)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HexRepositoryName);
    }

    #[test]
    fn normalized_errors_point_into_the_input() {
        let e = Reference::parse_normalized("ubuntu:bad!tag").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidFormat);
        assert_eq!(e.offset(), 10, "{e}");
        let e = Reference::parse_normalized("quay.io/Org/app").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NameContainsUppercase);
        assert_eq!(e.offset(), 8);
    }

    #[test]
    fn builders() {
        let r = Reference::with_name("example.com/a").expect("valid");
        let r = r.with_tag("v1").expect("valid tag");
        assert_eq!(r.to_string(), "example.com/a:v1");
        let d = Digest::from_sha256(&[0; 32]);
        let r = r.with_digest(d.clone());
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(Reference::parse(r.as_str()).expect("round trip"), r);
        assert_eq!(r.clone().name_only().to_string(), "example.com/a");
        assert!(r.with_tag("-bad").is_err());
    }
}
