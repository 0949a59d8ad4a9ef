//! [`ResponseBody`]: the response body of the transport, decoded when it was compressed.
//!
//! The decoding is tower-http's [`Decompression`](tower_http::decompression::Decompression)
//! when any of the `gzip`, `brotli`, `zstd` or `deflate` features is on; without them the
//! body is hyper's, passed through.

use super::BodyError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

#[cfg(any(
    feature = "gzip",
    feature = "brotli",
    feature = "zstd",
    feature = "deflate"
))]
mod imp {
    use hyper::body::Incoming;
    use tower_http::decompression::Decompression;

    pub(crate) type Decompress<S> = Decompression<S>;
    pub(crate) type Future<F> = tower_http::decompression::ResponseFuture<F>;
    pub(crate) type Decoded = tower_http::decompression::DecompressionBody<Incoming>;

    /// `inner` behind tower-http's decompression, every compiled-in encoding accepted, or
    /// none when `enabled` is false (no `Accept-Encoding` added, every body passed through).
    pub(crate) fn decompress<S>(inner: S, enabled: bool) -> Decompress<S> {
        let layer = Decompression::new(inner);
        if enabled {
            layer
        } else {
            layer.no_gzip().no_br().no_zstd().no_deflate()
        }
    }
}

#[cfg(not(any(
    feature = "gzip",
    feature = "brotli",
    feature = "zstd",
    feature = "deflate"
)))]
mod imp {
    use hyper::body::Incoming;

    pub(crate) type Decompress<S> = S;
    pub(crate) type Future<F> = F;
    pub(crate) type Decoded = Incoming;

    /// No decoder is compiled in: `inner` as it is.
    pub(crate) fn decompress<S>(inner: S, _enabled: bool) -> Decompress<S> {
        inner
    }
}

pub(crate) use imp::{decompress, Decoded, Decompress, Future as DecompressFuture};

pin_project! {
    /// The response body of [`Transport`](super::Transport): the bytes the server sent,
    /// decoded when they came with a `Content-Encoding` the transport asked for (see
    /// [Decompression](super#decompression)).
    ///
    /// An `http_body::Body` with `Data = Bytes` and `Error = `[`BodyError`], whose
    /// [`kind`](BodyError::kind) tells a body that could not be read (the connection failed
    /// mid-body) from one that could not be decoded.
    pub struct ResponseBody {
        #[pin]
        inner: Decoded,
    }
}

impl ResponseBody {
    pub(crate) fn new(inner: Decoded) -> Self {
        ResponseBody { inner }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match ready!(self.project().inner.poll_frame(cx)) {
            Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
            Some(Err(error)) => Poll::Ready(Some(Err(BodyError::from_body(error)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
