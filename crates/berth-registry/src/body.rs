//! Response bodies: whole, streamed from a file, and shaped by faults
//! (cut, slowed, corrupted).

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::faults::Applied;
use crate::storage::BlobContent;

/// The body of every response.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// How much of a file one chunk reads.
const FILE_CHUNK: usize = 64 * 1024;

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn from_stream(s: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Body {
    StreamBody::new(s.map_ok(Frame::data)).boxed_unsync()
}

/// Bytes `offset .. offset + len` of a blob.
pub(crate) fn blob(content: BlobContent, offset: u64, len: u64) -> Body {
    match content {
        BlobContent::Bytes(b) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
            let end = usize::try_from(offset.saturating_add(len))
                .unwrap_or(usize::MAX)
                .min(b.len());
            full(b.slice(start..end))
        }
        BlobContent::File { file, .. } => from_stream(file_stream(file, offset, len)),
    }
}

struct FileRead {
    file: tokio::fs::File,
    seek_to: Option<u64>,
    left: u64,
}

fn file_stream(
    file: std::fs::File,
    offset: u64,
    len: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let state = FileRead {
        file: tokio::fs::File::from_std(file),
        seek_to: Some(offset),
        left: len,
    };
    stream::try_unfold(state, |mut st| async move {
        if st.left == 0 {
            return Ok(None);
        }
        if let Some(pos) = st.seek_to.take() {
            st.file.seek(io::SeekFrom::Start(pos)).await?;
        }
        let want = usize::try_from(st.left)
            .unwrap_or(FILE_CHUNK)
            .min(FILE_CHUNK);
        let mut buf = BytesMut::zeroed(want);
        let n = st.file.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than its size",
            ));
        }
        buf.truncate(n);
        st.left -= n as u64;
        Ok(Some((buf.freeze(), st)))
    })
}

/// `body` as the faults in `applied` shape it.
pub(crate) fn shape(body: Body, applied: &Applied) -> Body {
    if !applied.shapes_body() {
        return body;
    }
    let mut s: stream::BoxStream<'static, io::Result<Bytes>> = body.into_data_stream().boxed();
    if let Some(offset) = applied.corrupt {
        s = corrupt(s, offset).boxed();
    }
    if let Some(rate) = applied.slow {
        s = slow(s, rate).boxed();
    }
    if let Some(after) = applied.cut {
        s = cut(s, after).boxed();
    }
    StreamBody::new(s.map_ok(Frame::data)).boxed_unsync()
}

/// Flips the byte at `offset`, or the last byte when the body is shorter.
fn corrupt(
    s: stream::BoxStream<'static, io::Result<Bytes>>,
    offset: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    // Look one chunk ahead so that the last byte can be flipped when the
    // body ends before `offset`.
    let mut s = s.peekable();
    let mut pos = 0u64;
    let mut done = false;
    stream::poll_fn(move |cx| {
        use std::task::Poll;
        let item = match s.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let Some(Ok(chunk)) = item else {
            return Poll::Ready(item);
        };
        let start = pos;
        pos += chunk.len() as u64;
        if done || chunk.is_empty() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        let at = if offset < pos {
            Some(offset - start)
        } else {
            match std::pin::Pin::new(&mut s).poll_peek(cx) {
                // The body ends here: flip its last byte.
                Poll::Ready(None) => Some(chunk.len() as u64 - 1),
                _ => None,
            }
        };
        let Some(at) = at else {
            return Poll::Ready(Some(Ok(chunk)));
        };
        done = true;
        let mut bytes = BytesMut::from(&chunk[..]);
        let i = usize::try_from(at).unwrap_or(0);
        bytes[i] ^= 0xff;
        Poll::Ready(Some(Ok(bytes.freeze())))
    })
}

/// Sends at `rate` bytes per second: a slice of `rate / 10` bytes (at
/// least one) every 100 ms.
fn slow(
    s: stream::BoxStream<'static, io::Result<Bytes>>,
    rate: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let slice = usize::try_from((rate / 10).max(1)).unwrap_or(usize::MAX);
    s.flat_map(move |item| {
        let pieces: Vec<io::Result<Bytes>> = match item {
            Ok(chunk) => {
                let mut out = Vec::new();
                let mut rest = chunk;
                while !rest.is_empty() {
                    let n = slice.min(rest.len());
                    out.push(Ok(rest.split_to(n)));
                }
                out
            }
            Err(e) => vec![Err(e)],
        };
        stream::iter(pieces)
    })
    .then(|item| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        item
    })
}

/// Ends with an error (the connection drops) once `after` bytes went out.
/// The error comes a moment after the last byte, so that hyper flushes
/// what was sent (with the head) before the connection drops.
fn cut(
    s: stream::BoxStream<'static, io::Result<Bytes>>,
    after: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    stream::unfold((s, after, false), |(mut s, left, done)| async move {
        if done {
            return None;
        }
        if left == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let err = io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fault injection: body cut",
            );
            return Some((Err(err), (s, 0, true)));
        }
        match s.next().await {
            Some(Ok(mut chunk)) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX);
                if chunk.len() > n {
                    chunk.truncate(n);
                }
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (s, left, false)))
            }
            Some(Err(e)) => Some((Err(e), (s, left, true))),
            None => None,
        }
    })
}
