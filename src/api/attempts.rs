//! [`CountAttempts`]: every attempt below the retry layer, counted for the client's
//! statistics and for the request's time limit.

use super::future::AttemptCount;
use crate::stats::Recorder;
use crate::Body;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower::{BoxError, Service};

/// Counts each attempt as it starts (in the request's [`AttemptCount`], when it has one) and
/// records it with its status once it ends, a timed-out attempt included (this layer sits
/// above the per-attempt timeout).
#[derive(Clone, Debug)]
pub(crate) struct CountAttempts<S> {
    inner: S,
    recorder: Arc<Recorder>,
}

impl<S> CountAttempts<S> {
    pub(crate) fn new(inner: S, recorder: Arc<Recorder>) -> Self {
        CountAttempts { inner, recorder }
    }
}

impl<S> Service<Request<Body>> for CountAttempts<S>
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
            recorder: Arc::clone(&self.recorder),
        }
    }
}

pin_project! {
    /// One attempt, recorded when it ends.
    pub(crate) struct AttemptFuture<F> {
        #[pin]
        inner: F,
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
        let result = ready!(this.inner.poll(cx));
        this.recorder
            .attempt(result.as_ref().ok().map(Response::status));
        Poll::Ready(result)
    }
}
