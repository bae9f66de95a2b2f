//! The bound on uploads: how many blob bodies are on the wire at once.
//!
//! A blob holds a slot from its existence check until the last byte of its
//! body is handed to the transport. Waiting for the registry's answer after
//! that holds none, so the next blob's body starts while the registry
//! finishes the last one: distribution writes each blob out and syncs it to
//! disk before it answers (0.1–0.2 s for 64 MiB on the benchmark machine),
//! and with the bound on whole uploads nothing was sent in that time.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use berth_protocol::TransportError;
use berth_protocol::driver::{BlobSource, OutgoingBody};
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::UploadStream;

/// Slots for blob bodies, shared by the uploads of one push or copy.
#[derive(Debug)]
pub(crate) struct BodySlots(Arc<Semaphore>);

impl BodySlots {
    /// `n` bodies at once (at least 1).
    pub(crate) fn new(n: usize) -> Self {
        BodySlots(Arc::new(Semaphore::new(n.max(1))))
    }

    /// Waits for a free slot (first come, first served).
    pub(crate) async fn acquire(&self) -> Slot {
        // The semaphore is never closed, so acquiring cannot fail; were it
        // closed, going on without a slot only loosens the bound.
        let permit = Arc::clone(&self.0).acquire_owned().await.ok();
        Slot(Arc::new(Mutex::new(permit)))
    }

    /// How many slots are free now.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.0.available_permits()
    }
}

/// One blob's slot: freed when the last byte of its body has gone to the
/// transport, or when it is dropped (the blob existed, was mounted, or
/// failed).
#[derive(Debug, Clone)]
pub(crate) struct Slot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Slot {
    fn free(&self) {
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
    }

    /// `source` (a blob of `size` bytes), giving the slot back once the body
    /// that ends the blob has been sent.
    pub(crate) fn source<'a>(&self, source: &'a dyn BlobSource, size: u64) -> Slotted<'a> {
        Slotted {
            source,
            size,
            slot: self.clone(),
        }
    }
}

/// A blob source that frees its [`Slot`] as its last byte is sent.
pub(crate) struct Slotted<'a> {
    source: &'a dyn BlobSource,
    size: u64,
    slot: Slot,
}

impl BlobSource for Slotted<'_> {
    fn range(&self, offset: u64, len: u64) -> Result<OutgoingBody, TransportError> {
        let body = self.source.range(offset, len)?;
        if offset.saturating_add(len) < self.size {
            return Ok(body);
        }
        Ok(match body {
            OutgoingBody::Stream { stream, len } if len > 0 => OutgoingBody::Stream {
                stream: Box::pin(FreeAtEnd {
                    stream,
                    left: len,
                    slot: self.slot.clone(),
                }),
                len,
            },
            whole => {
                // In memory already (or empty): nothing left to wait for.
                self.slot.free();
                whole
            }
        })
    }
}

/// Passes a body through, freeing the slot when its last byte (or its end,
/// or an error) goes by.
struct FreeAtEnd {
    stream: UploadStream,
    left: u64,
    slot: Slot,
}

impl Stream for FreeAtEnd {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.stream.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                self.left = self.left.saturating_sub(chunk.len() as u64);
                if self.left == 0 {
                    self.slot.free();
                }
            }
            Poll::Ready(_) => self.slot.free(),
            Poll::Pending => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn io_body(body: OutgoingBody) -> UploadStream {
        match body {
            OutgoingBody::Stream { stream, .. } => stream,
            other => panic!("expected a stream, got {other:?}"),
        }
    }

    /// A source whose ranges are streams of 3-byte chunks.
    struct Chunks(Bytes);

    impl BlobSource for Chunks {
        fn range(&self, offset: u64, len: u64) -> Result<OutgoingBody, TransportError> {
            let start = usize::try_from(offset).expect("small");
            let end = start + usize::try_from(len).expect("small");
            let chunks: Vec<Result<Bytes, std::io::Error>> = (start..end)
                .step_by(3)
                .map(|at| Ok(self.0.slice(at..(at + 3).min(end))))
                .collect();
            Ok(OutgoingBody::Stream {
                stream: Box::pin(futures_util::stream::iter(chunks)),
                len,
            })
        }
    }

    #[tokio::test]
    async fn the_slot_frees_with_the_last_byte_of_the_last_range() {
        let slots = BodySlots::new(1);
        let slot = slots.acquire().await;
        assert_eq!(slots.free(), 0);
        let blob = Chunks(Bytes::from_static(b"0123456789"));
        let source = slot.source(&blob, 10);
        drop(slot);

        // A range short of the end leaves the slot taken, even when sent.
        let mut first = io_body(source.range(0, 6).expect("range"));
        while first.next().await.is_some() {}
        assert_eq!(slots.free(), 0);

        // The last range frees it as its last chunk passes, before the
        // stream is asked for its end.
        let mut last = io_body(source.range(6, 4).expect("range"));
        let a = last.next().await.expect("chunk").expect("ok");
        assert_eq!(&a[..], b"678");
        assert_eq!(slots.free(), 0);
        let b = last.next().await.expect("chunk").expect("ok");
        assert_eq!(&b[..], b"9");
        assert_eq!(slots.free(), 1);
        assert!(last.next().await.is_none());
        drop(source);
        assert_eq!(slots.free(), 1);
    }

    #[tokio::test]
    async fn a_slot_frees_when_its_blob_needs_no_body() {
        let slots = BodySlots::new(2);
        let held = slots.acquire().await;
        let dropped = slots.acquire().await;
        assert_eq!(slots.free(), 0);
        drop(dropped);
        assert_eq!(slots.free(), 1);

        // A body already in memory frees the slot as it is handed over.
        let blob = Bytes::from_static(b"abc");
        let source = held.source(&blob, 3);
        drop(held);
        let body = source.range(0, 3).expect("range");
        assert!(matches!(body, OutgoingBody::Bytes(_)));
        assert_eq!(slots.free(), 2);
    }

    #[tokio::test]
    async fn a_failed_body_frees_its_slot() {
        struct Broken;
        impl BlobSource for Broken {
            fn range(&self, _: u64, len: u64) -> Result<OutgoingBody, TransportError> {
                Ok(OutgoingBody::Stream {
                    stream: Box::pin(futures_util::stream::iter([Err(std::io::Error::other(
                        "disk gone",
                    ))])),
                    len,
                })
            }
        }
        let slots = BodySlots::new(1);
        let slot = slots.acquire().await;
        let source = slot.source(&Broken, 8);
        let mut body = io_body(source.range(0, 8).expect("range"));
        assert!(body.next().await.expect("item").is_err());
        assert_eq!(slots.free(), 1);
        // The slot stays free: a second free changes nothing.
        drop((slot, source, body));
        assert_eq!(slots.free(), 1);
    }
}
