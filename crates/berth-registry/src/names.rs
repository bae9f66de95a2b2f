//! Validated names: repository names, tags, digests and upload ids. Only
//! values that passed these checks ever reach storage, so none can climb
//! out of a storage directory.

use std::fmt;

use berth_protocol::ErrorCode;
use berth_reference::{Digest, grammar};

use crate::error::ApiError;

/// A repository name that passed the reference grammar
/// (`library/ubuntu`): lowercase components of letters and digits joined
/// by `.`, `_`, `__` or `-`, separated by `/`. No component is `.` or
/// `..`, and none starts with `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    /// Checks `name`; `NAME_INVALID` when it breaks the grammar or is
    /// longer than a reference's path may be (255 bytes).
    pub fn parse(name: &str) -> Result<RepoName, ApiError> {
        if name.len() > berth_reference::PATH_MAX_LEN {
            return Err(ApiError::new(
                ErrorCode::NameInvalid,
                format!(
                    "invalid repository name: {} bytes, longer than {}",
                    name.len(),
                    berth_reference::PATH_MAX_LEN
                ),
            ));
        }
        grammar::check_repository_path(name).map_err(|e| {
            ApiError::new(
                ErrorCode::NameInvalid,
                format!("invalid repository name {name:?}: {e}"),
            )
        })?;
        Ok(RepoName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag that passed the grammar (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagName(String);

impl TagName {
    /// Checks `tag`; `TAG_INVALID` (400) when it breaks the grammar.
    pub fn parse(tag: &str) -> Result<TagName, ApiError> {
        grammar::check_tag(tag).map_err(|e| {
            ApiError::new(ErrorCode::TagInvalid, format!("invalid tag {tag:?}: {e}"))
        })?;
        Ok(TagName(tag.to_owned()))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a digest (sha256 or sha512); `DIGEST_INVALID` otherwise.
pub fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| {
        ApiError::new(
            ErrorCode::DigestInvalid,
            format!("invalid digest {s:?}: {e}"),
        )
    })
}

/// An upload session id: 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// Checks `id`; `BLOB_UPLOAD_UNKNOWN` when it cannot be one of ours.
    pub fn parse(id: &str) -> Result<UploadId, ApiError> {
        if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(UploadId(id.to_owned()))
        } else {
            Err(ApiError::new(
                ErrorCode::BlobUploadUnknown,
                format!("no upload session {id:?}"),
            ))
        }
    }

    /// A fresh, unpredictable id.
    pub fn generate() -> UploadId {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let state = std::collections::hash_map::RandomState::new();
        let mut a = state.build_hasher();
        a.write_u64(n);
        let mut b = state.build_hasher();
        b.write_u64(n ^ 0x5a5a_5a5a_5a5a_5a5a);
        b.write_u64(a.finish());
        UploadId(format!("{:016x}{:016x}", a.finish(), b.finish()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_names_are_refused() {
        for bad in [
            "../../etc",
            "a/../b",
            "..",
            ".",
            "a/./b",
            "/abs",
            "a//b",
            "a/",
            "A",
            "_layers",
            "a/_manifests",
            "a%2f..",
            "",
        ] {
            let err = RepoName::parse(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::NameInvalid, "{bad}");
        }
        for good in ["a", "team/app", "a.b/c_d/e-f", "x__y"] {
            RepoName::parse(good).expect(good);
        }
        // 255 bytes is the most a reference's path may have.
        let longest = "a/".repeat(127) + "a";
        assert_eq!(longest.len(), 255);
        RepoName::parse(&longest).expect("255 bytes");
        let err = RepoName::parse(&format!("{longest}b")).expect_err("256 bytes");
        assert_eq!(err.code, ErrorCode::NameInvalid);
        for bad in ["..", ".x", "-x", "a/b", ""] {
            TagName::parse(bad).expect_err(bad);
        }
        for bad in ["../0", "0123456789abcdef0123456789abcdeF", "x"] {
            UploadId::parse(bad).expect_err(bad);
        }
        let id = UploadId::generate();
        assert_eq!(UploadId::parse(id.as_str()).expect("valid"), id);
        assert_ne!(UploadId::generate(), id);
    }
}
