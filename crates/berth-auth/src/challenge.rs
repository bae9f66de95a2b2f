//! `WWW-Authenticate` challenges, parsed as RFC 9110 §11 writes them.
//!
//! The grammar (RFC 9110 §11.1, §11.2, §5.6):
//!
//! ```text
//! WWW-Authenticate = 1#challenge
//! challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param  = token BWS "=" BWS ( token / quoted-string )
//! token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! Commas separate both challenges and the parameters of one challenge. After
//! a comma, a token followed by `=` (with optional whitespace) is a parameter
//! of the current challenge; a token followed by a space and then anything
//! else, or by a comma or the end, starts a new challenge.
//!
//! The parse borrows from the header: a [`Challenge`] holds slices of the
//! input and reads its parameters from them on demand, so parsing allocates
//! only the `Vec` of challenges (nothing at all with
//! [`parse_challenges_into`] and a reused buffer). Values are unescaped when
//! asked for, and only when they hold a `\` escape.
//!
//! Obsolete line folding (`CRLF SP`, RFC 9112 §5.2) counts as whitespace.

use std::borrow::Cow;
use std::fmt;

use nom::branch::alt;
use nom::sequence::preceded;
use nom::{IResult, Parser};

// Byte classes (RFC 9110 §5.6.2, §5.6.4, §11.2).
const TCHAR: u8 = 1;
const T68: u8 = 2;
const QDTEXT: u8 = 4;
const QPAIR: u8 = 8;

const fn class_of(b: u8) -> u8 {
    let mut c = 0;
    let alnum = b.is_ascii_alphanumeric();
    if alnum
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
    {
        c |= TCHAR;
    }
    if alnum || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/') {
        c |= T68;
    }
    // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    if b == b'\t'
        || b == b' '
        || b == 0x21
        || (b >= 0x23 && b <= 0x5B)
        || (b >= 0x5D && b <= 0x7E)
        || b >= 0x80
    {
        c |= QDTEXT;
    }
    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
    if b == b'\t' || (b >= 0x20 && b <= 0x7E) || b >= 0x80 {
        c |= QPAIR;
    }
    c
}

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b: u8 = 0;
    loop {
        t[b as usize] = class_of(b);
        if b == u8::MAX {
            break;
        }
        b += 1;
    }
    t
}

static CLASS: [u8; 256] = class_table();

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

/// Whether `s` is an RFC 9110 `token` (one or more tchar).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| is(b, TCHAR))
}

/// Whether `s` is an RFC 9110 `token68`.
pub(crate) fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| is(b, T68))
}

/// Whether `s` can be written as a quoted-string (every character is qdtext
/// or can follow a `\`).
pub(crate) fn is_quotable(s: &str) -> bool {
    s.bytes().all(|b| is(b, QPAIR))
}

/// What the parser expected where it stopped. Its `Display` is the phrase
/// used in [`ParseError`]'s message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expected {
    /// An auth-scheme (a token) where a challenge starts.
    AuthScheme,
    /// A space, `,` or the end after an auth-scheme.
    SchemeEnd,
    /// At least one challenge in the header.
    Challenge,
    /// A new challenge, where a parameter appeared after a challenge that has
    /// no parameter list (a bare scheme or a token68).
    NewChallenge,
    /// A parameter name (a token).
    ParamName,
    /// A parameter name or, after a comma, the auth-scheme of a new challenge.
    ParamNameOrScheme,
    /// `=` after a parameter name.
    Equals,
    /// A token or a quoted-string after `=`.
    Value,
    /// The closing `"` of a quoted-string.
    CloseQuote,
    /// A character allowed in a quoted-string.
    QuotedText,
    /// A character allowed after `\` in a quoted-string.
    EscapedChar,
    /// A `,` or the end after a parameter value.
    Separator,
    /// A parameter name not already used in the same challenge.
    DistinctParam,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::AuthScheme => "auth-scheme (a token)",
            Expected::SchemeEnd => "a space, ',' or end of input after auth-scheme",
            Expected::Challenge => "at least one challenge",
            Expected::NewChallenge => {
                "a new challenge (auth-scheme and a space), not a parameter after a challenge without parameters"
            }
            Expected::ParamName => "parameter name (a token)",
            Expected::ParamNameOrScheme => "parameter name or auth-scheme",
            Expected::Equals => "'=' after parameter name",
            Expected::Value => "token or quoted-string after '='",
            Expected::CloseQuote => "closing '\"' of quoted-string",
            Expected::QuotedText => "tab, space, visible or non-ASCII character in quoted-string",
            Expected::EscapedChar => "tab, space, visible or non-ASCII character after '\\'",
            Expected::Separator => "',' or end of input after parameter value",
            Expected::DistinctParam => "a parameter name not already used in this challenge",
        })
    }
}

/// A `WWW-Authenticate` value that does not follow RFC 9110's grammar: what
/// was expected and at which byte.
///
/// ```
/// let err = berth_auth::parse_challenges("Basic realm \"x\"").unwrap_err();
/// assert_eq!(err.offset(), 12);
/// assert_eq!(err.to_string(), "expected '=' after parameter name at byte 12");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    offset: usize,
    field: Option<usize>,
    expected: Expected,
}

