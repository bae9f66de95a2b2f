//! Digests and verification: the one place every blob and manifest check
//! goes through.

use std::fmt;
use std::io::{self, Read};

use berth_reference::{Algorithm, Digest};
use ring::digest::{Context, SHA256, SHA512};

/// The default limit for a manifest or an index read whole: 4 MiB, as
/// containers/image and containerd use.
pub const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// The default limit for an image configuration read whole: 8 MiB
/// (configs with long histories are larger than manifests).
pub const CONFIG_SIZE_LIMIT: u64 = 8 * 1024 * 1024;

/// Size limits for documents read whole into memory. Sizes from headers or
/// descriptors are not trusted: the limits are enforced on the bytes as they
/// arrive.
///
/// ```
/// use berth_manifest::{Limits, MANIFEST_SIZE_LIMIT};
/// let limits = Limits::default().with_manifest(1 << 20);
/// assert_eq!(Limits::default().manifest, MANIFEST_SIZE_LIMIT);
/// assert!(limits.check_manifest_size(2 << 20).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest manifest or index, in bytes.
    pub manifest: u64,
    /// Largest image configuration, in bytes.
    pub config: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            manifest: MANIFEST_SIZE_LIMIT,
            config: CONFIG_SIZE_LIMIT,
        }
    }
}

impl Limits {
    /// These limits with another manifest limit.
    pub fn with_manifest(mut self, bytes: u64) -> Self {
        self.manifest = bytes;
        self
    }

    /// These limits with another config limit.
    pub fn with_config(mut self, bytes: u64) -> Self {
        self.config = bytes;
        self
    }

    /// Refuses a manifest whose announced size (from a descriptor or a
    /// `Content-Length`) is over the limit, before any byte is read.
    pub fn check_manifest_size(&self, size: u64) -> Result<(), VerifyError> {
        if size > self.manifest {
            Err(VerifyError::TooLarge {
                limit: self.manifest,
            })
        } else {
            Ok(())
        }
    }
}

