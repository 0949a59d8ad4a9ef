//! The body type of calm's requests and responses.

use crate::error::TimedOut;
use bytes::Bytes;
use calm_client::transport::ResponseBody;
use calm_retry::{ReplayBody, TryCloneBody};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;
use tower::BoxError;

/// A request or response body: empty, a block of bytes, or a stream.
///
/// Bytes bodies cost no allocation and are replayed for free on retries. A stream given to
/// [`Body::wrap`] is boxed once and, when retried, replayed from a buffer filled while the
/// first attempt sends it, up to [`RetryPolicy::max_replay_bytes`](crate::RetryPolicy::max_replay_bytes)
/// (64 KiB by default); a longer stream is sent once and not retried.
///
/// ```
/// use calm::Body;
/// use http_body_util::BodyExt;
///
/// # tokio_test::block_on(async {
/// let body = Body::from("hello");
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
///
/// let stream = Body::wrap(http_body_util::Full::new(bytes::Bytes::from_static(b"streamed")));
/// assert_eq!(stream.collect().await.unwrap().to_bytes(), "streamed");
/// # });
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    // NOTE: request streams are replayable (buffered up to the retry policy's cap); response
    // streams are not, so they skip the buffer's lock.
    Replay(ReplayBody<UnsyncBoxBody<Bytes, BoxError>>),
    // NOTE: the bodies of hyper and of the default transport, kept unboxed: the common case
    // pays no allocation.
    Incoming(hyper::body::Incoming),
    Transport(ResponseBody),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
    /// A response body read under the request's time limit.
    Timed(Box<Timed>),
}

struct Timed {
    body: Body,
    deadline: Pin<Box<Sleep>>,
    after: Duration,
    /// True once it ended, failed or ran out of time: nothing more is read.
    done: bool,
}

impl Body {
    /// An empty body.
    ///
    /// ```
    /// use http_body::Body as _;
    /// assert!(calm::Body::empty().is_end_stream());
    /// ```
    pub fn empty() -> Self {
        Body {
            kind: Kind::Full(None),
        }
    }

    /// Wraps any [`http_body::Body`] whose chunks are [`Bytes`].
    ///
    /// ```
    /// let body = calm::Body::wrap(http_body_util::Empty::<bytes::Bytes>::new());
    /// # let _ = body;
    /// ```
    pub fn wrap<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Replay(ReplayBody::new(body.map_err(Into::into).boxed_unsync())),
        }
    }

    /// A response body: streamed through once, never buffered for replay.
    pub(crate) fn from_response<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut body = Some(body);
        let any: &mut dyn Any = &mut body;
        if let Some(incoming) = any.downcast_mut::<Option<hyper::body::Incoming>>() {
            if let Some(incoming) = incoming.take() {
                return Body {
                    kind: Kind::Incoming(incoming),
                };
            }
        }
        if let Some(transport) = any.downcast_mut::<Option<ResponseBody>>() {
            if let Some(transport) = transport.take() {
                return Body {
                    kind: Kind::Transport(transport),
                };
            }
        }
        let body = body.expect("only taken when it is hyper's or the transport's body");
        Body {
            kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()),
        }
    }
}

impl Body {
    /// This body, failing with [`TimedOut`] if it has not ended when `deadline` fires.
    /// A body already whole in memory has nothing left to wait for.
    pub(crate) fn with_deadline(self, deadline: Pin<Box<Sleep>>, after: Duration) -> Body {
        if matches!(self.kind, Kind::Full(_)) || http_body::Body::is_end_stream(&self) {
            return self;
        }
        Body {
            kind: Kind::Timed(Box::new(Timed {
                body: self,
                deadline,
                after,
                done: false,
            })),
        }
    }
}

impl TryCloneBody for Body {
    fn try_clone_body(&self) -> Option<Self> {
        let kind = match &self.kind {
            Kind::Full(bytes) => Kind::Full(bytes.clone()),
            Kind::Replay(body) => Kind::Replay(body.try_clone_body()?),
            Kind::Incoming(_) | Kind::Transport(_) | Kind::Boxed(_) | Kind::Timed(_) => {
                return None
            }
        };
        Some(Body { kind })
    }

    fn limit_replay(&mut self, max_bytes: usize) {
        if let Kind::Replay(body) = &mut self.kind {
            body.limit_replay(max_bytes);
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(None) => f.write_str("Body(empty)"),
            Kind::Full(Some(bytes)) => write!(f, "Body({} bytes)", bytes.len()),
            Kind::Replay(_)
            | Kind::Incoming(_)
            | Kind::Transport(_)
            | Kind::Boxed(_)
            | Kind::Timed(_) => f.write_str("Body(stream)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        let kind = if bytes.is_empty() {
            Kind::Full(None)
        } else {
            Kind::Full(Some(bytes))
        };
        Body { kind }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(bytes))
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Replay(body) => Pin::new(body).poll_frame(cx),
            Kind::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::Transport(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
            Kind::Timed(timed) => {
                if timed.done {
                    return Poll::Ready(None);
                }
                if let Poll::Ready(frame) = Pin::new(&mut timed.body).poll_frame(cx) {
                    timed.done = !matches!(frame, Some(Ok(_)));
                    return Poll::Ready(frame);
                }
                // NOTE: a body whose last bytes are in has nothing left to time out.
                if timed.body.is_end_stream() {
                    timed.done = true;
                    return Poll::Ready(None);
                }
                match timed.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        timed.done = true;
                        Poll::Ready(Some(Err(TimedOut::new(timed.after).into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Replay(body) => body.is_end_stream(),
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Transport(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
            Kind::Timed(timed) => timed.done || timed.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Replay(body) => body.size_hint(),
            Kind::Incoming(body) => body.size_hint(),
            Kind::Transport(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
            Kind::Timed(timed) => timed.body.size_hint(),
        }
    }
}