impl ParseError {
    fn new(offset: usize, expected: Expected) -> Self {
        ParseError {
            offset,
            field: None,
            expected,
        }
    }

    /// Byte offset in the header value where the parser stopped.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What was expected at [`offset`](Self::offset).
    pub fn expected(&self) -> Expected {
        self.expected
    }

    /// For [`parse_challenge_fields`], the index (from 0) of the header field
    /// that holds the error; `None` for [`parse_challenges`].
    pub fn field(&self) -> Option<usize> {
        self.field
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.offset)?;
        if let Some(field) = self.field {
            write!(f, " of header field {field} (counting from 0)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// The nom error type: the remaining input where parsing stopped, and what
/// was expected there.
#[derive(Debug)]
struct Fail<'a> {
    at: &'a str,
    expected: Expected,
}

impl<'a> nom::error::ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(input: &'a str, _kind: nom::error::ErrorKind) -> Self {
        Fail {
            at: input,
            expected: Expected::Value,
        }
    }

    fn append(_input: &'a str, _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, O> = IResult<&'a str, O, Fail<'a>>;

fn fail<'a, O>(at: &'a str, expected: Expected) -> Res<'a, O> {
    Err(nom::Err::Error(Fail { at, expected }))
}

fn cut_fail<'a, O>(at: &'a str, expected: Expected) -> Res<'a, O> {
    Err(nom::Err::Failure(Fail { at, expected }))
}

/// Splits `i` after `n` bytes; `n` always falls on an ASCII byte or the end,
/// so the split is on a character boundary.
fn split_at(i: &str, n: usize, expected: Expected) -> Res<'_, &str> {
    match i.split_at_checked(n) {
        Some((head, rest)) => Ok((rest, head)),
        None => fail(i, expected),
    }
}

/// `token = 1*tchar`
fn token(i: &str) -> Res<'_, &str> {
    let n = i.bytes().position(|b| !is(b, TCHAR)).unwrap_or(i.len());
    if n == 0 {
        return fail(i, Expected::ParamName);
    }
    split_at(i, n, Expected::ParamName)
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn token68(i: &str) -> Res<'_, &str> {
    let b = i.as_bytes();
    let n = b.iter().position(|&c| !is(c, T68)).unwrap_or(b.len());
    if n == 0 {
        return fail(i, Expected::Value);
    }
    let eq = b[n..]
        .iter()
        .position(|&c| c != b'=')
        .unwrap_or(b.len() - n);
    split_at(i, n + eq, Expected::Value)
}

/// Length of an obs-fold (`[CR] LF 1*(SP / HTAB)`, counting only the line
/// break and the first blank) at the start of `b`, or 0.
#[inline]
fn fold_len(b: &[u8]) -> usize {
    match b {
        [b'\r', b'\n', b' ' | b'\t', ..] => 3,
        [b'\n', b' ' | b'\t', ..] => 2,
        _ => 0,
    }
}

/// Skips `OWS = *( SP / HTAB )` (and obs-fold).
#[inline]
fn skip_ows(i: &str) -> &str {
    let b = i.as_bytes();
    let mut k = 0;
    loop {
        match b.get(k) {
            Some(b' ' | b'\t') => k += 1,
            Some(b'\r' | b'\n') => match fold_len(&b[k..]) {
                0 => break,
                n => k += n,
            },
            _ => break,
        }
    }
    i.get(k..).unwrap_or_default()
}

/// `OWS` as a nom parser (never fails).
fn ows(i: &str) -> Res<'_, ()> {
    Ok((skip_ows(i), ()))
}

/// `1*SP` after an auth-scheme (an obs-fold counts as a space), then any
/// further whitespace. `None` when `i` does not start with a space.
#[inline]
fn rws(i: &str) -> Option<&str> {
    let b = i.as_bytes();
    (b.first() == Some(&b' ') || fold_len(b) > 0).then(|| skip_ows(i))
}

/// A parameter value as written: the text between the quotes (still
/// escaped) or the token, and whether it holds `\` escapes.
#[derive(Debug, Clone, Copy)]
struct RawValue<'a> {
    text: &'a str,
    escaped: bool,
}

impl<'a> RawValue<'a> {
    fn unescaped(self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(unescape(self.text))
        } else {
            Cow::Borrowed(self.text)
        }
    }
}

/// Removes the `\` of every quoted-pair.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`
fn quoted_string(i: &str) -> Res<'_, RawValue<'_>> {
    let b = i.as_bytes();
    if b.first() != Some(&b'"') {
        return fail(i, Expected::Value);
    }
    let mut k = 1;
    let mut escaped = false;
    loop {
        while k < b.len() && is(b[k], QDTEXT) {
            k += 1;
        }
        match b.get(k) {
            Some(b'"') => break,
            Some(b'\\') => match b.get(k + 1) {
                Some(&c) if is(c, QPAIR) => {
                    escaped = true;
                    k += 2;
                }
                Some(_) => {
                    return cut_fail(i.get(k + 1..).unwrap_or_default(), Expected::EscapedChar);
                }
                None => {
                    return cut_fail(i.get(i.len()..).unwrap_or_default(), Expected::CloseQuote);
                }
            },
            Some(_) => return cut_fail(i.get(k..).unwrap_or_default(), Expected::QuotedText),
            None => return cut_fail(i.get(i.len()..).unwrap_or_default(), Expected::CloseQuote),
        }
    }
    match (i.get(1..k), i.get(k + 1..)) {
        (Some(text), Some(rest)) => Ok((rest, RawValue { text, escaped })),
        _ => cut_fail(i, Expected::CloseQuote),
    }
}

