//! Fault injection: rules that make the registry misbehave in exact,
//! bounded ways, so a client's retries, resumes and verification can be
//! tested. A [`Faults`] handle is shared with the running registry and may
//! be changed at any time; each request consults the rules once, when it
//! arrives.
//!
//! ```
//! use berth_registry::{Fault, FaultRule, Faults};
//!
//! let faults = Faults::new();
//! // The first two blob GETs answer 503; the third is served.
//! faults.add(FaultRule::new("GET", "/blobs/", Fault::status(503)).times(2));
//! // Every manifest GET is cut after 10 bytes.
//! faults.add(FaultRule::new("GET", "/manifests/", Fault::Cut { after: 10 }).always());
//! assert_eq!(faults.fired(), 0);
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};

/// One way to misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer this status (5xx, 429, ...) instead of serving the request,
    /// with `Retry-After: <seconds>` when given.
    Status {
        /// The status.
        status: StatusCode,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Send the first `after` bytes of the response body, then drop the
    /// connection.
    Cut {
        /// How many body bytes are sent.
        after: u64,
    },
    /// Send the response body at this many bytes per second (at least 1),
    /// in slices every 100 ms.
    Slow {
        /// The rate.
        bytes_per_second: u64,
    },
    /// Flip the bits of the body byte at `offset` (the last byte when the
    /// body is shorter): wrong bytes under the right digest.
    Corrupt {
        /// Which byte.
        offset: u64,
    },
    /// Ignore `Range` on a blob GET: answer 200 with the whole blob.
    IgnoreRange,
}

impl Fault {
    /// [`Fault::Status`] with no `Retry-After`. A code outside 100..=999
    /// becomes 500.
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            status: StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            retry_after: None,
        }
    }

    /// 429 Too Many Requests with `Retry-After: <seconds>`.
    pub fn too_many_requests(retry_after_seconds: u64) -> Fault {
        Fault::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(retry_after_seconds),
        }
    }
}

/// A fault for the requests that match a method and a path substring, the
/// first `k` times (once by default) or always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    method: Option<Method>,
    path_contains: String,
    fault: Fault,
    remaining: Option<u64>,
    fired: u64,
}

impl FaultRule {
    /// Matches requests with `method` (`"*"` for any) whose path (with
    /// its query) contains `path_contains`; fires once.
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> FaultRule {
        FaultRule {
            method: if method == "*" {
                None
            } else {
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()
            },
            path_contains: path_contains.to_owned(),
            fault,
            remaining: Some(1),
            fired: 0,
        }
    }

    /// Fires for the first `k` matching requests.
    pub fn times(mut self, k: u64) -> FaultRule {
        self.remaining = Some(k);
        self
    }

    /// Fires for every matching request.
    pub fn always(mut self) -> FaultRule {
        self.remaining = None;
        self
    }

    /// The fault.
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// How many requests it fired for.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.remaining != Some(0)
            && self.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
    }
}

/// The faults a registry applies: a shared, changeable list of
/// [`FaultRule`]s. Clones share the list.
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("rules", &self.rules())
            .finish()
    }
}

/// What one request is to suffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) status: Option<(StatusCode, Option<u64>)>,
    pub(crate) cut: Option<u64>,
    pub(crate) slow: Option<u64>,
    pub(crate) corrupt: Option<u64>,
    pub(crate) ignore_range: bool,
}

impl Applied {
    pub(crate) fn shapes_body(&self) -> bool {
        self.cut.is_some() || self.slow.is_some() || self.corrupt.is_some()
    }
}

impl Faults {
    /// No rules.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Adds a rule (rules are consulted in the order added).
    pub fn add(&self, rule: FaultRule) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.push(rule);
        }
    }

    /// This handle with `rule` added.
    pub fn with(self, rule: FaultRule) -> Faults {
        self.add(rule);
        self
    }

    /// Removes every rule.
    pub fn clear(&self) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.clear();
        }
    }

    /// A copy of the rules, with how often each fired.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many times any rule fired.
    pub fn fired(&self) -> u64 {
        self.rules().iter().map(|r| r.fired).sum()
    }

    /// Consults the rules for one request. The first matching status rule
    /// answers it, and then no other rule fires (the request is never
    /// served); otherwise every matching rule fires.
    pub(crate) fn apply(&self, method: &Method, path_and_query: &str) -> Applied {
        let mut applied = Applied::default();
        let Ok(mut rules) = self.rules.lock() else {
            return applied;
        };
        let status_rule = rules.iter().position(|r| {
            matches!(r.fault, Fault::Status { .. }) && r.matches(method, path_and_query)
        });
        for (i, rule) in rules.iter_mut().enumerate() {
            let is_status = matches!(rule.fault, Fault::Status { .. });
            let fires = match status_rule {
                Some(s) => i == s,
                None => !is_status && rule.matches(method, path_and_query),
            };
            if !fires {
                continue;
            }
            if let Some(r) = rule.remaining.as_mut() {
                *r -= 1;
            }
            rule.fired += 1;
            match rule.fault {
                Fault::Status {
                    status,
                    retry_after,
                } => applied.status = Some((status, retry_after)),
                Fault::Cut { after } => applied.cut = Some(after),
                Fault::Slow { bytes_per_second } => {
                    applied.slow = Some(bytes_per_second.max(1));
                }
                Fault::Corrupt { offset } => applied.corrupt = Some(offset),
                Fault::IgnoreRange => applied.ignore_range = true,
            }
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_k_times_then_stop() {
        let faults = Faults::new()
            .with(FaultRule::new("GET", "/blobs/", Fault::status(503)).times(2))
            .with(FaultRule::new("*", "/manifests/", Fault::Cut { after: 3 }).always());
        let get = Method::GET;
        assert_eq!(
            faults.apply(&get, "/v2/a/blobs/sha256:x").status,
            Some((StatusCode::SERVICE_UNAVAILABLE, None))
        );
        assert!(faults.apply(&get, "/v2/a/blobs/sha256:x").status.is_some());
        assert_eq!(
            faults.apply(&get, "/v2/a/blobs/sha256:x"),
            Applied::default()
        );
        assert_eq!(
            faults.apply(&Method::POST, "/v2/a/blobs/"),
            Applied::default()
        );
        for _ in 0..3 {
            assert_eq!(
                faults.apply(&Method::HEAD, "/v2/a/manifests/x").cut,
                Some(3)
            );
        }
        assert_eq!(faults.fired(), 5);
        faults.clear();
        assert_eq!(faults.apply(&get, "/v2/a/manifests/x"), Applied::default());
    }
}
