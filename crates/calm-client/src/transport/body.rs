//! [`ResponseBody`]: the response body of the transport, decoded when it was compressed.
//!
//! The decoding is tower-http's [`Decompression`](tower_http::decompression::Decompression)
//! when any of the `gzip`, `brotli`, `zstd` or `deflate` features is on; without them the
//! body is hyper's, passed through.

use super::BodyError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
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

    /// hyper's body inside `decoded`, which passes it through as it is.
    pub(crate) fn plain(decoded: Decoded) -> Incoming {
        decoded.into_inner()
    }

    /// A body may be decoded.
    pub(crate) const DECODES: bool = true;

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

    pub(crate) fn plain(decoded: Decoded) -> Incoming {
        decoded
    }

    /// No decoder: every body is hyper's as it came.
    pub(crate) const DECODES: bool = false;

    /// No decoder is compiled in: `inner` as it is.
    pub(crate) fn decompress<S>(inner: S, _enabled: bool) -> Decompress<S> {
        inner
    }
}

pub(crate) use imp::{decompress, Decoded, Decompress, Future as DecompressFuture};
use imp::{plain, DECODES};

pin_project! {
    /// The response body of [`Transport`](super::Transport): the bytes the server sent,
    /// decoded when they came with a `Content-Encoding` the transport asked for (see
    /// [Decompression](super#decompression)).
    ///
    /// An `http_body::Body` with `Data = Bytes` and `Error = `[`BodyError`], whose
    /// [`kind`](BodyError::kind) tells a body that could not be read (the connection failed
    /// mid-body) from one that could not be decoded.
    ///
    /// A body sent without `Content-Encoding` is hyper's, read with no decoder in between
    /// (and `calm::Client` keeps it without boxing it).
    pub struct ResponseBody {
        #[pin]
        inner: Inner,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner {
        /// Sent without a `Content-Encoding` (nearly every response): hyper's body, with no
        /// decoder around it.
        Plain { #[pin] body: Incoming },
        /// Sent with a `Content-Encoding`: decoded, or passed through by the decoder (an
        /// encoding it was not asked for); boxed, as a decoder is large and rare.
        Decoded { body: Pin<Box<Decoded>> },
    }
}

impl ResponseBody {
    /// `body`, of a response that was `encoded` (came with a `Content-Encoding`) or not.
    pub(crate) fn new(body: Decoded, encoded: bool) -> Self {
        let inner = if encoded && DECODES {
            Inner::Decoded {
                body: Box::pin(body),
            }
        } else {
            // NOTE: the decoder passes a body without `Content-Encoding` through as it is.
            Inner::Plain { body: plain(body) }
        };
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
        let frame = match self.project().inner.project() {
            InnerProj::Plain { body } => {
                ready!(body.poll_frame(cx)).map(|frame| frame.map_err(BodyError::from_body))
            }
            InnerProj::Decoded { body } => ready!(body.as_mut().poll_frame(cx))
                .map(|frame| frame.map_err(BodyError::from_body)),
        };
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Plain { body } => body.is_end_stream(),
            Inner::Decoded { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Plain { body } => body.size_hint(),
            Inner::Decoded { body } => body.size_hint(),
        }
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