/// `token / quoted-string`
fn param_value(i: &str) -> Res<'_, RawValue<'_>> {
    alt((
        quoted_string,
        token.map(|text| RawValue {
            text,
            escaped: false,
        }),
    ))
    .parse(i)
    .map_err(|e| {
        e.map(|f| {
            if f.expected == Expected::ParamName {
                Fail {
                    at: i,
                    expected: Expected::Value,
                }
            } else {
                f
            }
        })
    })
}

/// `"="` between a parameter name and its value.
fn equals(i: &str) -> Res<'_, ()> {
    match i.strip_prefix('=') {
        Some(rest) => Ok((rest, ())),
        None => fail(i, Expected::Equals),
    }
}

/// `auth-param = token BWS "=" BWS ( token / quoted-string )`: the name and
/// the raw value.
fn auth_param(i: &str) -> Res<'_, (&str, RawValue<'_>)> {
    (token, preceded((ows, equals, ows), param_value)).parse(i)
}

/// The body of a challenge after its scheme.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// No token68 and no parameters.
    Empty,
    /// `Scheme token68`
    Token68(&'a str),
    /// The text of the parameter list (validated), and how many parameters it
    /// holds (at least one).
    Params { text: &'a str, count: usize },
}

/// One challenge of a `WWW-Authenticate` header, borrowed from the header.
///
/// The scheme and the parameter names are kept as sent: compare them
/// case-insensitively ([`param`](Self::param) does). Parameter values are
/// unescaped when asked for; a value without escapes is borrowed.
///
/// Equality compares what the challenge says (scheme, token68, parameter
/// names and unescaped values, in order), not how it was spelled.
#[derive(Clone)]
pub struct Challenge<'a> {
    scheme: &'a str,
    body: Body<'a>,
}

impl<'a> Challenge<'a> {
    /// The auth-scheme as sent (`Bearer`, `basic`, ...). Schemes are
    /// case-insensitive: compare with [`str::eq_ignore_ascii_case`] or use
    /// [`is_scheme`](Self::is_scheme).
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// Whether the scheme is `scheme`, ignoring ASCII case.
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of the parameter `name` (ignoring ASCII case), unescaped.
    /// Borrowed from the header unless the value holds `\` escapes.
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.raw_params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.unescaped())
    }

    /// The token68 of a challenge written `Scheme token68`.
    pub fn token68(&self) -> Option<&str> {
        match self.body {
            Body::Token68(t) => Some(t),
            _ => None,
        }
    }

    /// The parameters in the order sent: names as sent, values unescaped.
    pub fn params(&self) -> Params<'a> {
        Params {
            inner: self.raw_params(),
        }
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        match self.body {
            Body::Params { count, .. } => count,
            _ => 0,
        }
    }

    fn raw_params(&self) -> RawParams<'a> {
        match self.body {
            Body::Params { text, count } => RawParams {
                rest: text,
                remaining: count,
            },
            _ => RawParams {
                rest: "",
                remaining: 0,
            },
        }
    }

    /// An owned copy, with every value unescaped.
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> OwnedChallenge {
        OwnedChallenge {
            scheme: self.scheme.to_owned(),
            token68: self.token68().map(str::to_owned),
            params: self
                .params()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect(),
        }
    }
}

impl PartialEq for Challenge<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme
            && self.token68() == other.token68()
            && self.param_count() == other.param_count()
            && self.params().eq(other.params())
    }
}

impl Eq for Challenge<'_> {}

impl PartialEq<OwnedChallenge> for Challenge<'_> {
    fn eq(&self, other: &OwnedChallenge) -> bool {
        self.scheme == other.scheme
            && self.token68() == other.token68.as_deref()
            && self.param_count() == other.params.len()
            && self
                .params()
                .zip(other.params.iter())
                .all(|((n, v), (on, ov))| n == on && v == ov.as_str())
    }
}

impl fmt::Debug for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Challenge");
        d.field("scheme", &self.scheme);
        if let Some(t) = self.token68() {
            d.field("token68", &t);
        }
        d.field("params", &DebugParams(self));
        d.finish()
    }
}

struct DebugParams<'c, 'a>(&'c Challenge<'a>);

impl fmt::Debug for DebugParams<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.params()).finish()
    }
}

impl fmt::Display for Challenge<'_> {
    /// Formats the challenge in RFC 9110 syntax: `Scheme token68` or
    /// `Scheme name=value, name="quoted value"`. Values that are not tokens
    /// are quoted with `"` and `\` escaped; `realm` is always quoted (RFC 9110
    /// §11.5: senders only generate the quoted-string form for it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_challenge(f, self.scheme, self.token68(), self.params())
    }
}

