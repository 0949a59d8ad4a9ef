//! [`Attempts`]: one attempt below the retry layer — counted, limited in time, recorded.

use super::future::AttemptCount;
use crate::stats::Recorder;
use crate::Body;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{sleep, Sleep};
use tower::timeout::error::Elapsed;
use tower::{BoxError, Service};

/// Counts each attempt as it starts (in the request's [`AttemptCount`], when it has one),
/// cuts it with tower's [`Elapsed`] when it outlasts the client's `attempt_timeout` (to the
/// response head, like tower's `Timeout`), and records it with its status once it ended, a
/// timed-out attempt included.
// NOTE: one layer rather than `MapRequest`, `Timeout` (behind an `Either`, as it is optional)
// and `MapResult`: each wrapper's future would wrap every request's and move every response
// once more.
#[derive(Clone, Debug)]
pub(crate) struct Attempts<S> {
    inner: S,
    timeout: Option<Duration>,
    recorder: Arc<Recorder>,
}

impl<S> Attempts<S> {
    pub(crate) fn new(inner: S, timeout: Option<Duration>, recorder: Arc<Recorder>) -> Self {
        Attempts {
            inner,
            timeout,
            recorder,
        }
    }
}

impl<S> Service<Request<Body>> for Attempts<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = AttemptFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if let Some(count) = request.extensions().get::<AttemptCount>() {
            count.add_one();
        }
        AttemptFuture {
            inner: self.inner.call(request),
            sleep: self.timeout.map(sleep),
            recorder: Arc::clone(&self.recorder),
        }
    }
}

pin_project! {
    /// One attempt, recorded when it ends.
    pub(crate) struct AttemptFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        recorder: Arc<Recorder>,
    }
}

impl<F> Future for AttemptFuture<F>
where
    F: Future<Output = Result<Response<Body>, BoxError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
                Some(Poll::Ready(())) => Err(Elapsed::new().into()),
                Some(Poll::Pending) | None => return Poll::Pending,
            },
        };
        this.recorder
            .attempt(result.as_ref().ok().map(Response::status));
        Poll::Ready(result)
    }
}
