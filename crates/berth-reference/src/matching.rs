//! Go's `path.Match`, for [`crate::Reference::familiar_match`].
//!
//! `*` matches any run of characters other than `/`, `?` one character other
//! than `/`, `[...]` a class (`^` negates, `a-z` ranges, `\` escapes), and
//! `\c` the character `c`. A malformed pattern is an error, reported even
//! when an earlier part of the pattern already failed to match.

use crate::error::{ErrorKind, ParseError};

fn bad(at: usize, detail: &'static str) -> ParseError {
    ParseError::with_detail(ErrorKind::BadPattern, at, detail)
}

/// Whether `name` matches the whole of `pattern`.
pub(crate) fn path_match(pattern: &str, name: &str) -> Result<bool, ParseError> {
    let full = pattern.as_bytes();
    let mut pattern = full;
    let mut name = name.as_bytes();
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        let at = full.len() - rest.len() - chunk.len();
        if star && chunk.is_empty() {
            // A trailing '*' matches the rest unless it holds a '/'.
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name, at)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Try again, skipping i+1 bytes of the name, never a '/'.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..], at)?;
                // On the last chunk, the name must be used up.
                if ok && (t.is_empty() || !pattern.is_empty()) {
                    name = t;
                    continue 'chunks;
                }
                i += 1;
            }
        }
        // No match: still report a malformed remainder of the pattern.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            let at = full.len() - rest.len() - chunk.len();
            pattern = rest;
            match_chunk(chunk, b"", at)?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the leading stars and the chunk up to the next unbracketed `*`.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let stars = pattern.iter().take_while(|&&c| c == b'*').count();
    let b = &pattern[stars..];
    let mut in_range = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (stars > 0, &b[..i], &b[i..])
}

/// Decodes one UTF-8 character; invalid bytes decode as U+FFFD of width 1,
/// as Go's `utf8.DecodeRune` does.
fn decode_char(b: &[u8]) -> (char, usize) {
    let len = match b.first() {
        None => return (char::REPLACEMENT_CHARACTER, 0),
        Some(&c) if c < 0x80 => 1,
        Some(&c) if c >> 5 == 0b110 => 2,
        Some(&c) if c >> 4 == 0b1110 => 3,
        Some(&c) if c >> 3 == 0b11110 => 4,
        Some(_) => 0,
    };
    match b.get(..len).map(std::str::from_utf8) {
        Some(Ok(s)) if len > 0 => (s.chars().next().expect("one character"), len),
        _ => (char::REPLACEMENT_CHARACTER, 1),
    }
}

/// Matches `chunk` (no unbracketed `*`) against the start of `s`; returns
/// the rest of `s` and whether it matched. `at` is the chunk's offset in the
/// whole pattern, for errors.
fn match_chunk<'s>(chunk: &[u8], s: &'s [u8], at: usize) -> Result<(&'s [u8], bool), ParseError> {
    let mut failed = false;
    let mut s = s;
    let mut c = chunk;
    let pos = |c: &[u8]| at + chunk.len() - c.len();
    while !c.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c[0] {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (ch, n) = decode_char(s);
                    r = ch;
                    s = &s[n..];
                }
                c = &c[1..];
                let negated = c.first() == Some(&b'^');
                if negated {
                    c = &c[1..];
                }
                let mut matched = false;
                let mut n = 0;
                loop {
                    if c.first() == Some(&b']') && n > 0 {
                        c = &c[1..];
                        break;
                    }
                    let (lo, rest) =
                        class_char(c).ok_or_else(|| bad(pos(c), "malformed character class"))?;
                    c = rest;
                    let mut hi = lo;
                    if let Some(rest) = c.strip_prefix(b"-") {
                        let (h, rest) = class_char(rest)
                            .ok_or_else(|| bad(pos(rest), "malformed character range"))?;
                        hi = h;
                        c = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    n += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_char(s);
                    s = &s[n..];
                }
                c = &c[1..];
            }
            first => {
                let lit = if first == b'\\' {
                    c = &c[1..];
                    match c.first() {
                        Some(&l) => l,
                        None => return Err(bad(pos(c), "a pattern must not end with '\\'")),
                    }
                } else {
                    first
                };
                if !failed {
                    if s[0] != lit {
                        failed = true;
                    }
                    s = &s[1..];
                }
                c = &c[1..];
            }
        }
    }
    Ok(if failed { (b"", false) } else { (s, true) })
}

/// One character of a class, `\`-escaped or not; `None` when the class is
/// malformed (ends early, or has a bare `-` or `]` where a character goes).
fn class_char(c: &[u8]) -> Option<(char, &[u8])> {
    let mut c = c;
    match c.first()? {
        b'-' | b']' => return None,
        b'\\' => c = &c[1..],
        _ => {}
    }
    if c.is_empty() {
        return None;
    }
    let (ch, n) = decode_char(c);
    if ch == char::REPLACEMENT_CHARACTER && n == 1 {
        return None;
    }
    let rest = &c[n..];
    if rest.is_empty() {
        return None;
    }
    Some((ch, rest))
}

#[cfg(test)]
mod tests {
    use super::path_match;

    #[test]
    fn go_path_match_cases() {
        // From Go's path/match_test.go semantics.
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "-", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[x-]", "-", None),
            ("[x-]", "z", None),
            ("[-x]", "x", None),
            ("[-x]", "-", None),
            ("[-x]", "a", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a[", "ab", None),
            ("a[", "x", None),
            ("a/b[", "x", None),
            ("*x", "xxx", Some(true)),
        ];
        for &(pattern, name, want) in cases {
            let got = path_match(pattern, name).ok();
            assert_eq!(got, want, "Match({pattern:?}, {name:?})");
        }
    }
}