fn write_challenge<'v>(
    f: &mut fmt::Formatter<'_>,
    scheme: &str,
    token68: Option<&str>,
    params: impl Iterator<Item = (&'v str, Cow<'v, str>)>,
) -> fmt::Result {
    f.write_str(scheme)?;
    if let Some(t) = token68 {
        f.write_str(" ")?;
        f.write_str(t)?;
    }
    for (k, (name, value)) in params.enumerate() {
        f.write_str(if k == 0 { " " } else { ", " })?;
        f.write_str(name)?;
        f.write_str("=")?;
        write_value(f, name, &value)?;
    }
    Ok(())
}

fn write_value(f: &mut fmt::Formatter<'_>, name: &str, value: &str) -> fmt::Result {
    if is_token(value) && !name.eq_ignore_ascii_case("realm") {
        return f.write_str(value);
    }
    f.write_str("\"")?;
    let mut start = 0;
    for (k, c) in value.char_indices() {
        if c == '"' || c == '\\' {
            f.write_str(&value[start..k])?;
            f.write_str("\\")?;
            start = k;
        }
    }
    f.write_str(&value[start..])?;
    f.write_str("\"")
}

/// Iterator over the validated parameter text of a challenge, yielding names
/// and raw values.
#[derive(Clone)]
struct RawParams<'a> {
    rest: &'a str,
    remaining: usize,
}

impl<'a> Iterator for RawParams<'a> {
    type Item = (&'a str, RawValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // The text was validated when the challenge was parsed, so this walk
        // only has to find the boundaries: whitespace (CR and LF occur only in
        // folds), commas, a token, `=`, and a token or quoted-string.
        let b = self.rest.as_bytes();
        let skip = |mut k: usize, also_comma: bool| {
            while let Some(&c) = b.get(k) {
                if matches!(c, b' ' | b'\t' | b'\r' | b'\n') || (also_comma && c == b',') {
                    k += 1;
                } else {
                    break;
                }
            }
            k
        };
        let name_start = skip(0, true);
        let name_end = name_start
            + b[name_start..]
                .iter()
                .position(|&c| !is(c, TCHAR))
                .unwrap_or(b.len() - name_start);
        let eq = skip(name_end, false);
        let value_start = skip(eq + 1, false);
        let (text_start, text_end, end, escaped) = if b.get(value_start) == Some(&b'"') {
            let mut k = value_start + 1;
            let mut escaped = false;
            loop {
                match b.get(k)? {
                    b'"' => break,
                    b'\\' => {
                        escaped = true;
                        k += 2;
                    }
                    _ => k += 1,
                }
            }
            (value_start + 1, k, k + 1, escaped)
        } else {
            let len = b[value_start.min(b.len())..]
                .iter()
                .position(|&c| !is(c, TCHAR))
                .unwrap_or(b.len() - value_start.min(b.len()));
            (value_start, value_start + len, value_start + len, false)
        };
        let name = self.rest.get(name_start..name_end)?;
        let text = self.rest.get(text_start..text_end)?;
        self.rest = self.rest.get(end..)?;
        self.remaining -= 1;
        Some((name, RawValue { text, escaped }))
    }
}

/// The parameters of a [`Challenge`]: `(name as sent, unescaped value)`.
#[derive(Clone)]
pub struct Params<'a> {
    inner: RawParams<'a>,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(n, v)| (n, v.unescaped()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.inner.remaining, Some(self.inner.remaining))
    }
}

impl ExactSizeIterator for Params<'_> {}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// Names seen in one challenge, to refuse a duplicate (RFC 9110 §11.2: "each
/// parameter name MUST only occur once per challenge"). The first few are
/// kept on the stack; a challenge with more parameters spills into a `Vec`
/// checked by sorting, so the work stays O(n log n).
struct NameSet<'a> {
    inline: [&'a str; 8],
    len: usize,
    spill: Vec<(&'a str, usize)>,
}

impl<'a> NameSet<'a> {
    fn new() -> Self {
        NameSet {
            inline: [""; 8],
            len: 0,
            spill: Vec::new(),
        }
    }

    /// Adds `name`; `false` if it was already there.
    fn insert(&mut self, name: &'a str, offset: usize) -> bool {
        if self.inline[..self.len]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            return false;
        }
        if self.len < self.inline.len() {
            self.inline[self.len] = name;
            self.len += 1;
        } else {
            self.spill.push((name, offset));
        }
        true
    }

    /// Offset of the first repeated name among the spilled ones.
    fn first_spilled_duplicate(&mut self) -> Option<usize> {
        if self.spill.len() < 2 {
            return None;
        }
        fn lower(s: &str) -> impl Iterator<Item = u8> + '_ {
            s.bytes().map(|b| b.to_ascii_lowercase())
        }
        self.spill
            .sort_by(|a, b| lower(a.0).cmp(lower(b.0)).then(a.1.cmp(&b.1)));
        self.spill
            .windows(2)
            .filter(|w| w[0].0.eq_ignore_ascii_case(w[1].0))
            .map(|w| w[1].1)
            .min()
    }
}

