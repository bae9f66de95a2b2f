//! The grammar of references and digests, rule by rule.
//!
//! These are the pieces [`crate::Reference::parse`] is made of, public so
//! that other layers (a registry validating repository names, a manifest
//! parser validating digests) apply exactly the same rules. Each check works
//! on bytes, allocates nothing, and on failure returns the byte offset and
//! the rule that was broken.
//!
//! The rules are those of Go's `distribution/reference` regular expressions:
//!
//! ```text
//! path-component   [a-z0-9]+ (separator [a-z0-9]+)*     separator: . _ __ -+
//! domain-component [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! domain-and-port  (domain-component ('.' domain-component)* | '[' [a-fA-F0-9:]+ ']') (':' [0-9]+)?
//! tag              [\w][\w.-]{0,127}
//! digest           [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ':' [0-9a-fA-F]{32,}
//! identifier       [a-f0-9]{64}
//! ```

use nom::Parser;
use nom::bytes::complete::{take_while, take_while1};

use crate::digest::Algorithm;
use crate::error::{ErrorKind, ParseError};

/// A rule broken at a byte offset (relative to the slice checked).
pub(crate) type RuleError = (usize, &'static str);

const LOWER_ALNUM: u8 = 1;
const ALNUM: u8 = 2;
const WORD: u8 = 4;
const HEX_LOWER: u8 = 8;
const XDIGIT: u8 = 16;
const ENCODED: u8 = 32;
const TAG: u8 = 64;
const DOMAIN: u8 = 128;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let c = i as u8;
        let mut f = 0;
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            f |= LOWER_ALNUM;
        }
        if c.is_ascii_alphanumeric() {
            f |= ALNUM | WORD | ENCODED;
        }
        if c == b'_' {
            f |= WORD | ENCODED;
        }
        if c == b'=' || c == b'-' {
            f |= ENCODED;
        }
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-' {
            f |= TAG;
        }
        if c.is_ascii_alphanumeric() || c == b'-' {
            f |= DOMAIN;
        }
        if c.is_ascii_digit() || (c >= b'a' && c <= b'f') {
            f |= HEX_LOWER | XDIGIT;
        }
        if c >= b'A' && c <= b'F' {
            f |= XDIGIT;
        }
        t[i] = f;
        i += 1;
    }
    t
};

#[inline(always)]
fn is(c: u8, class: u8) -> bool {
    CLASS[c as usize] & class != 0
}

type NomResult<'a> = nom::IResult<&'a [u8], &'a [u8], ()>;

/// A run of one or more bytes of `class`.
fn run1(class: u8) -> impl Fn(&[u8]) -> NomResult<'_> {
    move |i| take_while1(|c| is(c, class)).parse(i)
}

/// A run of zero or more bytes of `class`.
fn run0(class: u8) -> impl Fn(&[u8]) -> NomResult<'_> {
    move |i| take_while(|c| is(c, class)).parse(i)
}

#[inline]
fn offset(whole: &[u8], rest: &[u8]) -> usize {
    whole.len() - rest.len()
}

/// Whether `s` is a registry host with an optional port, as the reference
/// grammar allows it before the first `/` (`example.com`, `localhost:5000`,
/// `[::1]:5000`, `Registry.Example.COM`).
pub fn is_domain_and_port(s: &str) -> bool {
    domain_and_port(s.as_bytes())
}

pub(crate) fn domain_and_port(b: &[u8]) -> bool {
    domain_prefix(b) == Some(b.len())
}