/// Why content failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The content hashes to another digest.
    DigestMismatch {
        /// The digest the content was expected to have.
        expected: Box<Digest>,
        /// The digest of the bytes received.
        actual: Box<Digest>,
    },
    /// The content has another length than announced. When more bytes than
    /// expected arrive, `actual` is the count received when that was noticed.
    SizeMismatch {
        /// The announced size.
        expected: u64,
        /// The bytes received (at least this many).
        actual: u64,
    },
    /// More bytes arrived than a size limit allows.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The expected digest fits the grammar but its algorithm is not one this
    /// crate can compute (sha256 and sha512 are).
    UnsupportedAlgorithm(String),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::DigestMismatch { expected, actual } => {
                write!(f, "digest mismatch: expected {expected}, got {actual}")
            }
            VerifyError::SizeMismatch { expected, actual } if actual > expected => {
                write!(
                    f,
                    "size mismatch: expected {expected} bytes, got at least {actual}"
                )
            }
            VerifyError::SizeMismatch { expected, actual } => {
                write!(f, "size mismatch: expected {expected} bytes, got {actual}")
            }
            VerifyError::TooLarge { limit } => {
                write!(f, "content too large: more than {limit} bytes")
            }
            VerifyError::UnsupportedAlgorithm(alg) => {
                write!(f, "unsupported digest algorithm: {alg}")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

impl VerifyError {
    /// The verification error inside an I/O error returned by
    /// [`VerifyingReader`] or [`LimitedReader`], if that is what it holds.
    pub fn from_io(err: &io::Error) -> Option<&VerifyError> {
        err.get_ref().and_then(|e| e.downcast_ref::<VerifyError>())
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Computes a digest over bytes given in any number of pieces.
///
/// ```
/// use berth_manifest::Digester;
/// let mut d = Digester::sha256();
/// d.update(b"{");
/// d.update(b"}");
/// assert_eq!(d.finish().to_string(), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
/// ```
#[derive(Clone)]
pub struct Digester {
    ctx: Context,
    algorithm: Algorithm,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Digester {
    /// A sha256 digester.
    pub fn sha256() -> Self {
        Digester {
            ctx: Context::new(&SHA256),
            algorithm: Algorithm::Sha256,
        }
    }

    /// A sha512 digester.
    pub fn sha512() -> Self {
        Digester {
            ctx: Context::new(&SHA512),
            algorithm: Algorithm::Sha512,
        }
    }

    /// A digester for a registered algorithm; `None` for one this crate
    /// cannot compute.
    pub fn new(algorithm: Algorithm) -> Option<Self> {
        match algorithm {
            Algorithm::Sha256 => Some(Digester::sha256()),
            Algorithm::Sha512 => Some(Digester::sha512()),
            _ => None,
        }
    }

    /// A digester with the algorithm of `digest`, to check content against
    /// it.
    pub fn for_digest(digest: &Digest) -> Result<Self, VerifyError> {
        digest
            .known_algorithm()
            .and_then(Digester::new)
            .ok_or_else(|| VerifyError::UnsupportedAlgorithm(digest.algorithm().to_owned()))
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.ctx.update(bytes);
    }

    /// The digest of every byte fed.
    pub fn finish(self) -> Digest {
        let out = self.ctx.finish();
        let bytes = out.as_ref();
        match self.algorithm {
            Algorithm::Sha512 => {
                Digest::from_sha512(bytes.try_into().expect("sha512 output is 64 bytes"))
            }
            _ => Digest::from_sha256(bytes.try_into().expect("sha256 output is 32 bytes")),
        }
    }

    /// The sha256 digest of `bytes`, in one call.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut d = Digester::sha256();
        d.update(bytes);
        d.finish()
    }
}

/// Checks content pushed to it piece by piece against an expected digest and
/// size. Too many bytes fail at once, in [`Verifier::update`]; a short or
/// wrong content fails in [`Verifier::finish`].
///
/// ```
/// use berth_manifest::{Digester, Verifier, VerifyError};
/// let expected = Digester::sha256_of(b"hello");
/// let mut v = Verifier::new(expected.clone(), 5)?;
/// v.update(b"hel")?;
/// v.update(b"lo")?;
/// v.finish()?;
///
/// let mut v = Verifier::new(expected, 5)?;
/// v.update(b"hellO")?;
/// let err = v.finish().unwrap_err();
/// assert!(err.to_string().starts_with("digest mismatch: expected sha256:2cf24dba"));
/// # Ok::<(), VerifyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Digest,
    expected_size: u64,
    seen: u64,
    digester: Digester,
}

impl Verifier {
    /// A verifier for content that must have digest `expected` and
    /// `expected_size` bytes. Fails with
    /// [`VerifyError::UnsupportedAlgorithm`] for a digest whose algorithm
    /// only the grammar accepts.
    pub fn new(expected: Digest, expected_size: u64) -> Result<Self, VerifyError> {
        let digester = Digester::for_digest(&expected)?;
        Ok(Verifier {
            expected,
            expected_size,
            seen: 0,
            digester,
        })
    }

    /// As [`Verifier::new`], refusing at once an expected size over `limit`.
    pub fn with_limit(
        expected: Digest,
        expected_size: u64,
        limit: u64,
    ) -> Result<Self, VerifyError> {
        if expected_size > limit {
            return Err(VerifyError::TooLarge { limit });
        }
        Verifier::new(expected, expected_size)
    }

    /// The digest the content must have.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// The size the content must have.
    pub fn expected_size(&self) -> u64 {
        self.expected_size
    }

    /// Bytes received so far.
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// Feeds more bytes; fails as soon as more than the expected size
    /// arrived.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let total = self.seen.saturating_add(len);
        if total > self.expected_size {
            return Err(VerifyError::SizeMismatch {
                expected: self.expected_size,
                actual: total,
            });
        }
        self.seen = total;
        self.digester.update(bytes);
        Ok(())
    }

    /// Checks the size and the digest of everything fed.
    pub fn finish(self) -> Result<(), VerifyError> {
        if self.seen != self.expected_size {
            return Err(VerifyError::SizeMismatch {
                expected: self.expected_size,
                actual: self.seen,
            });
        }
        let actual = self.digester.finish();
        if actual != self.expected {
            return Err(VerifyError::DigestMismatch {
                expected: Box::new(self.expected),
                actual: Box::new(actual),
            });
        }
        Ok(())
    }

    /// Verifies a whole buffer in one call.
    pub fn verify(expected: &Digest, expected_size: u64, bytes: &[u8]) -> Result<(), VerifyError> {
        let mut v = Verifier::new(expected.clone(), expected_size)?;
        v.update(bytes)?;
        v.finish()
    }
}

/// A reader that verifies what it passes through: reading past the expected
/// size fails at once, and end of input fails when the digest or the size
/// is wrong. Errors are [`io::ErrorKind::InvalidData`] holding a
/// [`VerifyError`] ([`VerifyError::from_io`] gets it back).
///
/// ```
/// use std::io::Read;
/// use berth_manifest::{Digester, VerifyError, VerifyingReader};
/// let blob = b"layer bytes".to_vec();
/// let digest = Digester::sha256_of(&blob);
/// let mut r = VerifyingReader::new(&blob[..], digest.clone(), 11)?;
/// let mut out = Vec::new();
/// r.read_to_end(&mut out)?;
///
/// let mut bad = VerifyingReader::new(&b"layer bytez"[..], digest, 11)?;
/// let err = bad.read_to_end(&mut Vec::new()).unwrap_err();
/// assert!(matches!(VerifyError::from_io(&err), Some(VerifyError::DigestMismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    verifier: Option<Verifier>,
    failed: Option<VerifyError>,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, whose content must have digest `expected` and
    /// `expected_size` bytes.
    pub fn new(inner: R, expected: Digest, expected_size: u64) -> Result<Self, VerifyError> {
        Ok(VerifyingReader {
            inner,
            verifier: Some(Verifier::new(expected, expected_size)?),
            failed: None,
        })
    }

    /// Whether the whole content was read and verified.
    pub fn is_verified(&self) -> bool {
        self.verifier.is_none() && self.failed.is_none()
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.clone().into_io());
        }
        let Some(verifier) = self.verifier.as_mut() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            let v = self.verifier.take().expect("checked above");
            return match v.finish() {
                Ok(()) => Ok(0),
                Err(e) => {
                    self.failed = Some(e.clone());
                    Err(e.into_io())
                }
            };
        }
        match verifier.update(&buf[..n]) {
            Ok(()) => Ok(n),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e.into_io())
            }
        }
    }
}