/// Parser state: the whole header (for offsets).
struct Grammar<'a> {
    input: &'a str,
}

impl<'a> Grammar<'a> {
    fn offset(&self, at: &str) -> usize {
        self.input.len() - at.len()
    }

    fn error(&self, fail: nom::Err<Fail<'_>>) -> ParseError {
        match fail {
            nom::Err::Error(f) | nom::Err::Failure(f) => {
                ParseError::new(self.offset(f.at), f.expected)
            }
            nom::Err::Incomplete(_) => ParseError::new(self.input.len(), Expected::CloseQuote),
        }
    }

    fn err_at(&self, at: &str, expected: Expected) -> ParseError {
        ParseError::new(self.offset(at), expected)
    }

    /// `1#challenge`, with empty list elements allowed.
    fn list(&self, out: &mut Vec<Challenge<'a>>) -> Result<(), ParseError> {
        let mut rest = self.input;
        loop {
            rest = skip_ows(rest);
            if rest.is_empty() {
                return Ok(());
            }
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
                continue;
            }
            let (r, challenge) = self.challenge(rest)?;
            out.push(challenge);
            rest = r;
        }
    }

    /// One challenge starting at `i`. Returns the input after it: empty, at a
    /// `,`, or at the scheme of the next challenge.
    fn challenge(&self, i: &'a str) -> Result<(&'a str, Challenge<'a>), ParseError> {
        let (after_scheme, scheme) = token(i).map_err(|_| self.err_at(i, Expected::AuthScheme))?;
        let bare = |rest: &'a str| {
            Ok((
                rest,
                Challenge {
                    scheme,
                    body: Body::Empty,
                },
            ))
        };
        let Some(list) = rws(after_scheme) else {
            let rest = skip_ows(after_scheme);
            if rest.is_empty() || rest.starts_with(',') {
                return bare(rest);
            }
            if rest.starts_with('=') {
                return Err(self.err_at(i, Expected::NewChallenge));
            }
            return Err(self.err_at(after_scheme, Expected::SchemeEnd));
        };
        if list.is_empty() {
            return bare(list);
        }
        if list.starts_with('=') {
            // `name = value` where a challenge should start.
            return Err(self.err_at(i, Expected::NewChallenge));
        }
        // token68, when it is the whole element.
        if let Ok((after, t68)) = token68(list) {
            let after = skip_ows(after);
            if after.is_empty() || after.starts_with(',') {
                return Ok((
                    after,
                    Challenge {
                        scheme,
                        body: Body::Token68(t68),
                    },
                ));
            }
        }
        self.param_list(scheme, list)
    }

    /// `#auth-param` after `scheme 1*SP`, ending at the end of input or where
    /// a new challenge starts.
    fn param_list(
        &self,
        scheme: &'a str,
        list: &'a str,
    ) -> Result<(&'a str, Challenge<'a>), ParseError> {
        let mut rest = list;
        let mut first = true;
        let mut count = 0;
        let mut end = list;
        let mut names = NameSet::new();
        loop {
            if rest.is_empty() {
                break;
            }
            if let Some(r) = rest.strip_prefix(',') {
                rest = skip_ows(r);
                first = false;
                continue;
            }
            let name_expected = if first {
                Expected::ParamName
            } else {
                Expected::ParamNameOrScheme
            };
            let (after_name, name) = token(rest).map_err(|_| self.err_at(rest, name_expected))?;
            let after_bws = skip_ows(after_name);
            if !after_bws.starts_with('=') {
                // Not a parameter: after a comma, the scheme of a new challenge.
                let new_challenge =
                    rws(after_name).is_some() || after_bws.is_empty() || after_bws.starts_with(',');
                if first || !new_challenge {
                    return Err(self.err_at(after_bws, Expected::Equals));
                }
                break;
            }
            let (after_value, _) = auth_param(rest).map_err(|e| self.error(e))?;
            if !names.insert(name, self.offset(rest)) {
                return Err(self.err_at(rest, Expected::DistinctParam));
            }
            count += 1;
            end = after_value;
            rest = skip_ows(after_value);
            if !(rest.is_empty() || rest.starts_with(',')) {
                return Err(self.err_at(rest, Expected::Separator));
            }
            first = false;
        }
        if let Some(offset) = names.first_spilled_duplicate() {
            return Err(ParseError::new(offset, Expected::DistinctParam));
        }
        let body = if count == 0 {
            Body::Empty
        } else {
            let len = list.len() - end.len();
            Body::Params {
                text: list.get(..len).unwrap_or(list),
                count,
            }
        };
        Ok((rest, Challenge { scheme, body }))
    }
}

