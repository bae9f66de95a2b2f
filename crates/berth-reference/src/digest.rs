//! Content digests: `algorithm:encoded`, as go-digest and the OCI image-spec
//! define them.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{ErrorKind, ParseError};
use crate::grammar;

/// A digest algorithm registered by the OCI image-spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// SHA-256: 64 lowercase hexadecimal characters.
    Sha256,
    /// SHA-512: 128 lowercase hexadecimal characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in a digest (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hexadecimal characters the encoded part has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm with this exact (lowercase) name, if it is registered.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated content digest such as `sha256:6c3c62…`.
///
/// [`Digest::parse`] accepts the registered algorithms only (sha256, sha512),
/// as Go's go-digest does for references. [`Digest::parse_any_algorithm`]
/// follows the image-spec's rule for descriptors: any algorithm that fits the
/// grammar parses, and only the registered ones are checked further; such a
/// digest reports `None` from [`Digest::known_algorithm`], and verifying
/// content against it is the caller's "unsupported algorithm" error.
///
/// A sha256 digest is stored inline, so making one never allocates.
///
/// ```
/// use berth_reference::{Algorithm, Digest};
/// let d: Digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".parse()?;
/// assert_eq!(d.algorithm(), "sha256");
/// assert_eq!(d.known_algorithm(), Some(Algorithm::Sha256));
/// assert_eq!(&d.encoded()[..8], "2cf24dba");
/// assert!(Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
/// assert!(Digest::parse_any_algorithm("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").is_ok());
/// # Ok::<(), berth_reference::ParseError>(())
/// ```
#[derive(Clone)]
pub struct Digest {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// The 64 lowercase hex characters of a sha256 digest.
    Sha256([u8; 64]),
    /// Any other digest: the whole `algorithm:encoded` text.
    Other {
        text: Box<str>,
        colon: usize,
        known: Option<Algorithm>,
    },
}

impl Digest {
    /// Parses a digest whose algorithm is registered (sha256 or sha512), with
    /// go-digest's rules: the encoded part is lowercase hex of exactly the
    /// algorithm's length.
    pub fn parse(s: &str) -> Result<Digest, ParseError> {
        Ok(DigestRef::parse(s)?.to_owned())
    }

    /// Parses a digest by the image-spec's grammar (`algorithm ":" encoded`),
    /// accepting algorithms that are not registered; registered ones are
    /// checked as [`Digest::parse`] checks them.
    pub fn parse_any_algorithm(s: &str) -> Result<Digest, ParseError> {
        Ok(DigestRef::parse_any_algorithm(s)?.to_owned())
    }

    /// The digest of some content whose sha256 is `hash`.
    pub fn from_sha256(hash: &[u8; 32]) -> Digest {
        let mut hex = [0u8; 64];
        grammar::encode_hex(hash, &mut hex);
        Digest {
            repr: Repr::Sha256(hex),
        }
    }

    /// The digest of some content whose sha512 is `hash`.
    pub fn from_sha512(hash: &[u8; 64]) -> Digest {
        let mut text = String::with_capacity(7 + 128);
        text.push_str("sha512:");
        let mut hex = [0u8; 128];
        grammar::encode_hex(hash, &mut hex);
        text.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        Digest {
            repr: Repr::Other {
                text: text.into_boxed_str(),
                colon: 6,
                known: Some(Algorithm::Sha512),
            },
        }
    }

    /// The algorithm's name (`sha256`).
    pub fn algorithm(&self) -> &str {
        match &self.repr {
            Repr::Sha256(_) => "sha256",
            Repr::Other { text, colon, .. } => &text[..*colon],
        }
    }

    /// The registered algorithm, or `None` for one only the grammar accepted.
    pub fn known_algorithm(&self) -> Option<Algorithm> {
        match &self.repr {
            Repr::Sha256(_) => Some(Algorithm::Sha256),
            Repr::Other { known, .. } => *known,
        }
    }

    /// The encoded part: the hex after the colon.
    pub fn encoded(&self) -> &str {
        match &self.repr {
            Repr::Sha256(hex) => std::str::from_utf8(hex).expect("validated ASCII hex"),
            Repr::Other { text, colon, .. } => &text[colon + 1..],
        }
    }

