//! The referrers API: `GET /v2/<name>/referrers/<digest>`, with the tag
//! schema (`sha256-<hex>`) as the fallback where a registry lacks the API.

use std::collections::HashSet;

use berth_manifest::{Descriptor, Limits, Manifest, MediaType};
use berth_reference::Digest;
use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, Uri, header};

use super::{header_str, repo_scope};
use crate::endpoint::Endpoint;
use crate::error::{Error, Subject};
use crate::exchange::{Exchange, Machine, Next, Steps, encode_component, operation};
use crate::link::{MAX_PAGES, next_page};
use crate::op::Context;

/// Where referrers were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// The descriptors of the manifests that refer to the subject, filtered
    /// by artifact type when one was asked for.
    pub descriptors: Vec<Descriptor>,
    /// Whether the registry served the referrers API (false: the tag
    /// schema was used).
    pub api: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Api,
    TagSchema,
}

pub(crate) struct ReferrersSteps {
    domain: String,
    name: String,
    subject: Digest,
    artifact_type: Option<MediaType>,
    endpoint: Option<Endpoint>,
    stage: Stage,
    seen: HashSet<Uri>,
    found: Vec<Descriptor>,
    limits: Limits,
}

impl ReferrersSteps {
    fn scopes(&self) -> Result<Vec<berth_auth::Scope>, Error> {
        Ok(vec![repo_scope(&self.name, &["pull"])?])
    }

    /// The tag the tag schema uses: `<alg>-<encoded>`.
    fn fallback_tag(&self) -> String {
        format!("{}-{}", self.subject.algorithm(), self.subject.encoded())
    }

    fn keep(&self, d: &Descriptor) -> bool {
        match &self.artifact_type {
            None => true,
            Some(t) => d
                .artifact_type
                .as_ref()
                .is_some_and(|a| a.essence() == t.essence()),
        }
    }

    fn index_entries(&self, parts: &Parts, body: &Bytes) -> Result<Vec<Descriptor>, Error> {
        let ct = header_str(&parts.headers, header::CONTENT_TYPE);
        let manifest = Manifest::from_vec_with_limits(body.to_vec(), ct, &self.limits)
            .map_err(|e| Error::invalid("referrers index", e))?;
        if !manifest.is_index() {
            return Err(Error::invalid(
                "referrers index",
                format!("got a {}", manifest.media_type()),
            ));
        }
        Ok(manifest
            .manifests()
            .iter()
            .filter(|d| self.keep(d))
            .cloned()
            .collect())
    }
}

impl Steps for ReferrersSteps {
    type Output = Referrers;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        let mut path = format!("/v2/{}/referrers/{}", self.name, self.subject);
        if let Some(t) = &self.artifact_type {
            path.push_str(&format!("?artifactType={}", encode_component(t.as_str())));
        }
        let ex = Exchange::new(
            &endpoint,
            Method::GET,
            &path,
            Subject::Manifest,
            self.scopes()?,
        )?
        .header(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        );
        self.seen.insert(ex.uri().clone());
        self.endpoint = Some(endpoint);
        Ok(ex)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Referrers>, Error> {
        let limit = usize::try_from(self.limits.manifest).unwrap_or(usize::MAX);
        match (self.stage, parts.status) {
            (_, s) if s.is_success() => Ok(Next::ReadBody(parts, limit)),
            // No referrers API: try the tag schema.
            (Stage::Api, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) => {
                self.stage = Stage::TagSchema;
                let endpoint = self
                    .endpoint
                    .as_ref()
                    .ok_or(Error::Misuse("referrers without endpoint"))?;
                let ex = Exchange::new(
                    endpoint,
                    Method::GET,
                    &format!("/v2/{}/manifests/{}", self.name, self.fallback_tag()),
                    Subject::Tag,
                    self.scopes()?,
                )?
                .header(
                    header::ACCEPT,
                    HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
                );
                Ok(Next::Then(ex))
            }
            // No fallback tag: nothing refers to the subject.
            (Stage::TagSchema, StatusCode::NOT_FOUND) => Ok(Next::Done(Referrers {
                descriptors: Vec::new(),
                api: false,
            })),
            _ => Ok(Next::Fail(parts)),
        }
    }

    fn on_body(
        &mut self,
        ex: &Exchange,
        parts: Parts,
        body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Referrers>, Error> {
        let entries = self.index_entries(&parts, &body)?;
        super::list::within_max_entries("referrers listing", self.found.len(), entries.len())?;
        self.found.extend(entries);
        if self.stage == Stage::TagSchema {
            return Ok(Next::Done(Referrers {
                descriptors: std::mem::take(&mut self.found),
                api: false,
            }));
        }
        match next_page(ex.uri(), &parts.headers)? {
            None => Ok(Next::Done(Referrers {
                descriptors: std::mem::take(&mut self.found),
                api: true,
            })),
            Some(next) => {
                if self.seen.len() >= MAX_PAGES || !self.seen.insert(next.clone()) {
                    return Err(Error::invalid("Link header", "referrers pagination loops"));
                }
                let endpoint = self
                    .endpoint
                    .as_ref()
                    .ok_or(Error::Misuse("referrers without endpoint"))?;
                Ok(Next::Then(Exchange::with_uri(
                    endpoint,
                    Method::GET,
                    next,
                    Subject::Manifest,
                    self.scopes()?,
                )))
            }
        }
    }
}

operation!(
    /// Lists the manifests that refer to `subject` (signatures, SBOMs,
    /// attestations), optionally of one artifact type.
    ListReferrers,
    ReferrersSteps,
    Referrers
);

impl ListReferrers {
    /// Referrers of `subject` in repository `name` of registry `domain`.
    pub fn new(
        domain: &str,
        name: &str,
        subject: &Digest,
        artifact_type: Option<MediaType>,
    ) -> ListReferrers {
        ListReferrers(Machine::new(ReferrersSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            subject: subject.clone(),
            artifact_type,
            endpoint: None,
            stage: Stage::Api,
            seen: HashSet::new(),
            found: Vec::new(),
            limits: Limits::default(),
        }))
    }
}
