use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use super::ReplayBody;

/// Wraps every request body in a [`ReplayBody`], so [`Retry`](crate::Retry) can replay bodies
/// that are not `Clone` (streams, channels, hyper's `Incoming`).
///
/// Put it outside (before) the [`RetryLayer`](crate::RetryLayer); the retry policy's
/// [`max_replay_bytes`](crate::RetryPolicy::max_replay_bytes) then sets the buffer cap of each
/// request (64 KiB by default).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bytes::Bytes;
/// use calm_retry::{ReplayBody, ReplayBodyLayer, RetryInfo, RetryLayer, RetryPolicy};
/// use http::{Request, Response, StatusCode};
/// use http_body_util::{BodyExt, StreamBody};
/// use http_body::Frame;
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// // A backend that reads the whole body, answers 503 the first time and echoes it after.
/// let calls = Arc::new(AtomicUsize::new(0));
/// let backend = tower::service_fn(move |req: Request<ReplayBody<_>>| {
///     let calls = calls.clone();
///     async move {
///         let body = req.into_body().collect().await?.to_bytes();
///         let status = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
///             StatusCode::SERVICE_UNAVAILABLE
///         } else {
///             StatusCode::OK
///         };
///         let mut res = Response::new(String::from_utf8(body.to_vec())?);
///         *res.status_mut() = status;
///         Ok::<_, tower::BoxError>(res)
///     }
/// });
///
/// let policy = RetryPolicy::default().backoff(calm_retry::Backoff::none());
/// let svc = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new())
///     .layer(RetryLayer::new(policy).unwrap())
///     .service(backend);
///
/// // A streaming body: not Clone, read once.
/// let chunks = ["hello ", "world"]
///     .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
/// let body = StreamBody::new(futures_util::stream::iter(chunks));
/// let res = svc.oneshot(Request::put("/").body(body).unwrap()).await.unwrap();
///
/// assert_eq!(res.status(), StatusCode::OK);
/// assert_eq!(res.body(), "hello world");
/// assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts(), 2);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct ReplayBodyLayer {
    _priv: (),
}

impl ReplayBodyLayer {
    /// A layer that wraps request bodies in [`ReplayBody`]; see the type's example.
    pub fn new() -> Self {
        ReplayBodyLayer { _priv: () }
    }
}

impl<S> Layer<S> for ReplayBodyLayer {
    type Service = WithReplayBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithReplayBody { inner }
    }
}

/// The service of [`ReplayBodyLayer`]: turns `Request<B>` into `Request<ReplayBody<B>>`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_retry::{ReplayBody, TryCloneBody, WithReplayBody};
/// use http::{Request, Response};
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
///
/// let echo = tower::service_fn(|req: Request<ReplayBody<String>>| async move {
///     // What arrives can be copied for another attempt.
///     assert!(req.body().try_clone_body().is_some());
///     let body = req.into_body().collect().await?.to_bytes();
///     Ok::<_, tower::BoxError>(Response::new(body))
/// });
/// let svc = WithReplayBody::new(echo);
///
/// let res = svc.oneshot(Request::new(String::from("hello"))).await.unwrap();
/// assert_eq!(res.body(), "hello");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WithReplayBody<S> {
    inner: S,
}

impl<S> WithReplayBody<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        WithReplayBody { inner }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for WithReplayBody<S>
where
    S: Service<Request<ReplayBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.inner.call(req.map(ReplayBody::new))
    }
}
