//! Typed views of the two schemes registries use: `Bearer` (the Docker token
//! flow, RFC 6750 §3) and `Basic` (RFC 7617). The scheme rules live here, not
//! in the parser: a `Basic` challenge without a realm parses, and
//! [`Basic::from_challenge`] refuses it.

use std::borrow::Cow;

use crate::challenge::{Challenge, OwnedChallenge};
use crate::scope::{Scope, ScopeError};

/// Why a challenge does not make a valid [`Bearer`] or [`Basic`] challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The challenge is for another scheme.
    #[error("expected a {expected} challenge, found scheme {found:?}")]
    WrongScheme {
        /// The scheme the view is for.
        expected: &'static str,
        /// The scheme of the challenge.
        found: String,
    },
    /// A required parameter is missing or empty.
    #[error("{scheme} challenge has no {name} parameter")]
    MissingParam {
        /// The scheme.
        scheme: &'static str,
        /// The parameter.
        name: &'static str,
    },
    /// The challenge carries a token68 where the scheme uses parameters.
    #[error("{scheme} challenge carries a token68 instead of parameters")]
    Token68 {
        /// The scheme.
        scheme: &'static str,
    },
    /// Basic's `charset` is not `UTF-8` (RFC 7617 §2.1 allows no other).
    #[error("Basic challenge has charset {0:?}; only \"UTF-8\" is defined")]
    Charset(String),
}

/// The parts of a challenge a view reads, for borrowed and owned challenges.
trait View {
    fn scheme(&self) -> &str;
    fn token68(&self) -> Option<&str>;
    fn for_each_param(&self, f: &mut dyn FnMut(&str, Cow<'_, str>));
}

impl View for Challenge<'_> {
    fn scheme(&self) -> &str {
        Challenge::scheme(self)
    }
    fn token68(&self) -> Option<&str> {
        Challenge::token68(self)
    }
    fn for_each_param(&self, f: &mut dyn FnMut(&str, Cow<'_, str>)) {
        for (n, v) in self.params() {
            f(n, v);
        }
    }
}

impl View for OwnedChallenge {
    fn scheme(&self) -> &str {
        OwnedChallenge::scheme(self)
    }
    fn token68(&self) -> Option<&str> {
        OwnedChallenge::token68(self)
    }
    fn for_each_param(&self, f: &mut dyn FnMut(&str, Cow<'_, str>)) {
        for (n, v) in self.params() {
            f(n, Cow::Borrowed(v));
        }
    }
}

fn check_scheme(c: &dyn View, scheme: &'static str) -> Result<(), ChallengeError> {
    if !c.scheme().eq_ignore_ascii_case(scheme) {
        return Err(ChallengeError::WrongScheme {
            expected: scheme,
            found: c.scheme().to_owned(),
        });
    }
    if c.token68().is_some() {
        return Err(ChallengeError::Token68 { scheme });
    }
    Ok(())
}

/// A `Bearer` challenge as a registry sends it: where to get a token
/// (`realm`), for which `service`, with which `scope`s, and, after a refused
/// token, the `error`.
///
/// ```
/// use berth_auth::{Bearer, parse_challenges};
/// let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#;
/// let bearer = Bearer::from_challenge(&parse_challenges(h)?[0])?;
/// assert_eq!(bearer.realm, "https://auth.docker.io/token");
/// assert_eq!(bearer.service.as_deref(), Some("registry.docker.io"));
/// assert_eq!(bearer.scope, ["repository:library/ubuntu:pull"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bearer {
    /// The token endpoint (a URL; checking it is the protocol's job).
    pub realm: String,
    /// The `service` to name in the token request.
    pub service: Option<String>,
    /// The scopes of the `scope` parameter (space-separated in the header),
    /// in order; empty when absent.
    pub scope: Vec<String>,
    /// The `error` code (`invalid_token`, `insufficient_scope`, ...).
    pub error: Option<String>,
    /// The `error_description`.
    pub error_description: Option<String>,
}

impl Bearer {
    /// The Bearer view of a parsed challenge. Needs scheme `Bearer` (any
    /// case), parameters rather than a token68, and a non-empty `realm`.
    pub fn from_challenge(challenge: &Challenge<'_>) -> Result<Self, ChallengeError> {
        Self::from_view(challenge)
    }

    /// The Bearer view of an owned challenge (same rules).
    pub fn from_owned(challenge: &OwnedChallenge) -> Result<Self, ChallengeError> {
        Self::from_view(challenge)
    }

    fn from_view(c: &dyn View) -> Result<Self, ChallengeError> {
        check_scheme(c, "Bearer")?;
        let mut b = Bearer {
            realm: String::new(),
            service: None,
            scope: Vec::new(),
            error: None,
            error_description: None,
        };
        c.for_each_param(&mut |name, value| {
            if name.eq_ignore_ascii_case("realm") {
                b.realm = value.into_owned();
            } else if name.eq_ignore_ascii_case("service") {
                b.service = Some(value.into_owned());
            } else if name.eq_ignore_ascii_case("scope") {
                b.scope = value
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            } else if name.eq_ignore_ascii_case("error") {
                b.error = Some(value.into_owned());
            } else if name.eq_ignore_ascii_case("error_description") {
                b.error_description = Some(value.into_owned());
            }
        });
        if b.realm.is_empty() {
            return Err(ChallengeError::MissingParam {
                scheme: "Bearer",
                name: "realm",
            });
        }
        Ok(b)
    }

    /// The `scope` entries parsed as [`Scope`]s.
    pub fn scopes(&self) -> impl Iterator<Item = Result<Scope, ScopeError>> + '_ {
        self.scope.iter().map(|s| s.parse())
    }

    /// Whether the server refused the token for lacking scope (RFC 6750
    /// `insufficient_scope`).
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }

    /// The challenge as a registry would send it (for berth's own registry).
    pub fn to_challenge(&self) -> Result<OwnedChallenge, crate::InvalidChallenge> {
        let mut params = vec![("realm", self.realm.clone())];
        if let Some(s) = &self.service {
            params.push(("service", s.clone()));
        }
        if !self.scope.is_empty() {
            params.push(("scope", self.scope.join(" ")));
        }
        if let Some(e) = &self.error {
            params.push(("error", e.clone()));
        }
        if let Some(e) = &self.error_description {
            params.push(("error_description", e.clone()));
        }
        OwnedChallenge::new("Bearer", params)
    }
}

/// A `Basic` challenge (RFC 7617): a `realm` (required) and an optional
/// `charset`, which can only be `UTF-8`.
///
/// ```
/// use berth_auth::{Basic, parse_challenges};
/// let basic = Basic::from_challenge(&parse_challenges(r#"Basic realm="GitHub Package Registry""#)?[0])?;
/// assert_eq!(basic.realm, "GitHub Package Registry");
/// assert!(Basic::from_challenge(&parse_challenges("Basic")?[0]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Basic {
    /// The protection space shown to a user.
    pub realm: String,
    /// `Some("UTF-8")` when the server asked for UTF-8 credentials.
    pub charset: Option<String>,
}

impl Basic {
    /// The Basic view of a parsed challenge: scheme `Basic` (any case),
    /// parameters, a `realm` (RFC 7617 §2: required; may be empty), and a
    /// `charset`, if any, of `UTF-8` (any case).
    pub fn from_challenge(challenge: &Challenge<'_>) -> Result<Self, ChallengeError> {
        Self::from_view(challenge)
    }

    /// The Basic view of an owned challenge (same rules).
    pub fn from_owned(challenge: &OwnedChallenge) -> Result<Self, ChallengeError> {
        Self::from_view(challenge)
    }

    fn from_view(c: &dyn View) -> Result<Self, ChallengeError> {
        check_scheme(c, "Basic")?;
        let mut realm = None;
        let mut charset = None;
        c.for_each_param(&mut |name, value| {
            if name.eq_ignore_ascii_case("realm") {
                realm = Some(value.into_owned());
            } else if name.eq_ignore_ascii_case("charset") {
                charset = Some(value.into_owned());
            }
        });
        let realm = realm.ok_or(ChallengeError::MissingParam {
            scheme: "Basic",
            name: "realm",
        })?;
        if let Some(cs) = &charset
            && !cs.eq_ignore_ascii_case("UTF-8")
        {
            return Err(ChallengeError::Charset(cs.clone()));
        }
        Ok(Basic { realm, charset })
    }

    /// Whether the server asked for UTF-8 credentials.
    pub fn is_utf8(&self) -> bool {
        self.charset.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_challenges;

    fn first(h: &str) -> Challenge<'_> {
        parse_challenges(h).unwrap().remove(0)
    }

    #[test]
    fn bearer_docker_hub_with_several_scopes_and_error() {
        let h = r#"bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull  repository:c:pull,push",error="insufficient_scope",error_description="need push""#;
        let b = Bearer::from_challenge(&first(h)).unwrap();
        assert_eq!(b.realm, "https://auth.docker.io/token");
        assert_eq!(b.scope, ["repository:a/b:pull", "repository:c:pull,push"]);
        assert!(b.is_insufficient_scope());
        assert_eq!(b.error_description.as_deref(), Some("need push"));
        let scopes: Vec<Scope> = b.scopes().collect::<Result<_, _>>().unwrap();
        assert_eq!(scopes[1].actions(), ["pull", "push"]);
        let back = b.to_challenge().unwrap();
        assert_eq!(Bearer::from_owned(&back).unwrap(), b);
    }

    #[test]
    fn bearer_rules() {
        assert_eq!(
            Bearer::from_challenge(&first("Bearer")),
            Err(ChallengeError::MissingParam {
                scheme: "Bearer",
                name: "realm"
            })
        );
        assert_eq!(
            Bearer::from_challenge(&first("Bearer realm=\"\"")),
            Err(ChallengeError::MissingParam {
                scheme: "Bearer",
                name: "realm"
            })
        );
        assert!(matches!(
            Bearer::from_challenge(&first("Basic realm=x")),
            Err(ChallengeError::WrongScheme { .. })
        ));
        assert_eq!(
            Bearer::from_challenge(&first("Bearer abc=")),
            Err(ChallengeError::Token68 { scheme: "Bearer" })
        );
        let b = Bearer::from_challenge(&first(r#"Bearer realm="https://x/t""#)).unwrap();
        assert_eq!(b.service, None);
        assert!(b.scope.is_empty());
    }

    #[test]
    fn basic_rules() {
        let b = Basic::from_challenge(&first(r#"BASIC realm="Dev", charset="utf-8""#)).unwrap();
        assert_eq!(b.realm, "Dev");
        assert!(b.is_utf8());
        assert_eq!(
            Basic::from_challenge(&first("Basic realm=\"\""))
                .unwrap()
                .realm,
            ""
        );
        assert_eq!(
            Basic::from_challenge(&first("Basic")),
            Err(ChallengeError::MissingParam {
                scheme: "Basic",
                name: "realm"
            })
        );
        assert_eq!(
            Basic::from_challenge(&first("Basic realm=x, charset=latin1")),
            Err(ChallengeError::Charset("latin1".into()))
        );
        assert!(matches!(
            Basic::from_challenge(&first("Bearer realm=x")),
            Err(ChallengeError::WrongScheme { .. })
        ));
        let owned = first("Basic realm=x").to_owned();
        assert_eq!(Basic::from_owned(&owned).unwrap().realm, "x");
    }
}