/// Parses one `WWW-Authenticate` (or `Proxy-Authenticate`) header value into
/// its challenges, checking RFC 9110 syntax only (scheme rules such as
/// "Bearer needs a realm" belong to [`Bearer`](crate::Bearer) and
/// [`Basic`](crate::Basic)).
///
/// Several header fields may be passed joined with `", "`, or through
/// [`parse_challenge_fields`]. Unknown schemes are kept. A header with no
/// challenge at all is an error (`1#challenge`).
///
/// ```
/// let cs = berth_auth::parse_challenges(
///     r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io", Basic realm="x""#,
/// )?;
/// assert_eq!(cs.len(), 2);
/// assert_eq!(cs[0].param("SERVICE").as_deref(), Some("registry.docker.io"));
/// assert!(cs[1].is_scheme("basic"));
/// # Ok::<(), berth_auth::ParseError>(())
/// ```
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge<'_>>, ParseError> {
    let mut out = Vec::new();
    parse_challenges_into(header, &mut out)?;
    Ok(out)
}

/// Like [`parse_challenges`], appending to a caller's buffer (which may be
/// reused, so a warm parse allocates nothing). Returns how many challenges
/// were appended; on error the buffer is left as it was.
pub fn parse_challenges_into<'a>(
    header: &'a str,
    out: &mut Vec<Challenge<'a>>,
) -> Result<usize, ParseError> {
    let before = out.len();
    let grammar = Grammar { input: header };
    if let Err(e) = grammar.list(out) {
        out.truncate(before);
        return Err(e);
    }
    match out.len() - before {
        0 => Err(ParseError::new(header.len(), Expected::Challenge)),
        n => Ok(n),
    }
}

/// Parses several `WWW-Authenticate` header fields of one response, in order.
///
/// Each field is parsed on its own (a challenge does not continue into the
/// next field); a field may be empty or hold only empty list elements, but
/// the fields together must hold at least one challenge. An error's
/// [`field`](ParseError::field) says which field, and its offset is within
/// that field.
pub fn parse_challenge_fields<'a>(
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge<'a>>, ParseError> {
    let mut out = Vec::new();
    let mut last_len = 0;
    for (index, field) in fields.into_iter().enumerate() {
        Grammar { input: field }.list(&mut out).map_err(|mut e| {
            e.field = Some(index);
            e
        })?;
        last_len = field.len();
    }
    if out.is_empty() {
        return Err(ParseError::new(last_len, Expected::Challenge));
    }
    Ok(out)
}

/// Formats challenges as one header value, joined with `", "`.
pub fn format_challenges<'c, 'a: 'c>(
    challenges: impl IntoIterator<Item = &'c Challenge<'a>>,
) -> String {
    let mut out = String::new();
    for (k, c) in challenges.into_iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        out.push_str(&c.to_string());
    }
    out
}

/// Why an [`OwnedChallenge`] could not be built: the parts would not form a
/// valid challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidChallenge {
    /// The scheme is not a token.
    #[error("auth-scheme {0:?} is not a token")]
    Scheme(String),
    /// A parameter name is not a token.
    #[error("parameter name {0:?} is not a token")]
    ParamName(String),
    /// A parameter name occurs twice (ignoring case).
    #[error("parameter {0:?} occurs more than once")]
    DuplicateParam(String),
    /// A value holds a control character that a quoted-string cannot carry.
    #[error("the value of parameter {0:?} holds a control character")]
    Value(String),
    /// The token68 does not follow its grammar.
    #[error("{0:?} is not a token68")]
    Token68(String),
}

