//! Request bodies that can be sent more than once.
//!
//! [`Retry`](crate::Retry) needs a fresh copy of the request for every attempt. It gets the
//! body's through [`TryCloneBody`], which every `Clone` body implements (so
//! `Full<Bytes>`, `Empty<Bytes>`, `String`, ... are replayed as they are) and so does
//! [`ReplayBody`], the wrapper that makes *any* [`http_body::Body`] replayable by buffering it
//! lazily up to a cap. [`ReplayBodyLayer`] wraps every request body in a `ReplayBody`.

mod layer;
mod replay;

pub use layer::{ReplayBodyLayer, WithReplayBody};
pub use replay::{ReplayBody, DEFAULT_MAX_REPLAY_BYTES};

use http::Request;

/// A request body that [`Retry`](crate::Retry) can copy for the next attempt.
///
/// Implemented for every `Clone` type (a `Clone` body is replayed as is) and for
/// [`ReplayBody`]. Implement it for a body type of your own that is not `Clone` but can
/// produce its bytes again.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bytes::Bytes;
/// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, TryCloneBody};
/// use http::{Request, Response, StatusCode};
/// use tower::{Layer, ServiceExt};
///
/// /// A body of our own, deliberately not `Clone`.
/// struct Payload(Bytes);
///
/// impl TryCloneBody for Payload {
///     fn try_clone_body(&self) -> Option<Self> {
///         Some(Payload(self.0.clone()))
///     }
/// }
///
/// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// # let calls = Arc::new(AtomicU32::new(0));
/// # let backend = tower::service_fn(move |req: Request<Payload>| {
/// #     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
/// #     async move {
/// #         let mut res = Response::new(String::from_utf8(req.into_body().0.to_vec())?);
/// #         if first {
/// #             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
/// #         }
/// #         Ok::<_, tower::BoxError>(res)
/// #     }
/// # });
/// // `backend` answers 503 once, then echoes the body.
/// let policy = RetryPolicy::default().backoff(Backoff::none());
/// let svc = RetryLayer::new(policy).unwrap().layer(backend);
///
/// let req = Request::put("/").body(Payload(Bytes::from("again"))).unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts(), 2);
/// assert_eq!(res.body(), "again");
///
/// // `Clone` bodies need nothing.
/// assert_eq!(String::from("as is").try_clone_body().as_deref(), Some("as is"));
/// # }
/// ```
pub trait TryCloneBody: Sized {
    /// A body that yields the same bytes again, or `None` when that is no longer possible
    /// (the request is then not retried, and
    /// [`StopReason::BodyNotReplayable`](crate::StopReason::BodyNotReplayable) says so).
    /// See the trait's example.
    fn try_clone_body(&self) -> Option<Self>;

    /// Called by [`Retry`](crate::Retry) before the first attempt with the policy's
    /// [`max_replay_bytes`](crate::RetryPolicy::max_replay_bytes) (`0` when the request will
    /// not be retried). Buffering bodies use it as their cap; the default does nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use bytes::Bytes;
    /// use calm_retry::{ReplayBody, TryCloneBody};
    /// use http_body_util::{BodyExt, Full};
    ///
    /// let mut body = ReplayBody::new(Full::new(Bytes::from("0123456789")));
    /// body.limit_replay(4); // what Retry does with `max_replay_bytes(4)`
    /// body.try_clone_body().unwrap().collect().await.unwrap();
    /// assert!(body.try_clone_body().is_none());
    /// # }
    /// ```
    fn limit_replay(&mut self, max_bytes: usize) {
        let _ = max_bytes;
    }
}

impl<T: Clone> TryCloneBody for T {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// A copy of `req` (method, URI, version, headers, extensions and body), if its body can be
/// copied.
pub(crate) fn try_clone_request<B: TryCloneBody>(req: &Request<B>) -> Option<Request<B>> {
    let body = req.body().try_clone_body()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}
