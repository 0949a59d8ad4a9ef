//! [`HopLimit`]: redirect hops to the API's origin pay for their place like any request.

use crate::stats::Recorder;
use crate::Body;
use calm_client::redirect::RedirectHop;
use calm_ratelimit::hints::OtherOrigin;
use calm_ratelimit::RateLimit;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower::util::{Oneshot, ServiceExt};
use tower::{BoxError, Service};

/// Below the redirect follower: a follow-up request to the API's origin goes through the
/// rate limiter (its readiness driven in the response future, as the hop is only known at
/// `call`); the original request (paced above the redirect follower) and hops to other
/// origins (a presigned download URL) go straight to the transport.
#[derive(Clone, Debug)]
pub(crate) struct HopLimit<S> {
    inner: S,
    // NOTE: behind an `Arc`, so the per-request clone of this service (the redirect follower
    // clones it) does not clone a second transport; only a hop clones it.
    limited: Option<Arc<RateLimit<S>>>,
    recorder: Arc<Recorder>,
}

impl<S> HopLimit<S> {
    pub(crate) fn new(inner: S, limited: Option<RateLimit<S>>, recorder: Arc<Recorder>) -> Self {
        HopLimit {
            inner,
            limited: limited.map(Arc::new),
            recorder,
        }
    }
}

impl<S, R> Service<Request<Body>> for HopLimit<S>
where
    S: Service<Request<Body>, Response = Response<R>, Error = BoxError> + Clone,
    RateLimit<S>: Service<Request<Body>, Response = Response<R>, Error = BoxError>,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = HopFuture<S::Future, Oneshot<RateLimit<S>, Request<Body>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let Some(&hop) = req.extensions().get::<RedirectHop>() else {
            return HopFuture::Direct {
                future: self.inner.call(req),
                other_origin: false,
            };
        };
        self.recorder.redirect();
        match &self.limited {
            Some(limited) if hop.is_same_origin() => HopFuture::Paced {
                future: RateLimit::clone(limited).oneshot(req),
            },
            _ => HopFuture::Direct {
                future: self.inner.call(req),
                other_origin: !hop.is_same_origin(),
            },
        }
    }
}

pin_project! {
    /// A hop sent straight to the transport, or through the rate limiter.
    #[project = HopProj]
    pub(crate) enum HopFuture<D, P> {
        Direct { #[pin] future: D, other_origin: bool },
        Paced { #[pin] future: P },
    }
}

impl<D, P, R> Future for HopFuture<D, P>
where
    D: Future<Output = Result<Response<R>, BoxError>>,
    P: Future<Output = Result<Response<R>, BoxError>>,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            HopProj::Direct {
                future,
                other_origin,
            } => {
                let mut result = ready!(future.poll(cx));
                if let (Ok(response), true) = (&mut result, *other_origin) {
                    // NOTE: another server's Retry-After or quota headers say nothing about
                    // the API's quota: the rate limiter above must not read them.
                    response.extensions_mut().insert(OtherOrigin);
                }
                Poll::Ready(result)
            }
            HopProj::Paced { future } => future.poll(cx),
        }
    }
}