/// A challenge that owns its text: built with [`OwnedChallenge::new`] or
/// [`OwnedChallenge::with_token68`] (for a registry that sends challenges), or
/// copied from a parsed one with [`Challenge::to_owned`]. Values are held
/// unescaped. `Display` writes RFC 9110 syntax that parses back to an equal
/// challenge.
///
/// ```
/// use berth_auth::{OwnedChallenge, parse_challenges};
/// let c = OwnedChallenge::new("Bearer", [("realm", "https://r.example/token"), ("error", "insufficient_scope")])?;
/// let text = c.to_string();
/// assert_eq!(text, r#"Bearer realm="https://r.example/token", error=insufficient_scope"#);
/// assert_eq!(parse_challenges(&text).unwrap()[0].to_owned(), c);
/// # Ok::<(), berth_auth::InvalidChallenge>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedChallenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl OwnedChallenge {
    /// A challenge with auth-params (possibly none), in the given order.
    pub fn new<N: Into<String>, V: Into<String>>(
        scheme: impl Into<String>,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, InvalidChallenge> {
        let scheme = scheme.into();
        if !is_token(&scheme) {
            return Err(InvalidChallenge::Scheme(scheme));
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in params {
            let (name, value) = (name.into(), value.into());
            if !is_token(&name) {
                return Err(InvalidChallenge::ParamName(name));
            }
            if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(InvalidChallenge::DuplicateParam(name));
            }
            if !is_quotable(&value) {
                return Err(InvalidChallenge::Value(name));
            }
            out.push((name, value));
        }
        Ok(OwnedChallenge {
            scheme,
            token68: None,
            params: out,
        })
    }

    /// A challenge written `Scheme token68`.
    pub fn with_token68(
        scheme: impl Into<String>,
        token68: impl Into<String>,
    ) -> Result<Self, InvalidChallenge> {
        let (scheme, token68) = (scheme.into(), token68.into());
        if !is_token(&scheme) {
            return Err(InvalidChallenge::Scheme(scheme));
        }
        if !is_token68(&token68) {
            return Err(InvalidChallenge::Token68(token68));
        }
        Ok(OwnedChallenge {
            scheme,
            token68: Some(token68),
            params: Vec::new(),
        })
    }

    /// The auth-scheme as given.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme`, ignoring ASCII case.
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of parameter `name` (ignoring ASCII case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token68, for a challenge written `Scheme token68`.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The parameters in order: `(name, value)`.
    pub fn params(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl fmt::Display for OwnedChallenge {
    /// RFC 9110 syntax, as for [`Challenge`]'s `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_challenge(
            f,
            &self.scheme,
            self.token68.as_deref(),
            self.params
                .iter()
                .map(|(n, v)| (n.as_str(), Cow::Borrowed(v.as_str()))),
        )
    }
}

impl From<&Challenge<'_>> for OwnedChallenge {
    fn from(c: &Challenge<'_>) -> Self {
        c.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: &str) -> OwnedChallenge {
        let cs = parse_challenges(h).unwrap_or_else(|e| panic!("{h:?}: {e}"));
        assert_eq!(cs.len(), 1, "{h:?}");
        cs[0].to_owned()
    }

    fn err(h: &str) -> ParseError {
        match parse_challenges(h) {
            Ok(cs) => panic!("{h:?} parsed as {cs:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn docker_hub() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#;
        let cs = parse_challenges(h).unwrap();
        assert_eq!(cs.len(), 1);
        let c = &cs[0];
        assert_eq!(c.scheme(), "Bearer");
        assert!(matches!(
            c.param("realm"),
            Some(Cow::Borrowed("https://auth.docker.io/token"))
        ));
        assert_eq!(c.param("Service").as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.param("scope").as_deref(),
            Some("repository:library/ubuntu:pull")
        );
        assert_eq!(c.param("error"), None);
        assert_eq!(c.param_count(), 3);
        assert_eq!(c.token68(), None);
    }

    #[test]
    fn token68_versus_param() {
        assert_eq!(one("Basic abc=").token68(), Some("abc="));
        assert_eq!(one("Basic abc==  ").token68(), Some("abc=="));
        assert_eq!(one("Negotiate a/b+c").token68(), Some("a/b+c"));
        let c = one("Basic a=b");
        assert_eq!(c.token68(), None);
        assert_eq!(c.param("a"), Some("b"));
        let c = one("Basic a = b");
        assert_eq!(c.param("a"), Some("b"));
        let cs = parse_challenges("Negotiate abc=, Basic realm=x").unwrap();
        assert_eq!(cs[0].token68(), Some("abc="));
        assert_eq!(cs[1].param("realm").as_deref(), Some("x"));
    }

    #[test]
    fn new_challenge_after_comma() {
        let cs = parse_challenges("A, B").unwrap();
        assert_eq!(
            cs.iter().map(Challenge::scheme).collect::<Vec<_>>(),
            ["A", "B"]
        );
        let cs = parse_challenges("A x=y,B z=w ,C").unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[1].param("z").as_deref(), Some("w"));
        assert_eq!(cs[2].param_count(), 0);
        let cs = parse_challenges("Newauth , Basic realm=x").unwrap();
        assert_eq!(cs.len(), 2);
    }

    #[test]
    fn escapes_and_borrowing() {
        let cs = parse_challenges(r#"Bearer a="x\"y\\z", b="plain""#).unwrap();
        assert_eq!(
            cs[0].param("a"),
            Some(Cow::Owned::<str>("x\"y\\z".to_owned()))
        );
        assert!(matches!(cs[0].param("b"), Some(Cow::Borrowed("plain"))));
    }

    #[test]
    fn params_walk_whitespace_folds_and_empty_elements() {
        let c = one("A a=b ,\r\n\tc=\"d\\\"e\" ,, E = f,");
        let params: Vec<(&str, String)> = c.params().map(|(n, v)| (n, v.to_owned())).collect();
        assert_eq!(
            params,
            [
                ("a", "b".to_owned()),
                ("c", "d\"e".to_owned()),
                ("E", "f".to_owned())
            ]
        );
        let cs = parse_challenges("A a=b ,\r\n\tc=\"d\\\"e\" ,, E = f,").unwrap();
        assert_eq!(cs[0].param("e").as_deref(), Some("f"));
        assert_eq!(cs[0].param("C").as_deref(), Some("d\"e"));
    }

    #[test]
    fn obs_fold_is_whitespace() {
        assert_eq!(one("Basic\r\n realm=\"foo\"").param("realm"), Some("foo"));
        assert_eq!(one("Basic\n\trealm=\"foo\"").param("realm"), Some("foo"));
        assert_eq!(err("Basic\nrealm=\"foo\"").offset(), 5);
    }

    #[test]
    fn errors_name_what_and_where() {
        // `a` alone after a comma is a new challenge, not a broken parameter.
        assert_eq!(parse_challenges(r#"Bearer realm="x", a"#).unwrap().len(), 2);
        let e = err(r#"Bearer realm "x""#);
        assert_eq!(
            e.to_string(),
            "expected '=' after parameter name at byte 13"
        );
        let e = err(r#"Basic realm="Dev" charset="UTF-8""#);
        assert_eq!(e.expected(), Expected::Separator);
        assert_eq!(e.offset(), 18);
        let e = err(r#"Basic realm="open"#);
        assert_eq!(e.expected(), Expected::CloseQuote);
        assert_eq!(e.offset(), 17);
        // `Basic realm=` alone is a token68; after another parameter it is not.
        assert_eq!(one("Basic realm=").token68(), Some("realm="));
        let e = err("Basic a=b, realm=");
        assert_eq!(
            e.to_string(),
            "expected token or quoted-string after '=' at byte 17"
        );
        let e = err(r#"Basic realm="a", REALM="b""#);
        assert_eq!(e.expected(), Expected::DistinctParam);
        assert_eq!(e.offset(), 17);
        assert_eq!(err("").expected(), Expected::Challenge);
        assert_eq!(err(" , ,").expected(), Expected::Challenge);
        assert_eq!(
            err("Basic, realm=\"foo\"").expected(),
            Expected::NewChallenge
        );
        assert_eq!(
            err("Basic abc=, realm = x").expected(),
            Expected::NewChallenge
        );
        assert_eq!(err("Basic abc=, realm = x").offset(), 12);
        assert_eq!(err("\"Basic\"").expected(), Expected::AuthScheme);
        assert_eq!(
            err("Basic realm=\"a\u{1}\"").expected(),
            Expected::QuotedText
        );
        assert_eq!(
            err("Basic realm=\"a\\\u{1}\"").expected(),
            Expected::EscapedChar
        );
        assert_eq!(err("Basic\trealm=x").expected(), Expected::SchemeEnd);
    }

    #[test]
    fn error_display_includes_the_example_from_the_issue() {
        let e = err(r#"Basic abcdefghij "x""#);
        assert_eq!(
            e.to_string(),
            "expected '=' after parameter name at byte 17"
        );
        // After a comma, `name SP ...` starts a new challenge whose first
        // element must then be a parameter.
        let e = err(r#"Bearer service=x, realm "y""#);
        assert_eq!(e.expected(), Expected::ParamName);
        assert_eq!(e.offset(), 24);
    }

    #[test]
    fn many_params_duplicate_detected_after_spill() {
        let mut h = String::from("X ");
        for k in 0..40 {
            h.push_str(&format!("p{k}=v, "));
        }
        h.push_str("P39=again");
        let e = err(&h);
        assert_eq!(e.expected(), Expected::DistinctParam);
        assert_eq!(e.offset(), h.len() - "P39=again".len());
        let ok = &h[..h.len() - "P39=again".len()];
        assert_eq!(one(ok).params().len(), 40);
    }

    #[test]
    fn fields() {
        let cs = parse_challenge_fields(["Newauth realm=\"a\"", "", "Basic realm=\"b\""]).unwrap();
        assert_eq!(cs.len(), 2);
        let e = parse_challenge_fields(["Basic realm=x", "charset=y"]).unwrap_err();
        assert_eq!(e.field(), Some(1));
        assert_eq!(e.offset(), 0);
        assert!(
            e.to_string()
                .ends_with("of header field 1 (counting from 0)")
        );
        assert_eq!(
            parse_challenge_fields(["", " "]).unwrap_err().expected(),
            Expected::Challenge
        );
    }

    #[test]
    fn display_round_trips() {
        let h = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#;
        let cs = parse_challenges(h).unwrap();
        let text = format_challenges(&cs);
        assert_eq!(text, h);
        assert_eq!(parse_challenges(&text).unwrap(), cs);
        let c = OwnedChallenge::new("Basic", [("realm", "token")]).unwrap();
        assert_eq!(c.to_string(), r#"Basic realm="token""#);
        let c = OwnedChallenge::with_token68("Negotiate", "abc==").unwrap();
        assert_eq!(c.to_string(), "Negotiate abc==");
    }

    #[test]
    fn owned_challenge_refuses_invalid_parts() {
        assert!(matches!(
            OwnedChallenge::new("Bad scheme", [("a", "b")]),
            Err(InvalidChallenge::Scheme(_))
        ));
        assert!(matches!(
            OwnedChallenge::new("A", [("a b", "b")]),
            Err(InvalidChallenge::ParamName(_))
        ));
        assert!(matches!(
            OwnedChallenge::new("A", [("a", "1"), ("A", "2")]),
            Err(InvalidChallenge::DuplicateParam(_))
        ));
        assert!(matches!(
            OwnedChallenge::new("A", [("a", "x\ny")]),
            Err(InvalidChallenge::Value(_))
        ));
        assert!(matches!(
            OwnedChallenge::with_token68("A", "=x"),
            Err(InvalidChallenge::Token68(_))
        ));
    }

    #[test]
    fn debug_lists_params() {
        let cs = parse_challenges("Basic realm=\"x\"").unwrap();
        assert_eq!(
            format!("{:?}", cs[0]),
            r#"Challenge { scheme: "Basic", params: [("realm", "x")] }"#
        );
    }
}