/// How far the domain-and-port grammar matches from the start of `b`
/// (greedily), or `None` when it does not match at all. A reference's
/// first component is its domain exactly when this ends at a `/`.
pub(crate) fn domain_prefix(b: &[u8]) -> Option<usize> {
    let n = b.len();
    let mut i;
    if b.first() == Some(&b'[') {
        // '[' [a-fA-F0-9:]+ ']'
        i = 1;
        while i < n && (is(b[i], XDIGIT) || b[i] == b':') {
            i += 1;
        }
        if i == 1 || i >= n || b[i] != b']' {
            return None;
        }
        i += 1;
    } else {
        // Components of [a-zA-Z0-9-], not starting or ending with '-',
        // separated by single dots.
        i = 0;
        loop {
            if i >= n || !is(b[i], ALNUM) {
                return None;
            }
            i += 1;
            while i < n && is(b[i], DOMAIN) {
                i += 1;
            }
            if b[i - 1] == b'-' {
                return None;
            }
            if i + 1 < n && b[i] == b'.' {
                i += 1;
            } else {
                break;
            }
        }
    }
    // ':' [0-9]+
    if i + 1 < n && b[i] == b':' && b[i + 1].is_ascii_digit() {
        i += 2;
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some(i)
}

/// Checks a repository path (the name without its domain): components of
/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`, separated by `/`.
/// The length limit is not checked here.
pub fn check_repository_path(s: &str) -> Result<(), ParseError> {
    check_path(s.as_bytes(), false).map_err(|(at, rule)| {
        let kind = if check_path(s.as_bytes(), true).is_ok() {
            ErrorKind::NameContainsUppercase
        } else if s.is_empty() {
            ErrorKind::NameEmpty
        } else {
            ErrorKind::InvalidFormat
        };
        ParseError::with_detail(kind, at, rule)
    })
}

/// The path grammar. With `upper_ok`, ASCII uppercase letters count as
/// lowercase ones (Go lower-cases the input to tell "must be lowercase" from
/// "invalid format"). One pass, one table look-up per byte.
pub(crate) fn check_path(b: &[u8], upper_ok: bool) -> Result<(), RuleError> {
    let end = scan_path(b, upper_ok)?;
    match b.get(end) {
        None => Ok(()),
        Some(&c) => Err((end, path_stop_rule(c))),
    }
}

/// Scans a repository path from the start of `b` and stops cleanly at the
/// first byte that cannot continue it (a `:` or `@`, say) after a complete
/// component; returns where it stopped. A component that cannot start, or
/// a separator not followed by an alphanumeric, is an error.
pub(crate) fn scan_path(b: &[u8], upper_ok: bool) -> Result<usize, RuleError> {
    let alnum = if upper_ok { ALNUM } else { LOWER_ALNUM };
    let n = b.len();
    let mut i = 0;
    loop {
        if i >= n || !is(b[i], alnum) {
            return Err((
                i,
                "a path component must start with a lowercase letter or digit",
            ));
        }
        i += 1;
        loop {
            while i < n && is(b[i], alnum) {
                i += 1;
            }
            if i >= n {
                return Ok(i);
            }
            match b[i] {
                b'/' => break,
                b'.' => i += 1,
                b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
                b'-' => {
                    i += 1;
                    while i < n && b[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return Ok(i),
            }
            if i >= n || !is(b[i], alnum) {
                return Err((
                    i,
                    "a separator must be followed by a lowercase letter or digit",
                ));
            }
        }
        // Skip the '/'.
        i += 1;
    }
}

/// The rule broken by a byte that ended a path where the path had to end
/// the name.
pub(crate) fn path_stop_rule(c: u8) -> &'static str {
    if c.is_ascii_uppercase() {
        "a repository name must be lowercase"
    } else {
        "a repository name may only hold [a-z0-9], separators '.', '_', '__', '-' and '/'"
    }
}

/// Whether every byte is lowercase hex; written so the compiler vectorises it.
#[inline]
pub(crate) fn all_hex_lower(b: &[u8]) -> bool {
    b.iter().fold(true, |ok, &c| {
        ok & ((c.wrapping_sub(b'0') < 10) | (c.wrapping_sub(b'a') < 6))
    })
}

/// Whether `b` is the common digest: `sha256:` and 64 lowercase hex
/// digits, checked in one vectorised pass.
#[inline]
pub(crate) fn is_plain_sha256(b: &[u8]) -> bool {
    b.len() == 71 && b.starts_with(b"sha256:") && all_hex_lower(&b[7..])
}

/// Checks a tag: `[\w][\w.-]{0,127}`.
pub fn check_tag(s: &str) -> Result<(), ParseError> {
    check_tag_bytes(s.as_bytes())
        .map_err(|(at, rule)| ParseError::with_detail(ErrorKind::TagInvalidFormat, at, rule))
}

pub(crate) fn check_tag_bytes(b: &[u8]) -> Result<(), RuleError> {
    match b.first() {
        None => return Err((0, "a tag must not be empty")),
        Some(&c) if !is(c, WORD) => {
            return Err((0, "a tag must start with a letter, a digit or '_'"));
        }
        _ => {}
    }
    if let Some(bad) = b.iter().position(|&c| !is(c, TAG)) {
        return Err((bad, "a tag may only hold letters, digits, '_', '.' and '-'"));
    }
    if b.len() > 128 {
        return Err((128, "a tag must not be longer than 128 characters"));
    }
    Ok(())
}

/// The digest pattern a reference allows after `@` (before go-digest's own
/// checks): `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
pub(crate) fn check_reference_digest_pattern(b: &[u8]) -> Result<(), RuleError> {
    let alpha = |c: u8| c.is_ascii_alphabetic();
    let mut rest = b;
    loop {
        match rest.split_first() {
            Some((&c, r)) if alpha(c) => rest = r,
            _ => {
                return Err((
                    offset(b, rest),
                    "a digest algorithm component must start with a letter",
                ));
            }
        }
        let (r, _) = run0(ALNUM)(rest).unwrap_or((rest, &[]));
        rest = r;
        match rest.split_first() {
            Some((b'-' | b'_' | b'+' | b'.', r)) => rest = r,
            Some((b':', r)) => {
                rest = r;
                break;
            }
            _ => return Err((offset(b, rest), "expected ':' after the digest algorithm")),
        }
    }
    let hex_start = offset(b, rest);
    if let Some(bad) = rest.iter().position(|&c| !is(c, XDIGIT)) {
        return Err((
            hex_start + bad,
            "a digest's encoded part must be hexadecimal",
        ));
    }
    if rest.len() < 32 {
        return Err((
            b.len(),
            "a digest's encoded part must have at least 32 hexadecimal characters",
        ));
    }
    Ok(())
}

/// go-digest's (and the image-spec's) digest grammar:
/// `[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
pub(crate) fn check_digest_grammar(s: &str) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let fail = |at, rule| {
        Err(ParseError::with_detail(
            ErrorKind::DigestInvalidFormat,
            at,
            rule,
        ))
    };
    let mut rest = b;
    loop {
        let Ok((r, _)) = run1(LOWER_ALNUM)(rest) else {
            return fail(
                offset(b, rest),
                "a digest algorithm component must be [a-z0-9]+",
            );
        };
        rest = r;
        match rest.split_first() {
            Some((b'+' | b'.' | b'_' | b'-', r)) => rest = r,
            Some((b':', r)) => {
                rest = r;
                break;
            }
            _ => return fail(offset(b, rest), "expected ':' after the digest algorithm"),
        }
    }
    if rest.is_empty() {
        return fail(b.len(), "a digest's encoded part must not be empty");
    }
    if let Some(bad) = rest.iter().position(|&c| !is(c, ENCODED)) {
        return fail(
            offset(b, rest) + bad,
            "a digest's encoded part may only hold [a-zA-Z0-9=_-]",
        );
    }
    Ok(())
}