    /// The raw hash bytes, decoded from hex, for a registered algorithm;
    /// `None` otherwise. Writes into `out` and returns the filled prefix.
    pub fn hash_bytes<'o>(&self, out: &'o mut [u8; 64]) -> Option<&'o [u8]> {
        let alg = self.known_algorithm()?;
        let n = alg.hex_len() / 2;
        grammar::decode_hex(self.encoded().as_bytes(), &mut out[..n])?;
        Some(&out[..n])
    }

    /// Borrows this digest.
    pub fn as_digest_ref(&self) -> DigestRef<'_> {
        match &self.repr {
            Repr::Sha256(hex) => DigestRef {
                algorithm: "sha256",
                encoded: std::str::from_utf8(hex).expect("validated ASCII hex"),
                known: Some(Algorithm::Sha256),
            },
            Repr::Other { text, colon, known } => DigestRef {
                algorithm: &text[..*colon],
                encoded: &text[colon + 1..],
                known: *known,
            },
        }
    }

    /// The length of the digest's text form (`algorithm:encoded`).
    pub fn text_len(&self) -> usize {
        self.algorithm().len() + 1 + self.encoded().len()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm())?;
        f.write_str(":")?;
        f.write_str(self.encoded())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm() == other.algorithm() && self.encoded() == other.encoded()
    }
}

impl Eq for Digest {}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.algorithm().hash(state);
        self.encoded().hash(state);
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Digest {
    /// Orders as the text forms would order.
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self
            .algorithm()
            .bytes()
            .chain(std::iter::once(b':'))
            .chain(self.encoded().bytes());
        let b = other
            .algorithm()
            .bytes()
            .chain(std::iter::once(b':'))
            .chain(other.encoded().bytes());
        a.cmp(b)
    }
}

impl FromStr for Digest {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        other.split_once(':') == Some((self.algorithm(), self.encoded()))
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

/// A validated digest borrowed from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DigestRef<'a> {
    algorithm: &'a str,
    encoded: &'a str,
    known: Option<Algorithm>,
}

impl<'a> DigestRef<'a> {
    /// As [`Digest::parse`], without allocating.
    pub fn parse(s: &'a str) -> Result<DigestRef<'a>, ParseError> {
        Self::parse_inner(s, false)
    }

    /// As [`Digest::parse_any_algorithm`], without allocating.
    pub fn parse_any_algorithm(s: &'a str) -> Result<DigestRef<'a>, ParseError> {
        Self::parse_inner(s, true)
    }

    fn parse_inner(s: &'a str, any_algorithm: bool) -> Result<DigestRef<'a>, ParseError> {
        // The digest nearly every manifest holds, checked in one vectorised
        // pass; anything else (or anything wrong) takes the general rules.
        let b = s.as_bytes();
        if grammar::is_plain_sha256(b) {
            return Ok(DigestRef::sha256_unchecked(&s[7..]));
        }
        let Some(colon) = memchr::memchr(b':', b) else {
            return Err(ParseError::with_detail(
                ErrorKind::DigestInvalidFormat,
                s.len(),
                "expected ':' between algorithm and encoded part",
            ));
        };
        if colon == 0 {
            return Err(ParseError::with_detail(
                ErrorKind::DigestInvalidFormat,
                0,
                "digest algorithm is empty",
            ));
        }
        if colon + 1 == s.len() {
            return Err(ParseError::with_detail(
                ErrorKind::DigestInvalidFormat,
                s.len(),
                "digest encoded part is empty",
            ));
        }
        let (algorithm, encoded) = (&s[..colon], &s[colon + 1..]);
        if let Some(alg) = Algorithm::from_name(algorithm) {
            grammar::check_registered_encoded(alg, encoded).map_err(|e| e.shifted(colon + 1))?;
            return Ok(DigestRef {
                algorithm,
                encoded,
                known: Some(alg),
            });
        }
        // Not registered: go-digest answers "unsupported" when the digest
        // fits the grammar and "invalid format" when it does not.
        grammar::check_digest_grammar(s)?;
        if any_algorithm {
            Ok(DigestRef {
                algorithm,
                encoded,
                known: None,
            })
        } else {
            Err(ParseError::with_detail(
                ErrorKind::DigestUnsupported,
                0,
                "only sha256 and sha512 are registered",
            ))
        }
    }

    /// A sha256 digest from its 64 hex digits, already checked by the caller.
    pub(crate) fn sha256_unchecked(encoded: &'a str) -> DigestRef<'a> {
        debug_assert!(encoded.len() == 64 && grammar::all_hex_lower(encoded.as_bytes()));
        DigestRef {
            algorithm: "sha256",
            encoded,
            known: Some(Algorithm::Sha256),
        }
    }

    /// The algorithm's name.
    pub fn algorithm(&self) -> &'a str {
        self.algorithm
    }

    /// The encoded part after the colon.
    pub fn encoded(&self) -> &'a str {
        self.encoded
    }

    /// The registered algorithm, if it is one.
    pub fn known_algorithm(&self) -> Option<Algorithm> {
        self.known
    }

    /// An owned copy; never allocates for sha256.
    pub fn to_owned(&self) -> Digest {
        if self.known == Some(Algorithm::Sha256) {
            let mut hex = [0u8; 64];
            hex.copy_from_slice(self.encoded.as_bytes());
            return Digest {
                repr: Repr::Sha256(hex),
            };
        }
        let mut text = String::with_capacity(self.algorithm.len() + 1 + self.encoded.len());
        text.push_str(self.algorithm);
        text.push(':');
        text.push_str(self.encoded);
        Digest {
            repr: Repr::Other {
                text: text.into_boxed_str(),
                colon: self.algorithm.len(),
                known: self.known,
            },
        }
    }
}

impl fmt::Display for DigestRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.encoded)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Digest {
    /// Deserialises with [`Digest::parse_any_algorithm`], as descriptors need.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest such as sha256:<64 hex>")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::parse_any_algorithm(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn sha256_round_trip_and_inline() {
        let s = format!("sha256:{HEX}");
        let d = Digest::parse(&s).expect("valid");
        assert!(matches!(d.repr, Repr::Sha256(_)));
        assert_eq!(d.to_string(), s);
        assert_eq!(d, s.as_str());
        let mut buf = [0u8; 64];
        let raw = d.hash_bytes(&mut buf).expect("registered");
        assert_eq!(Digest::from_sha256(raw.try_into().expect("32 bytes")), d);
    }

