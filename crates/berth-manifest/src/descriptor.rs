//! Content descriptors: what a manifest says about each blob it names.

use std::collections::BTreeMap;

use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::error::{ManifestError, Path};
use crate::media_type::MediaType;
use crate::platform::Platform;
use crate::verify::{Verifier, VerifyError};

/// A content descriptor: the media type, digest and size of a blob or
/// manifest, with optional `urls`, `annotations`, `platform`,
/// `artifactType` and embedded `data`.
///
/// Fields are serialised in the image-spec's order; empty lists and maps are
/// left out, and `null` reads as empty.
///
/// ```
/// use berth_manifest::{Descriptor, MediaType, Digester};
/// let d = Descriptor::new(MediaType::OCI_EMPTY, Digester::sha256_of(b"{}"), 2).with_data(b"{}");
/// assert_eq!(d.data.as_deref(), Some("e30="));
/// assert_eq!(d.decoded_data()?.as_deref(), Some(&b"{}"[..]));
/// let json = serde_json::to_string(&d).unwrap();
/// assert_eq!(json, r#"{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}"#);
/// # Ok::<(), berth_manifest::VerifyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: MediaType,
    /// The digest of the referenced content.
    #[serde(deserialize_with = "de::digest")]
    pub digest: Digest,
    /// The size of the referenced content, in bytes.
    pub size: u64,
    /// Other places the content may be fetched from (foreign layers).
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_vec"
    )]
    pub urls: Vec<String>,
    /// Arbitrary metadata.
    #[serde(
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "de::is_empty_map"
    )]
    pub annotations: BTreeMap<String, String>,
    /// The content itself, base64-encoded, for small blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The platform a manifest in an index is for (boxed: most descriptors
    /// have none, and a smaller descriptor parses faster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Box<Platform>>,
    /// The type of an artifact, when the content is an artifact manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
}

