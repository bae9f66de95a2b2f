//! Token scopes, as the distribution token specification writes them:
//!
//! ```text
//! scope        = resourcetype ":" resourcename ":" action *( "," action )
//! resourcetype = typevalue [ "(" typevalue ")" ]     ; repository(plugin)
//! ```
//!
//! The resource name may itself hold `:` (a registry host with a port), so
//! the actions are what follows the last `:`. Reading is a little more lenient
//! than the specification's character sets (`[a-z0-9]+` types, `[a-z]*`
//! actions), because a scope sent by a server is echoed back to it; writing
//! always gives back what was read.

use std::fmt;
use std::str::FromStr;

/// A scope that does not follow the grammar: what was expected and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    offset: usize,
    expected: &'static str,
}

impl ScopeError {
    fn new(offset: usize, expected: &'static str) -> Self {
        ScopeError { offset, expected }
    }

    /// Byte offset in the scope text.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} at byte {} of scope",
            self.expected, self.offset
        )
    }
}

impl std::error::Error for ScopeError {}

fn is_type_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_action_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'*')
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// One token scope: `repository:library/ubuntu:pull,push`,
/// `repository(plugin):name:pull`, `registry:catalog:*`.
///
/// ```
/// use berth_auth::Scope;
/// let s: Scope = "repository:localhost:5000/app:pull,push".parse()?;
/// assert_eq!(s.resource_type(), "repository");
/// assert_eq!(s.name(), "localhost:5000/app");
/// assert_eq!(s.actions(), ["pull", "push"]);
/// assert_eq!(s.to_string(), "repository:localhost:5000/app:pull,push");
/// # Ok::<(), berth_auth::ScopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    resource_type: String,
    class: Option<String>,
    name: String,
    actions: Vec<String>,
}

impl Scope {
    /// A scope from its parts. Each part must follow the grammar above
    /// (the type and class `[A-Za-z0-9_.-]+`, a name of visible ASCII,
    /// actions `[A-Za-z0-9_*-]+`, at least one). Repeated actions are kept
    /// once.
    pub fn new<A: AsRef<str>>(
        resource_type: &str,
        class: Option<&str>,
        name: &str,
        actions: impl IntoIterator<Item = A>,
    ) -> Result<Self, ScopeError> {
        let mut text = String::from(resource_type);
        if let Some(c) = class {
            text.push('(');
            text.push_str(c);
            text.push(')');
        }
        text.push(':');
        text.push_str(name);
        text.push(':');
        for (k, a) in actions.into_iter().enumerate() {
            if k > 0 {
                text.push(',');
            }
            text.push_str(a.as_ref());
        }
        let scope = Scope::parse(&text)?;
        // A name or type holding the separators would parse differently.
        if scope.resource_type != resource_type
            || scope.class.as_deref() != class
            || scope.name != name
        {
            return Err(ScopeError::new(
                0,
                "type, class and name without ':', '(' or ')' where they would be ambiguous",
            ));
        }
        Ok(scope)
    }

    /// `repository:<name>:<actions>`.
    pub fn repository<A: AsRef<str>>(
        name: &str,
        actions: impl IntoIterator<Item = A>,
    ) -> Result<Self, ScopeError> {
        Scope::new("repository", None, name, actions)
    }

    /// `registry:catalog:*`, the scope of the catalog endpoint.
    pub fn registry_catalog() -> Self {
        Scope {
            resource_type: "registry".to_owned(),
            class: None,
            name: "catalog".to_owned(),
            actions: vec!["*".to_owned()],
        }
    }

    /// Parses one scope.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let b = text.as_bytes();
        // Resource type.
        let t_end = b.iter().position(|&c| !is_type_char(c)).unwrap_or(b.len());
        if t_end == 0 {
            return Err(ScopeError::new(0, "resource type"));
        }
        let mut pos = t_end;
        let mut class = None;
        if b.get(pos) == Some(&b'(') {
            let start = pos + 1;
            let len = b[start..]
                .iter()
                .position(|&c| !is_type_char(c))
                .unwrap_or(b.len() - start);
            if len == 0 {
                return Err(ScopeError::new(start, "resource class"));
            }
            if b.get(start + len) != Some(&b')') {
                return Err(ScopeError::new(start + len, "')' after resource class"));
            }
            class = Some(text[start..start + len].to_owned());
            pos = start + len + 1;
        }
        if b.get(pos) != Some(&b':') {
            return Err(ScopeError::new(pos, "':' after resource type"));
        }
        let name_start = pos + 1;
        let Some(last_colon) = text.rfind(':').filter(|&k| k > pos) else {
            return Err(ScopeError::new(
                b.len(),
                "':' between resource name and actions",
            ));
        };
        let name = &text[name_start..last_colon];
        if name.is_empty() {
            return Err(ScopeError::new(name_start, "resource name"));
        }
        if let Some(k) = name.bytes().position(|c| !is_name_char(c)) {
            return Err(ScopeError::new(
                name_start + k,
                "visible ASCII character in resource name",
            ));
        }
        let mut actions: Vec<String> = Vec::new();
        let mut start = last_colon + 1;
        for action in text[last_colon + 1..].split(',') {
            if action.is_empty() {
                return Err(ScopeError::new(start, "action"));
            }
            if let Some(k) = action.bytes().position(|c| !is_action_char(c)) {
                return Err(ScopeError::new(
                    start + k,
                    "action character ([A-Za-z0-9_*-])",
                ));
            }
            if !actions.iter().any(|a| a == action) {
                actions.push(action.to_owned());
            }
            start += action.len() + 1;
        }
        Ok(Scope {
            resource_type: text[..t_end].to_owned(),
            class,
            name: name.to_owned(),
            actions,
        })
    }

    /// The resource type: `repository`, `registry`, ...
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The resource class, as in `repository(plugin)`.
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// The resource name: a repository path (possibly with a registry host
    /// and port), or `catalog`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions, in order, each once.
    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    /// Whether the scope grants `action` (or `*`).
    pub fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action || a == "*")
    }

    /// Whether `other` names the same resource (type, class and name).
    pub fn same_resource(&self, other: &Scope) -> bool {
        self.resource_type == other.resource_type
            && self.class == other.class
            && self.name == other.name
    }

    /// Adds the actions of `other` (same resource) that this scope lacks.
    fn absorb(&mut self, other: &Scope) {
        for a in &other.actions {
            if !self.actions.contains(a) {
                self.actions.push(a.clone());
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource_type)?;
        if let Some(c) = &self.class {
            write!(f, "({c})")?;
        }
        write!(f, ":{}:", self.name)?;
        for (k, a) in self.actions.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
            }
            f.write_str(a)?;
        }
        Ok(())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

