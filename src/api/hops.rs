//! [`HopLimit`]: redirect hops to the API's origin pay for their place like any request.

use crate::stats::Recorder;
use crate::Body;
use bytes::Bytes;
use calm_client::redirect::RedirectHop;
use calm_client::shared::add_default_headers;
use calm_ratelimit::hints::OtherOrigin;
use calm_ratelimit::RateLimit;
use http::header::HeaderMap;
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
/// origins (a presigned download URL) go straight to the transport. What comes back is
/// calm's: a [`Body`] and a `BoxError`.
#[derive(Clone, Debug)]
pub(crate) struct HopLimit<S> {
    inner: S,
    // NOTE: the session's default headers are added here, below the redirect follower and
    // the retry layer, so neither copies them into its spare request on every call.
    defaults: Arc<HeaderMap>,
    // NOTE: behind an `Arc`, so the per-request clone of this service (the redirect follower
    // clones it) does not clone a second transport; only a hop clones it.
    limited: Option<Arc<RateLimit<S>>>,
    recorder: Arc<Recorder>,
}

impl<S> HopLimit<S> {
    pub(crate) fn new(
        inner: S,
        defaults: Arc<HeaderMap>,
        limited: Option<RateLimit<S>>,
        recorder: Arc<Recorder>,
    ) -> Self {
        HopLimit {
            inner,
            defaults,
            limited: limited.map(Arc::new),
            recorder,
        }
    }
}

impl<S, R> Service<Request<Body>> for HopLimit<S>
where
    S: Service<Request<Body>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    RateLimit<S>: Service<Request<Body>, Response = Response<R>, Error = BoxError>,
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    // NOTE: a paced hop is boxed: it holds a whole request and a transport, and inline it
    // would grow the future of every request, hop or not, that the stack moves around.
    type Future = HopFuture<S::Future, Pin<Box<Oneshot<RateLimit<S>, Request<Body>>>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let hop = req.extensions().get::<RedirectHop>().copied();
        // NOTE: once a request left its origin, the policy keeps credentials from every later
        // hop, so no default credential may be added back here either.
        let credentials = hop.is_none_or(|hop| !hop.has_left_origin());
        if let Err(error) = add_default_headers(req.headers_mut(), &self.defaults, credentials) {
            return HopFuture::Failed {
                error: Some(error.into()),
            };
        }
        let Some(hop) = hop else {
            return HopFuture::Direct {
                future: self.inner.call(req),
                other_origin: false,
            };
        };
        self.recorder.redirect();
        match &self.limited {
            Some(limited) if hop.is_same_origin() => HopFuture::Paced {
                future: Box::pin(RateLimit::clone(limited).oneshot(req)),
            },
            _ => HopFuture::Direct {
                future: self.inner.call(req),
                other_origin: !hop.is_same_origin(),
            },
        }
    }
}

pin_project! {
    /// A hop sent straight to the transport, or through the rate limiter; or a request whose
    /// default headers could not be added.
    #[project = HopProj]
    pub(crate) enum HopFuture<D, P> {
        Direct { #[pin] future: D, other_origin: bool },
        Paced { #[pin] future: P },
        Failed { error: Option<BoxError> },
    }
}

// NOTE: the transport's body and errors are turned into calm's here rather than by `MapResponse`
// and `MapErr` layers, whose futures would wrap every request's and move every response twice
// more.
impl<D, P, R, E> Future for HopFuture<D, P>
where
    D: Future<Output = Result<Response<R>, E>>,
    E: Into<BoxError>,
    P: Future<Output = Result<Response<R>, BoxError>>,
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = match self.project() {
            HopProj::Direct {
                future,
                other_origin,
            } => {
                let mut result = ready!(future.poll(cx)).map_err(Into::into);
                if let (Ok(response), true) = (&mut result, *other_origin) {
                    // NOTE: another server's Retry-After or quota headers say nothing about
                    // the API's quota: the rate limiter above must not read them.
                    response.extensions_mut().insert(OtherOrigin);
                }
                result
            }
            HopProj::Paced { future } => ready!(future.poll(cx)),
            HopProj::Failed { error } => Err(error
                .take()
                .unwrap_or_else(|| "HopFuture polled after completion".into())),
        };
        Poll::Ready(result.map(|response| response.map(Body::from_response)))
    }
}