/// A reader that fails with [`VerifyError::TooLarge`] as soon as its input
/// gives more than `limit` bytes, so a peer cannot make the reader hold more.
///
/// ```
/// use std::io::Read;
/// use berth_manifest::{LimitedReader, VerifyError};
/// let mut r = LimitedReader::new(&b"0123456789"[..], 4);
/// let err = r.read_to_end(&mut Vec::new()).unwrap_err();
/// assert_eq!(VerifyError::from_io(&err), Some(&VerifyError::TooLarge { limit: 4 }));
/// ```
#[derive(Debug)]
pub struct LimitedReader<R> {
    inner: R,
    limit: u64,
    read: u64,
}

impl<R: Read> LimitedReader<R> {
    /// Wraps `inner`, allowing at most `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        LimitedReader {
            inner,
            limit,
            read: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for at most one byte past the limit: enough to notice it.
        let room = self.limit.saturating_sub(self.read).saturating_add(1);
        let want = usize::try_from(room).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        let len = u64::try_from(n).unwrap_or(u64::MAX);
        self.read = self.read.saturating_add(len);
        if self.read > self.limit {
            return Err(VerifyError::TooLarge { limit: self.limit }.into_io());
        }
        Ok(n)
    }
}

/// Reads all of `reader` into memory, refusing more than `limit` bytes
/// while reading (not after).
pub fn read_limited<R: Read>(reader: R, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    LimitedReader::new(reader, limit).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_and_unsupported() {
        let mut d = Digester::sha512();
        d.update(b"abc");
        let digest = d.finish();
        assert_eq!(digest.known_algorithm(), Some(Algorithm::Sha512));
        assert!(digest.encoded().starts_with("ddaf35a193617aba"));
        assert!(Verifier::verify(&digest, 3, b"abc").is_ok());
        let odd = Digest::parse_any_algorithm(
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        )
        .expect("grammar-valid");
        assert_eq!(
            Verifier::new(odd, 1).unwrap_err(),
            VerifyError::UnsupportedAlgorithm("multihash+base58".into())
        );
    }

    #[test]
    fn verifier_fails_early_on_excess_and_late_on_short() {
        let digest = Digester::sha256_of(b"abcd");
        let mut v = Verifier::new(digest.clone(), 4).expect("sha256");
        v.update(b"abc").expect("fits");
        assert_eq!(
            v.update(b"de"),
            Err(VerifyError::SizeMismatch {
                expected: 4,
                actual: 5
            })
        );
        let mut v = Verifier::new(digest.clone(), 4).expect("sha256");
        v.update(b"abc").expect("fits");
        assert_eq!(
            v.finish(),
            Err(VerifyError::SizeMismatch {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            Verifier::with_limit(digest, 10, 5).unwrap_err(),
            VerifyError::TooLarge { limit: 5 }
        );
    }

    #[test]
    fn verifying_reader_refuses_excess_before_eof() {
        let digest = Digester::sha256_of(b"abc");
        let mut r = VerifyingReader::new(&b"abcdef"[..], digest, 3).expect("sha256");
        let mut buf = [0u8; 16];
        let err = r.read(&mut buf).unwrap_err();
        assert!(matches!(
            VerifyError::from_io(&err),
            Some(VerifyError::SizeMismatch { .. })
        ));
        // Stays failed.
        assert!(r.read(&mut buf).is_err());
        assert!(!r.is_verified());
    }

    #[test]
    fn limited_reader_allows_exactly_the_limit() {
        assert_eq!(read_limited(&b"1234"[..], 4).expect("fits"), b"1234");
        assert!(read_limited(&b"12345"[..], 4).is_err());
        assert_eq!(read_limited(&b""[..], 0).expect("fits"), b"");
    }
}