/// The encoded part of a registered algorithm: exactly its length of
/// lowercase hex.
pub(crate) fn check_registered_encoded(alg: Algorithm, enc: &str) -> Result<(), ParseError> {
    let b = enc.as_bytes();
    if b.len() != alg.hex_len() {
        return Err(ParseError::with_detail(
            ErrorKind::DigestInvalidLength,
            0,
            match alg {
                Algorithm::Sha256 => "a sha256 digest must be 64 hex characters",
                Algorithm::Sha512 => "a sha512 digest must be 128 hex characters",
            },
        ));
    }
    if let Some(bad) = b.iter().position(|&c| !is(c, HEX_LOWER)) {
        return Err(ParseError::with_detail(
            ErrorKind::DigestInvalidFormat,
            bad,
            "a digest must be lowercase hexadecimal",
        ));
    }
    Ok(())
}

/// Whether `s` is exactly 64 lowercase hex characters: an image ID, which is
/// never a repository name.
pub fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| is(c, HEX_LOWER))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_DIGITS[(b >> 4) as usize];
        pair[1] = HEX_DIGITS[(b & 0xf) as usize];
    }
}

pub(crate) fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    if hex.len() != out.len() * 2 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        for ok in [
            "a",
            "example.com",
            "EXAMPLE.com:5000",
            "[::1]",
            "[fe80::1]:5000",
            "xn--7o8h.com",
            "a-b.c",
        ] {
            assert!(is_domain_and_port(ok), "{ok}");
        }
        for bad in [
            "", "-a.com", "a-.com", "a..b", "a.", "[::1", "[]", "a:", "a:b", "a_b", "[::1]x",
        ] {
            assert!(!is_domain_and_port(bad), "{bad}");
        }
    }

    #[test]
    fn paths() {
        for ok in ["a", "a/b", "a.b_c__d---e/f", "0/1"] {
            assert!(check_path(ok.as_bytes(), false).is_ok(), "{ok}");
        }
        for (bad, at) in [
            ("", 0),
            ("a/", 2),
            ("a__-b", 3),
            ("a___b", 3),
            ("a._b", 2),
            ("aB", 1),
            ("a//b", 2),
            ("-a", 0),
        ] {
            assert_eq!(
                check_path(bad.as_bytes(), false).map_err(|e| e.0),
                Err(at),
                "{bad}"
            );
        }
        assert!(check_path(b"Ab/C", true).is_ok());
    }

    #[test]
    fn tags() {
        assert!(check_tag("v1.0-rc_1").is_ok());
        assert!(check_tag("_x").is_ok());
        assert_eq!(check_tag(".x").unwrap_err().offset(), 0);
        assert_eq!(check_tag("x!").unwrap_err().offset(), 1);
        assert!(check_tag(&"a".repeat(128)).is_ok());
        assert_eq!(check_tag(&"a".repeat(129)).unwrap_err().offset(), 128);
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut hex = vec![0u8; 512];
        encode_hex(&bytes, &mut hex);
        let mut back = vec![0u8; 256];
        decode_hex(&hex, &mut back).expect("valid hex");
        assert_eq!(bytes, back);
    }
}