    #[test]
    fn go_digest_error_classes() {
        let kind = |s: &str| Digest::parse(s).unwrap_err().kind();
        assert_eq!(kind("sha256:abc"), ErrorKind::DigestInvalidLength);
        assert_eq!(
            kind(&format!("sha256:{}", HEX.to_uppercase())),
            ErrorKind::DigestInvalidFormat
        );
        assert_eq!(
            kind("md5:d41d8cd98f00b204e9800998ecf8427e"),
            ErrorKind::DigestUnsupported
        );
        assert_eq!(
            kind("MD5:d41d8cd98f00b204e9800998ecf8427e"),
            ErrorKind::DigestInvalidFormat
        );
        assert_eq!(kind("nocolon"), ErrorKind::DigestInvalidFormat);
        assert_eq!(kind(":abc"), ErrorKind::DigestInvalidFormat);
        assert_eq!(kind("sha256:"), ErrorKind::DigestInvalidFormat);
    }

    #[test]
    fn error_offsets_point_into_encoded_part() {
        let mut s = format!("sha256:{HEX}");
        s.replace_range(20..21, "g");
        let e = Digest::parse(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DigestInvalidFormat);
        assert_eq!(e.offset(), 20);
    }

    #[test]
    fn unregistered_algorithms_by_grammar() {
        let d =
            Digest::parse_any_algorithm("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564")
                .expect("grammar allows it");
        assert_eq!(d.known_algorithm(), None);
        assert_eq!(d.algorithm(), "sha256+b64u");
        assert!(Digest::parse_any_algorithm("Sha256:abc").is_err());
        assert!(
            Digest::parse_any_algorithm("sha256:abc").is_err(),
            "registered ones stay strict"
        );
        assert!(Digest::parse_any_algorithm("foo:a b").is_err());
    }

    #[test]
    fn sha512() {
        let hex = "f".repeat(128);
        let d = Digest::parse(&format!("sha512:{hex}")).expect("valid");
        assert_eq!(d.known_algorithm(), Some(Algorithm::Sha512));
        assert_eq!(Digest::from_sha512(&[0xff; 64]), d);
        assert!(d > Digest::parse(&format!("sha256:{HEX}")).expect("valid"));
    }
}
