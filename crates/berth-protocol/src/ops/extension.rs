//! The signature extension of the OpenShift (Atomic) registry: a registry
//! whose `GET /v2/` answers `X-Registry-Supports-Signatures: 1` serves the
//! simple-signing signatures of an image at
//! `GET /extensions/v2/<name>/signatures/<digest>`, as JSON:
//!
//! ```json
//! {"signatures": [{"schemaVersion": 2, "type": "atomic",
//!                  "name": "sha256:<hex>@<unique name>",
//!                  "content": "<base64 of the signature>"}]}
//! ```
//!
//! As containers/image reads it (`docker/docker_client.go`,
//! `docs/signature-protocols.md`): only entries with version 2 and type
//! `atomic` count, and only their `content`; other fields are ignored. The
//! OpenShift registry spells the version `schemaVersion`; `version` is
//! accepted too.

use base64::Engine as _;
use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;

use super::{content_length, header_str, repo_scope};
use crate::error::{Error, Subject};
use crate::exchange::{Exchange, Machine, Next, Steps, operation};
use crate::op::Context;
use berth_reference::Digest;

/// The header a registry's `GET /v2/` answer carries, with the value `1`,
/// when it serves the signature extension.
pub const SUPPORTS_SIGNATURES_HEADER: &str = "x-registry-supports-signatures";

/// The most bytes of a signature list read (containers/image's
/// `MaxSignatureListBodySize`).
pub const SIGNATURE_LIST_LIMIT: usize = 4 * 1024 * 1024;

/// The only entry version read.
const SIGNATURE_VERSION: i64 = 2;
/// The only entry type read.
const SIGNATURE_TYPE: &str = "atomic";

#[derive(Deserialize)]
struct SignatureList {
    #[serde(default)]
    signatures: Option<Vec<serde_json::Value>>,
}

/// The signatures in a signature list body: the decoded `content` of every
/// version-2 `atomic` entry, in order. Entries of another version or type
/// (or that are not objects) are skipped; a counted entry without a
/// base64 `content` string is an error.
pub fn parse_signature_list(body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let list: SignatureList =
        serde_json::from_slice(body).map_err(|e| Error::invalid("signature list", e))?;
    let mut out = Vec::new();
    for (i, entry) in list.signatures.unwrap_or_default().iter().enumerate() {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let version = entry
            .get("schemaVersion")
            .or_else(|| entry.get("version"))
            .and_then(serde_json::Value::as_i64);
        let kind = entry.get("type").and_then(serde_json::Value::as_str);
        if version != Some(SIGNATURE_VERSION) || kind != Some(SIGNATURE_TYPE) {
            continue;
        }
        let content = entry
            .get("content")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                Error::invalid(
                    "signature list",
                    format!("signature {i} has no base64 \"content\" string"),
                )
            })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| {
                Error::invalid(
                    "signature list",
                    format!("signature {i}: \"content\" is not base64: {e}"),
                )
            })?;
        out.push(decoded);
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `GET /v2/`, to read the header.
    Probe,
    /// `GET /extensions/v2/...`.
    Fetch,
}

pub(crate) struct ExtensionSteps {
    domain: String,
    name: String,
    digest: Digest,
    stage: Stage,
}

impl ExtensionSteps {
    fn fetch(&self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        Ok(Exchange::new(
            &endpoint,
            Method::GET,
            &format!("/extensions/v2/{}/signatures/{}", self.name, self.digest),
            Subject::Manifest,
            vec![repo_scope(&self.name, &["pull"])?],
        )?
        .header(header::ACCEPT, HeaderValue::from_static("application/json")))
    }
}

impl Steps for ExtensionSteps {
    type Output = Option<Vec<Vec<u8>>>;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        // Like a ping: a 401 is an answer (the header comes with it).
        Ok(Exchange::new(
            &endpoint,
            Method::GET,
            "/v2/",
            Subject::Registry,
            Vec::new(),
        )?
        .without_auth())
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        match self.stage {
            Stage::Probe => {
                if !(parts.status.is_success() || parts.status == StatusCode::UNAUTHORIZED) {
                    return Ok(Next::Fail(parts));
                }
                let supported = header_str(&parts.headers, SUPPORTS_SIGNATURES_HEADER)
                    .is_some_and(|v| v.trim() == "1");
                if !supported {
                    return Ok(Next::Done(None));
                }
                self.stage = Stage::Fetch;
                Ok(Next::Then(self.fetch(cx)?))
            }
            Stage::Fetch => {
                if parts.status != StatusCode::OK {
                    return Ok(Next::Fail(parts));
                }
                if content_length(&parts.headers).is_some_and(|n| n > SIGNATURE_LIST_LIMIT as u64) {
                    return Err(Error::TooLarge {
                        what: "signature list",
                        limit: SIGNATURE_LIST_LIMIT as u64,
                    });
                }
                Ok(Next::ReadBody(parts, SIGNATURE_LIST_LIMIT))
            }
        }
    }

    fn on_body(
        &mut self,
        _ex: &Exchange,
        _parts: Parts,
        body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        parse_signature_list(&body).map(|s| Next::Done(Some(s)))
    }
}

operation!(
    /// Reads an image's signatures through the registry's signature
    /// extension: `GET /v2/` (without credentials, as a ping) to see whether
    /// it answers `X-Registry-Supports-Signatures: 1`; if not, the result is
    /// `None`. If so, `GET /extensions/v2/<name>/signatures/<digest>` with
    /// the session's credentials (pull scope), and the decoded signatures
    /// of the list (see [`parse_signature_list`]). Any status but 200 from
    /// the extension is an error, as in containers/image.
    ExtensionSignatures,
    ExtensionSteps,
    Option<Vec<Vec<u8>>>
);

impl ExtensionSignatures {
    /// The signatures of manifest `digest` in repository `name` of registry
    /// `domain`.
    pub fn new(domain: &str, name: &str, digest: &Digest) -> ExtensionSignatures {
        ExtensionSignatures(Machine::new(ExtensionSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            digest: digest.clone(),
            stage: Stage::Probe,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_2_atomic_entries_only() {
        let body = br#"{"signatures":[
            {"schemaVersion":2,"type":"atomic","name":"sha256:00@a","content":"aGVsbG8="},
            {"schemaVersion":1,"type":"atomic","content":"eA=="},
            {"version":2,"type":"other","content":"eA=="},
            7,
            {"version":2,"type":"atomic","content":"d29ybGQ="}
        ]}"#;
        assert_eq!(
            parse_signature_list(body).expect("parses"),
            vec![b"hello".to_vec(), b"world".to_vec()]
        );
        assert!(parse_signature_list(br#"{}"#).expect("parses").is_empty());
        assert!(
            parse_signature_list(br#"{"signatures":null}"#)
                .expect("parses")
                .is_empty()
        );
    }

    #[test]
    fn bad_lists_are_typed_errors() {
        for body in [
            &b"not json"[..],
            br#"{"signatures":[{"schemaVersion":2,"type":"atomic"}]}"#,
            br#"{"signatures":[{"schemaVersion":2,"type":"atomic","content":"!!"}]}"#,
            br#"{"signatures":{}}"#,
        ] {
            assert!(matches!(
                parse_signature_list(body),
                Err(Error::InvalidResponse { .. })
            ));
        }
    }
}