impl Descriptor {
    /// A descriptor with the three required fields.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type,
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// This descriptor with a platform.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = Some(Box::new(platform));
        self
    }

    /// This descriptor with an annotation added.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// This descriptor with an artifact type.
    pub fn with_artifact_type(mut self, artifact_type: MediaType) -> Self {
        self.artifact_type = Some(artifact_type);
        self
    }

    /// This descriptor with a URL added.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// This descriptor with `content` embedded as base64 `data`. The digest
    /// and size are not changed: they must already describe `content`.
    pub fn with_data(mut self, content: &[u8]) -> Self {
        self.data = Some(base64_encode(content));
        self
    }

    /// The descriptor of the empty JSON blob `{}`
    /// (`application/vnd.oci.empty.v1+json`), with its data embedded.
    pub fn empty() -> Self {
        Descriptor::new(
            MediaType::OCI_EMPTY,
            crate::verify::Digester::sha256_of(b"{}"),
            2,
        )
        .with_data(b"{}")
    }

    /// The embedded `data`, decoded and verified against the descriptor's
    /// digest and size; `None` when there is no `data`.
    pub fn decoded_data(&self) -> Result<Option<Vec<u8>>, VerifyError> {
        let Some(data) = &self.data else {
            return Ok(None);
        };
        let bytes = base64_decode(data, false).ok_or(VerifyError::SizeMismatch {
            expected: self.size,
            actual: 0,
        })?;
        Verifier::verify(&self.digest, self.size, &bytes)?;
        Ok(Some(bytes))
    }

    /// Whether this entry is an attestation or other non-runnable entry of
    /// an index (platform `unknown/unknown`, as buildx pushes them).
    pub fn is_unknown_platform(&self) -> bool {
        self.platform.as_deref().is_some_and(Platform::is_unknown)
    }

    /// Parses and validates a descriptor on its own
    /// (`application/vnd.oci.descriptor.v1+json`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let d: Descriptor = de::from_json(bytes)?;
        d.validate()?;
        Ok(d)
    }

    /// Checks the rules the type system does not: media type grammar,
    /// URLs, base64 `data` whose length matches `size`.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.check(&Path::Root)
    }

    pub(crate) fn check(&self, at: &Path<'_>) -> Result<(), ManifestError> {
        check_media_type(&self.media_type, &at.field("mediaType"))?;
        if let Some(t) = &self.artifact_type {
            check_media_type(t, &at.field("artifactType"))?;
        }
        if !self.urls.is_empty() {
            let urls = at.field("urls");
            for (i, u) in self.urls.iter().enumerate() {
                if let Err(problem) = check_uri(u) {
                    return Err(urls.index(i).error(problem));
                }
            }
        }
        if let Some(data) = &self.data {
            match base64_decoded_len(data) {
                None => {
                    return Err(at
                        .field("data")
                        .error("data must be standard base64 with padding"));
                }
                Some(n) if u64::try_from(n).ok() != Some(self.size) => {
                    return Err(at.field("data").error(format!(
                        "data decodes to {n} bytes but size is {}",
                        self.size
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

pub(crate) fn check_media_type(t: &MediaType, at: &Path<'_>) -> Result<(), ManifestError> {
    t.check_grammar()
        .map_err(|p| at.error(format!("{p}: {:?}", t.as_str())))
}

/// An RFC 3986 URI: a scheme, `:`, and only characters a URI may hold
/// (percent escapes well-formed).
pub(crate) fn check_uri(s: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = s.split_once(':') else {
        return Err("not a URI: no scheme");
    };
    let mut sb = scheme.bytes();
    if !sb.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !sb.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return Err("not a URI: the scheme is malformed");
    }
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return Err("not a URI: malformed percent escape");
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b':'
                    | b'/'
                    | b'?'
                    | b'#'
                    | b'['
                    | b']'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        if !ok {
            return Err("not a URI: a character must be percent-encoded");
        }
        i += 1;
    }
    Ok(())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8, url_safe: bool) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' if !url_safe => Some(62),
        b'/' if !url_safe => Some(63),
        b'-' if url_safe => Some(62),
        b'_' if url_safe => Some(63),
        _ => None,
    }
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(
                    B64[usize::from((n >> (18 - 6 * k)).to_le_bytes()[0] & 63)],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The decoded length of standard padded base64, or `None` if it is not.
fn base64_decoded_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2
        || !b[..b.len() - pad]
            .iter()
            .all(|&c| b64_value(c, false).is_some())
    {
        return None;
    }
    Some(b.len() / 4 * 3 - pad)
}

/// Decodes base64: standard with padding, or (with `url_safe`) the
/// URL-safe alphabet with padding optional, as JWS uses.
pub(crate) fn base64_decode(s: &str, url_safe: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    if !url_safe && !b.len().is_multiple_of(4) {
        return None;
    }
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in body {
        acc = ((acc << 6) | u32::from(b64_value(c, url_safe)?)) & 0x00ff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits).to_le_bytes()[0]);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            b"{}",
        ] {
            let e = base64_encode(s);
            assert_eq!(base64_decoded_len(&e), Some(s.len()));
            assert_eq!(base64_decode(&e, false).as_deref(), Some(s));
        }
        assert_eq!(base64_encode(b"{}"), "e30=");
        assert_eq!(base64_decoded_len("e30"), None);
        assert_eq!(base64_decode("e30", true).as_deref(), Some(&b"{}"[..]));
        assert_eq!(base64_decode("a-_b", true).map(|v| v.len()), Some(3));
    }

    #[test]
    fn uris() {
        assert!(check_uri("https://example.com/foo").is_ok());
        assert!(check_uri("https://go.microsoft.com/fwlink/?linkid=873122").is_ok());
        assert!(check_uri("value").is_err());
        assert!(check_uri("https://exa mple.com").is_err());
        assert!(check_uri("1http://x").is_err());
        assert!(check_uri("http://x/%zz").is_err());
    }
}
