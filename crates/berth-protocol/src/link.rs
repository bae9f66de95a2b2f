//! Pagination by `Link` header (RFC 8288), as tag lists and the catalog use
//! it: `Link: </v2/_catalog?last=b&n=100>; rel="next"`.

use http::{HeaderMap, Uri};

use crate::error::Error;

/// The most pages an operation follows before giving up; a registry that
/// keeps sending `next` links is looping.
pub const MAX_PAGES: usize = 10_000;

/// The `rel="next"` target of the response's `Link` headers, resolved
/// against the request URL. A link to another scheme, host or port is an
/// error: berth never follows pagination off the registry.
pub fn next_page(request: &Uri, headers: &HeaderMap) -> Result<Option<Uri>, Error> {
    for value in headers.get_all(http::header::LINK) {
        let Ok(value) = value.to_str() else {
            return Err(Error::invalid("Link header", "not visible ASCII"));
        };
        for link in split_links(value) {
            let Some((target, params)) = parse_link(link) else {
                return Err(Error::invalid(
                    "Link header",
                    format!("cannot parse {link:?}"),
                ));
            };
            let is_next = params.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("rel")
                    && v.split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if !is_next {
                continue;
            }
            let next = crate::redirect::resolve(request, target)
                .ok_or_else(|| Error::invalid("Link header", format!("not a URL: {target:?}")))?;
            if !crate::redirect::same_origin(request, &next) {
                return Err(Error::invalid(
                    "Link header",
                    format!(
                        "the next page points to another host: {}",
                        crate::error::redact_url(&next)
                    ),
                ));
            }
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// Splits a header value into links at commas outside `<...>` and quotes.
fn split_links(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_angle, mut in_quote, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' if !in_angle => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_angle && !in_quote => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// `<target>; k=v; k="v"` into the target and its parameters.
fn parse_link(link: &str) -> Option<(&str, Vec<(&str, String)>)> {
    let rest = link.strip_prefix('<')?;
    let (target, mut rest) = rest.split_once('>')?;
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(';')?.trim_start();
        let (key, after) = rest.split_once('=').unwrap_or((rest, ""));
        let key = key.trim();
        let after = after.trim_start();
        if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            params.push((key, value));
            rest = &q[end?..];
        } else {
            let end = after.find(';').unwrap_or(after.len());
            params.push((key, after[..end].trim().to_owned()));
            rest = &after[end..];
        }
    }
    Some((target, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(values: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(http::header::LINK, v.parse().expect("value"));
        }
        m
    }

    #[test]
    fn next_links() {
        let req: Uri = "https://r.example/v2/_catalog?n=2".parse().expect("uri");
        let next = next_page(&req, &h(&[r#"</v2/_catalog?last=b&n=2>; rel="next""#])).expect("ok");
        assert_eq!(
            next,
            Some(
                "https://r.example/v2/_catalog?last=b&n=2"
                    .parse()
                    .expect("uri")
            )
        );
        let next = next_page(
            &req,
            &h(&[r#"<https://r.example/x>; rel="prev", </y?a=1,2>; rel=next"#]),
        )
        .expect("ok");
        assert_eq!(
            next,
            Some("https://r.example/y?a=1,2".parse().expect("uri"))
        );
        assert_eq!(next_page(&req, &h(&[])).expect("ok"), None);
        assert_eq!(
            next_page(&req, &h(&[r#"</x>; rel="prev""#])).expect("ok"),
            None
        );
    }

    #[test]
    fn a_link_off_the_registry_is_refused() {
        let req: Uri = "https://r.example/v2/a/tags/list".parse().expect("uri");
        let e = next_page(
            &req,
            &h(&[r#"<https://evil.example/v2/a/tags/list?last=x>; rel="next""#]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("another host"), "{e}");
        assert!(next_page(&req, &h(&["garbage"])).is_err());
    }
}
