//! The error every parser in this crate returns.

use std::fmt;

/// What went wrong, as a class. The classes follow the errors of Go's
/// `distribution/reference` and `go-digest`, so callers can match on them;
/// [`ParseError`] adds the rule that was broken and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input, or its repository name, is empty (`ErrNameEmpty`).
    NameEmpty,
    /// The input does not follow the reference grammar
    /// (`ErrReferenceInvalidFormat`).
    InvalidFormat,
    /// The repository name has an uppercase letter (`ErrNameContainsUppercase`).
    NameContainsUppercase,
    /// The repository path is longer than 255 characters (`ErrNameTooLong`).
    NameTooLong,
    /// A tag does not follow `[\w][\w.-]{0,127}` (`ErrTagInvalidFormat`).
    TagInvalidFormat,
    /// A digest does not follow the digest grammar, or its encoded part has
    /// characters its algorithm does not allow (`ErrDigestInvalidFormat`).
    DigestInvalidFormat,
    /// A digest's encoded part has the wrong length for its algorithm
    /// (`ErrDigestInvalidLength`).
    DigestInvalidLength,
    /// A digest names an algorithm that is not registered (`ErrDigestUnsupported`).
    DigestUnsupported,
    /// A repository name is exactly 64 hexadecimal characters, which Docker
    /// refuses because it reads as an image ID.
    HexRepositoryName,
    /// A pattern given to [`crate::Reference::familiar_match`] is malformed.
    BadPattern,
}

impl ErrorKind {
    /// The message Go's packages use for this class.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::NameEmpty => "repository name must have at least one component",
            ErrorKind::InvalidFormat => "invalid reference format",
            ErrorKind::NameContainsUppercase => "repository name must be lowercase",
            ErrorKind::NameTooLong => "repository name must not be more than 255 characters",
            ErrorKind::TagInvalidFormat => "invalid tag format",
            ErrorKind::DigestInvalidFormat => "invalid checksum digest format",
            ErrorKind::DigestInvalidLength => "invalid checksum digest length",
            ErrorKind::DigestUnsupported => "unsupported digest algorithm",
            ErrorKind::HexRepositoryName => {
                "repository name cannot be a 64-character hexadecimal string"
            }
            ErrorKind::BadPattern => "syntax error in pattern",
        }
    }
}

/// A parse failure: which rule was broken and at which byte of the input.
///
/// ```
/// use berth_reference::{ErrorKind, Reference};
/// let err = Reference::parse("docker.io/Library/ubuntu").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NameContainsUppercase);
/// assert_eq!(err.offset(), 10);
/// assert_eq!(err.to_string(), "repository name must be lowercase at byte 10");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ErrorKind,
    offset: usize,
    detail: Option<&'static str>,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        ParseError {
            kind,
            offset,
            detail: None,
        }
    }

    pub(crate) fn with_detail(kind: ErrorKind, offset: usize, detail: &'static str) -> Self {
        ParseError {
            kind,
            offset,
            detail: Some(detail),
        }
    }

    /// Moves the offset by `by` bytes, for an error found in a slice that
    /// starts `by` bytes into the caller's input.
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The byte offset in the input where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The grammar rule that was broken, when there is more to say than
    /// [`ErrorKind::message`].
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.message())?;
        if let Some(detail) = self.detail {
            write!(f, ": {detail}")?;
        }
        write!(f, " at byte {}", self.offset)
    }
}

impl std::error::Error for ParseError {}
