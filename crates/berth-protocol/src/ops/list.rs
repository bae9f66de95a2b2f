//! Listings with pagination: tags of a repository, the catalog of a
//! registry. Pages follow `Link: <...>; rel="next"`, never to another host,
//! and a registry that loops is stopped.

use std::collections::HashSet;

use berth_auth::Scope;
use bytes::Bytes;
use http::response::Parts;
use http::{Method, Uri};
use serde::Deserialize;

use super::repo_scope;
use crate::endpoint::Endpoint;
use crate::error::{Error, Subject};
use crate::exchange::{Exchange, Machine, Next, Steps, encode_component, operation};
use crate::link::{MAX_PAGES, next_page};
use crate::op::Context;

/// The most bytes of one listing page read.
pub const PAGE_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// The most entries a listing collects across its pages.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Whether a listing that has `have` entries may take `more`: not past
/// [`MAX_ENTRIES`] in all.
pub(crate) fn within_max_entries(
    what: &'static str,
    have: usize,
    more: usize,
) -> Result<(), Error> {
    if have.saturating_add(more) > MAX_ENTRIES {
        return Err(Error::TooLarge {
            what,
            limit: MAX_ENTRIES as u64,
        });
    }
    Ok(())
}

/// ECR refuses a catalog page size over 1000.
pub const MAX_CATALOG_PAGE: u32 = 1000;

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<Option<String>>>,
}

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<Option<String>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tags,
    Catalog,
}

pub(crate) struct ListSteps {
    kind: Kind,
    domain: String,
    name: String,
    page_size: Option<u32>,
    last: Option<String>,
    endpoint: Option<Endpoint>,
    seen: HashSet<Uri>,
    pages: usize,
    entries: Vec<String>,
}

impl ListSteps {
    fn scopes(&self) -> Result<Vec<Scope>, Error> {
        Ok(match self.kind {
            Kind::Tags => vec![repo_scope(&self.name, &["pull"])?],
            Kind::Catalog => vec![Scope::registry_catalog()],
        })
    }

    fn subject(&self) -> Subject {
        match self.kind {
            Kind::Tags => Subject::Repository,
            Kind::Catalog => Subject::Registry,
        }
    }
}

impl Steps for ListSteps {
    type Output = Vec<String>;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        let mut path = match self.kind {
            Kind::Tags => format!("/v2/{}/tags/list", self.name),
            Kind::Catalog => "/v2/_catalog".to_owned(),
        };
        let mut sep = '?';
        if let Some(n) = self.page_size {
            path.push_str(&format!("{sep}n={n}"));
            sep = '&';
        }
        if let Some(last) = &self.last {
            path.push_str(&format!("{sep}last={}", encode_component(last)));
        }
        let ex = Exchange::new(
            &endpoint,
            Method::GET,
            &path,
            self.subject(),
            self.scopes()?,
        )?;
        self.seen.insert(ex.uri().clone());
        self.endpoint = Some(endpoint);
        Ok(ex)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Vec<String>>, Error> {
        if parts.status.is_success() {
            Ok(Next::ReadBody(parts, PAGE_BODY_LIMIT))
        } else {
            Ok(Next::Fail(parts))
        }
    }

    fn on_body(
        &mut self,
        ex: &Exchange,
        parts: Parts,
        body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Vec<String>>, Error> {
        // Nexus puts nulls in tag lists; Artifactory puts digests there.
        let page = match self.kind {
            Kind::Tags => serde_json::from_slice::<TagsPage>(&body)
                .map_err(|e| Error::invalid("tag list", e))?
                .tags
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .filter(|t| berth_reference::grammar::check_tag(t).is_ok())
                .collect::<Vec<_>>(),
            Kind::Catalog => serde_json::from_slice::<CatalogPage>(&body)
                .map_err(|e| Error::invalid("catalog", e))?
                .repositories
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
        };
        within_max_entries("listing", self.entries.len(), page.len())?;
        self.entries.extend(page);
        self.pages += 1;
        match next_page(ex.uri(), &parts.headers)? {
            None => Ok(Next::Done(std::mem::take(&mut self.entries))),
            Some(next) => {
                if self.pages >= MAX_PAGES || !self.seen.insert(next.clone()) {
                    return Err(Error::invalid(
                        "Link header",
                        format!(
                            "pagination loops (page {} points back to an earlier page)",
                            self.pages
                        ),
                    ));
                }
                let endpoint = self
                    .endpoint
                    .as_ref()
                    .ok_or(Error::Misuse("listing without endpoint"))?;
                Ok(Next::Then(Exchange::with_uri(
                    endpoint,
                    Method::GET,
                    next,
                    self.subject(),
                    self.scopes()?,
                )))
            }
        }
    }
}

operation!(
    /// `GET /v2/<name>/tags/list`, every page. Null entries are dropped, and
    /// so are entries that are not tags (some registries list digests).
    ListTags,
    ListSteps,
    Vec<String>
);

impl ListTags {
    /// Every tag of repository `name` on registry `domain`.
    pub fn new(domain: &str, name: &str) -> ListTags {
        Self::paged(domain, name, None, None)
    }

    /// Tags from after `last`, asking for pages of `page_size`.
    pub fn paged(domain: &str, name: &str, page_size: Option<u32>, last: Option<&str>) -> ListTags {
        ListTags(Machine::new(ListSteps {
            kind: Kind::Tags,
            domain: domain.to_owned(),
            name: name.to_owned(),
            page_size,
            last: last.map(str::to_owned),
            endpoint: None,
            seen: HashSet::new(),
            pages: 0,
            entries: Vec::new(),
        }))
    }
}

operation!(
    /// `GET /v2/_catalog`, every page (page size at most 1000, as ECR
    /// requires).
    Catalog,
    ListSteps,
    Vec<String>
);

impl Catalog {
    /// Every repository of registry `domain`.
    pub fn new(domain: &str, page_size: Option<u32>) -> Catalog {
        Catalog(Machine::new(ListSteps {
            kind: Kind::Catalog,
            domain: domain.to_owned(),
            name: String::new(),
            page_size: Some(page_size.unwrap_or(MAX_CATALOG_PAGE).min(MAX_CATALOG_PAGE)),
            last: None,
            endpoint: None,
            seen: HashSet::new(),
            pages: 0,
            entries: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_stop_at_max_entries() {
        assert!(within_max_entries("listing", MAX_ENTRIES - 1, 1).is_ok());
        assert!(within_max_entries("listing", 0, MAX_ENTRIES).is_ok());
        for (have, more) in [(MAX_ENTRIES, 1), (1, MAX_ENTRIES), (usize::MAX, usize::MAX)] {
            let e = within_max_entries("referrers listing", have, more).expect_err("too many");
            assert!(
                matches!(e, Error::TooLarge { what: "referrers listing", limit } if limit == MAX_ENTRIES as u64),
                "{e:?}"
            );
        }
    }
}