/// Parses a space-separated list of scopes (the value of one `scope`
/// parameter). Offsets in errors are within `text`.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, ScopeError> {
    let mut out = Vec::new();
    let mut offset = 0;
    for part in text.split(' ') {
        if !part.is_empty() {
            out.push(
                Scope::parse(part).map_err(|e| ScopeError::new(offset + e.offset, e.expected))?,
            );
        }
        offset += part.len() + 1;
    }
    Ok(out)
}

/// Joins scopes with spaces, as one `scope` parameter.
pub fn join_scopes(scopes: &[Scope]) -> String {
    let mut out = String::new();
    for (k, s) in scopes.iter().enumerate() {
        if k > 0 {
            out.push(' ');
        }
        out.push_str(&s.to_string());
    }
    out
}

/// The scopes for one token request with the newly needed scope first and the
/// ones already held after it (without repeats), as go-containerregistry
/// orders them: Docker Hub regressed on several `scope` parameters
/// (docker/hub-feedback#2215) and honours the first.
pub fn scopes_new_first(new: &Scope, held: &[Scope]) -> Vec<Scope> {
    let mut out = Vec::with_capacity(held.len() + 1);
    out.push(new.clone());
    for s in held {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// Merges scopes per resource: one scope per (type, class, name), in order of
/// first appearance, with the union of the actions (regclient's way).
pub fn merge_scopes<'s>(scopes: impl IntoIterator<Item = &'s Scope>) -> Vec<Scope> {
    let mut out: Vec<Scope> = Vec::new();
    for s in scopes {
        match out.iter_mut().find(|o| o.same_resource(s)) {
            Some(o) => o.absorb(s),
            None => out.push(s.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Scope {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parse_and_format() {
        for text in [
            "repository:library/ubuntu:pull",
            "repository:foo/bar:pull,push",
            "repository(plugin):name:pull",
            "registry:catalog:*",
            "repository:localhost:5000/a/b:pull,delete",
            "repository:foo:*",
        ] {
            assert_eq!(s(text).to_string(), text);
        }
        let p = s("repository(plugin):name:pull");
        assert_eq!(p.class(), Some("plugin"));
        assert_eq!(p.name(), "name");
        assert_eq!(Scope::registry_catalog().to_string(), "registry:catalog:*");
        assert!(s("registry:catalog:*").allows("anything"));
        assert_eq!(s("repository:a:pull,pull,push").actions(), ["pull", "push"]);
    }

    #[test]
    fn errors() {
        for (text, offset) in [
            ("", 0),
            (":a:pull", 0),
            ("repository", 10),
            ("repository:name", 15),
            ("repository::pull", 11),
            ("repository:a:", 13),
            ("repository:a:pull,", 18),
            ("repository:a:pu ll", 15),
            ("repository(:a:pull", 11),
            ("repository(x:a:pull", 12),
            ("repository:a b:pull", 12),
        ] {
            let e = Scope::parse(text).unwrap_err();
            assert_eq!(e.offset(), offset, "{text:?}: {e}");
        }
        assert!(Scope::repository("a:b", ["pull"]).is_ok());
        assert!(Scope::new("repo(x)", None, "a", ["pull"]).is_err());
        assert!(Scope::repository("a", Vec::<&str>::new()).is_err());
    }

    #[test]
    fn list() {
        let scopes = parse_scopes("repository:a:pull  repository:b:push").unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(join_scopes(&scopes), "repository:a:pull repository:b:push");
        assert_eq!(
            parse_scopes("repository:a:pull repository:b")
                .unwrap_err()
                .offset(),
            30
        );
    }

    #[test]
    fn new_scope_first() {
        let held = [s("repository:a:pull"), s("repository:b:pull")];
        let out = scopes_new_first(&s("repository:b:pull"), &held);
        assert_eq!(join_scopes(&out), "repository:b:pull repository:a:pull");
        let out = scopes_new_first(&s("repository:c:pull,push"), &held);
        assert_eq!(
            join_scopes(&out),
            "repository:c:pull,push repository:a:pull repository:b:pull"
        );
    }

    #[test]
    fn merge_per_resource() {
        let all = [
            s("repository:a:pull"),
            s("repository:b:pull"),
            s("repository:a:push,pull"),
            s("repository(plugin):a:pull"),
            s("registry:catalog:*"),
        ];
        let out = merge_scopes(&all);
        assert_eq!(
            join_scopes(&out),
            "repository:a:pull,push repository:b:pull repository(plugin):a:pull registry:catalog:*"
        );
    }
}
