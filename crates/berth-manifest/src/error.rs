//! The error returned when a document is refused, with the field path.

use std::fmt;

/// Why a manifest, index, descriptor or config was refused.
///
/// Errors about one field name it by path (`layers[3].digest`), whether the
/// JSON decoder or the validation pass found the problem:
///
/// ```
/// use berth_manifest::{ManifestError, Manifest};
/// let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
///   "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,
///     "digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
///   "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1,"digest":"sha256:abc"}]}"#;
/// let err = Manifest::from_bytes(body, None).unwrap_err();
/// assert_eq!(err.path(), Some("layers[0].digest"));
/// assert_eq!(err.to_string(), "layers[0].digest: sha256 digest must be 64 hex characters, found 3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// The document is larger than the size limit.
    TooLarge {
        /// The document's size, or the bytes read when the limit was hit.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The bytes are not well-formed JSON.
    Syntax {
        /// 1-based line of the problem.
        line: usize,
        /// 0-based byte column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A field is missing, has the wrong type, or breaks a rule of the
    /// spec.
    Invalid {
        /// Where: `layers[3].digest`; empty for the document itself.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The Content-Type names one kind of manifest and the body's own
    /// `mediaType` another.
    MediaTypeMismatch {
        /// The Content-Type's essence.
        content_type: String,
        /// The body's `mediaType`.
        body: String,
    },
    /// Neither the Content-Type nor the body tells what kind of manifest
    /// this is.
    UnknownKind,
    /// The Content-Type is not a manifest type this crate parses.
    UnsupportedMediaType(String),
    /// Reading the document failed.
    Read(String),
}

impl ManifestError {
    pub(crate) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        ManifestError::Invalid {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// The path of the field at fault, when one field is.
    pub fn path(&self) -> Option<&str> {
        match self {
            ManifestError::Invalid { path, .. } if !path.is_empty() => Some(path),
            _ => None,
        }
    }

    /// Turns a serde_json error into a syntax error or a field error whose
    /// path is found from the error's position in `input`.
    pub(crate) fn from_json(err: &serde_json::Error, input: &[u8]) -> Self {
        // serde_json stops at the first problem, which may be a type error
        // in a document that is not JSON at all: say the latter.
        if err.classify() == serde_json::error::Category::Data
            && let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(input)
        {
            return ManifestError::from_json(&syntax, input);
        }
        let full = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        match err.classify() {
            serde_json::error::Category::Data => {
                let offset = offset_of(input, err.line(), err.column());
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.strip_suffix('`'))
                    .map(str::to_owned);
                let mut path = if missing.is_some() {
                    // The position is just after the object's `}`: the path
                    // is the object's own.
                    json_path_at(input, offset.saturating_sub(1), false)
                } else {
                    json_path_at(input, offset, true)
                };
                if let Some(field) = missing {
                    push_field(&mut path, &field);
                    return ManifestError::invalid(path, "required field is missing");
                }
                ManifestError::invalid(path, message)
            }
            _ => ManifestError::Syntax {
                line: err.line(),
                column: err.column(),
                message,
            },
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::TooLarge { size, limit } => {
                write!(f, "manifest too large: {size} bytes, the limit is {limit}")
            }
            ManifestError::Syntax {
                line,
                column,
                message,
            } => {
                write!(
                    f,
                    "not valid JSON: {message} at line {line} column {column}"
                )
            }
            ManifestError::Invalid { path, problem } if path.is_empty() => f.write_str(problem),
            ManifestError::Invalid { path, problem } => write!(f, "{path}: {problem}"),
            ManifestError::MediaTypeMismatch { content_type, body } => write!(
                f,
                "media type mismatch: Content-Type is {content_type} but the body says {body}"
            ),
            ManifestError::UnknownKind => f.write_str("cannot tell what kind of manifest this is"),
            ManifestError::UnsupportedMediaType(t) => {
                write!(f, "unsupported manifest media type: {t}")
            }
            ManifestError::Read(e) => write!(f, "reading the manifest failed: {e}"),
        }
    }
}

impl std::error::Error for ManifestError {}

/// A field path under construction, allocated only when an error needs it.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    pub(crate) fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    pub(crate) fn error(&self, problem: impl Into<String>) -> ManifestError {
        ManifestError::invalid(self.to_string(), problem)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => {
                parent.fmt(f)?;
                if !matches!(parent, Path::Root) {
                    f.write_str(".")?;
                }
                f.write_str(name)
            }
            Path::Index(parent, i) => {
                parent.fmt(f)?;
                write!(f, "[{i}]")
            }
        }
    }
}

fn push_field(path: &mut String, field: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(field);
}

/// The byte offset of serde_json's (1-based line, 0-based column).
fn offset_of(input: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match input[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start += p + 1,
            None => break,
        }
    }
    (start + column).min(input.len())
}

enum Frame {
    Object {
        key: Option<String>,
        expect_key: bool,
    },
    Array {
        index: usize,
    },
}

/// The path of the value being read at `offset`, found by scanning the JSON
/// before it. With `with_key`, a key whose value has begun is included.
fn json_path_at(input: &[u8], offset: usize, with_key: bool) -> String {
    let end = offset.min(input.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match input[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                None => {}
            },
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < input.len() && input[j] != b'"' {
                    j += if input[j] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    let raw = &input[start..j.min(input.len())];
                    *key = Some(String::from_utf8_lossy(raw).into_owned());
                    *expect_key = false;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    let n = stack.len();
    for (depth, frame) in stack.iter().enumerate() {
        match frame {
            Frame::Object { key: Some(k), .. } if with_key || depth + 1 < n => {
                push_field(&mut path, k)
            }
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
            Frame::Object { .. } => {}
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_positions() {
        let doc = br#"{"a": {"b": [1, {"c": "x"}]}}"#;
        let at = doc.iter().position(|&b| b == b'x').expect("x") + 2;
        assert_eq!(json_path_at(doc, at, true), "a.b[1].c");
        assert_eq!(json_path_at(doc, at, false), "a.b[1]");
        let nested = Path::Root;
        let layers = nested.field("layers");
        let third = layers.index(3);
        assert_eq!(third.field("digest").to_string(), "layers[3].digest");
    }

    #[test]
    fn offsets() {
        assert_eq!(offset_of(b"ab\ncd\nef", 3, 1), 7);
        assert_eq!(offset_of(b"ab", 1, 9), 2);
    }
}
