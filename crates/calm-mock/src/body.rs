//! The response body: all at once, or trickled.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// A response body of known length, sent whole or in `chunks_left` timed pieces.
pub(crate) struct MockBody {
    data: Bytes,
    chunks_left: usize,
    every: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl MockBody {
    pub(crate) fn full(data: Bytes) -> Self {
        let chunks_left = usize::from(!data.is_empty());
        Self {
            data,
            chunks_left,
            every: None,
            sleep: None,
        }
    }

    pub(crate) fn slow(data: Bytes, chunks: usize, every: Duration) -> Self {
        Self {
            data,
            chunks_left: chunks.max(1),
            every: Some(every),
            sleep: None,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if this.chunks_left == 0 {
                return Poll::Ready(None);
            }
            if let Some(every) = this.every {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
            }
            let take = this.data.len().div_ceil(this.chunks_left);
            this.chunks_left -= 1;
            let chunk = this.data.split_to(take);
            // NOTE: an empty DATA frame could read as end-of-body in chunked encoding; a slow
            // empty (or short) body still takes its time, it just sends nothing for that tick.
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks_left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64)
    }
}
