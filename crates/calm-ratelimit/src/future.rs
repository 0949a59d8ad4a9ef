//! [`ResponseFuture`]: the future of [`RateLimit`](crate::RateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::Response;
use pin_project_lite::pin_project;

use crate::error::{BoxError, MaxWaitExceeded};
use crate::hints::WallClock;
use crate::Limiter;

pin_project! {
    /// The response of the inner service, whose quota hints are read on the way out; or the
    /// [`MaxWaitExceeded`] error.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            future: F,
            observer: Option<Observer>,
        },
        Refused {
            error: Option<MaxWaitExceeded>,
        },
    }
}

/// Reads hints from a response into the limiter.
#[derive(Debug)]
pub(crate) struct Observer {
    pub(crate) limiter: Limiter,
    pub(crate) max_pause: Duration,
    pub(crate) clock: WallClock,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn called(future: F, observer: Option<Observer>) -> Self {
        ResponseFuture {
            kind: Kind::Called { future, observer },
        }
    }

    pub(crate) fn refused(error: MaxWaitExceeded) -> Self {
        ResponseFuture {
            kind: Kind::Refused { error: Some(error) },
        }
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future, observer } => {
                let result = ready!(future.poll(cx));
                if let (Ok(response), Some(o)) = (&result, observer.take()) {
                    o.limiter
                        .observe(response.status(), response.headers(), &o.clock, o.max_pause);
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Refused { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error.into())),
                None => panic!("ResponseFuture polled after completion"),
            },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
