//! Redirects: followed as one request, every hop marked.
//!
//! [`FollowRedirectLayer`] follows redirects with the rules of tower-http's
//! [`FollowRedirect`](tower_http::follow_redirect::FollowRedirect) and calm's
//! [`RedirectPolicy`]: at most `max` redirects in a row; a `303`, or a `POST` answered `301`
//! or `302`, is followed with a `GET` and no body; a request whose body is not empty is not
//! sent again by a `307` or `308`; and from the first hop that leaves the origin on,
//! `Authorization`, `Cookie`, `Proxy-Authorization` and every header marked sensitive are
//! dropped (for the rest of the chain, not only that hop). It is calm's own [`FollowRedirect`]
//! rather than tower-http's, so that a request that is not redirected costs little: it
//! keeps the request's head and the service that sent it, and builds (and boxes) a hop's
//! future only when there is a hop. (For tower-http's follower, [`RedirectPolicy`] is its
//! policy.)
//!
//! Every follow-up request carries a [`RedirectHop`] in its extensions (which hop, and whether
//! it goes to the original request's origin), so a layer *below* the redirect follower can
//! treat hops differently: calm's `Client` makes every hop to the API's origin take its place
//! in the rate limiter, and lets a hop to another origin (a presigned download URL) go
//! without spending the API's quota.
//!
//! What comes back from a hop is marked for the retry layer above ("sent means sent"): a
//! response with [`calm_retry::follow_up::FollowUp`], an error wrapped in a
//! [`calm_retry::follow_up::FollowUpError`]. Once a hop went out, the original request was
//! sent: a connect error or a 429 of a later hop never makes a `POST` look unsent.
//!
//! # Order
//!
//! Put the layer *below* the retry layer, so the retry layer sees a redirect chain as one
//! request, and *above* whatever each hop must pass through (a rate limiter).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use calm_client::redirect::{FollowRedirectLayer, RedirectHop};
//! use calm_retry::follow_up::FollowUp;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Empty;
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # let backend = tower::service_fn(|req: Request<Empty<Bytes>>| async move {
//! #     let mut res = Response::new(());
//! #     if req.uri().path() == "/old" {
//! #         *res.status_mut() = StatusCode::SEE_OTHER;
//! #         res.headers_mut().insert("location", "/new".parse().unwrap());
//! #     }
//! #     assert_eq!(req.extensions().get::<RedirectHop>().is_some(), req.uri().path() == "/new");
//! #     Ok::<_, std::convert::Infallible>(res)
//! # });
//! // `backend` answers `/old` with `303 See Other` to `/new`.
//! let svc = ServiceBuilder::new()
//!     .layer(FollowRedirectLayer::new(10))
//!     .service(backend);
//! let req = Request::get("http://api.example.com/old").body(Empty::new()).unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.extensions().get::<FollowUp>().map(FollowUp::hop), Some(1));
//! # }
//! ```

mod follow;
mod policy;

pub use self::follow::{FollowRedirect, ResponseFuture as FollowRedirectFuture};
pub use self::policy::{is_credential, RedirectPolicy};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use calm_retry::follow_up::{is_follow_up, FollowUp, FollowUpError};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::BoxError;
use tower_layer::Layer;
use tower_service::Service;

/// A follow-up request's mark (in its extensions): which redirect hop it is.
///
/// ```
/// use calm_client::redirect::RedirectHop;
///
/// let req = http::Request::new(());
/// assert!(req.extensions().get::<RedirectHop>().is_none()); // not a hop
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RedirectHop {
    pub(crate) hop: u32,
    pub(crate) same_origin: bool,
    pub(crate) left_origin: bool,
}

impl RedirectHop {
    /// Which hop: 1 for the request sent after the first redirect.
    #[must_use]
    pub fn hop(&self) -> u32 {
        self.hop
    }

    /// Whether the hop goes to the origin (scheme, host, port) of the original request.
    #[must_use]
    pub fn is_same_origin(&self) -> bool {
        self.same_origin
    }

    /// Whether this hop or an earlier one of the same request left the previous hop's
    /// origin. From then on the policy sends no credentials for the rest of the request (a
    /// later hop back to the original origin included), and neither may a layer below add any.
    #[must_use]
    pub fn has_left_origin(&self) -> bool {
        self.left_origin
    }
}

/// Follows redirects with the rules of calm's [`RedirectPolicy`]; see the [module docs](self).
///
/// The request body type must be `Default` (what a `303 See Other` sends) and the inner
/// service `Clone` (each hop is sent through a clone).
///
/// ```
/// use calm_client::redirect::FollowRedirectLayer;
///
/// let layer = FollowRedirectLayer::new(10);
/// assert_eq!(layer.max_redirects(), 10);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct FollowRedirectLayer {
    max: usize,
}

impl FollowRedirectLayer {
    /// Follows at most `max` redirects in a row; `0` returns every redirect as it is.
    pub fn new(max: usize) -> FollowRedirectLayer {
        FollowRedirectLayer { max }
    }

    /// The most redirects followed in a row.
    #[must_use]
    pub fn max_redirects(&self) -> usize {
        self.max
    }
}

impl<S: Clone> Layer<S> for FollowRedirectLayer {
    type Service = FollowRedirect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FollowRedirect::new(inner, self.max)
    }
}

/// Marks what comes back from a follow-up request (one carrying a [`RedirectHop`]) for the
/// retry layer: a response with [`FollowUp`], an error wrapped in a [`FollowUpError`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_client::redirect::MarkHops;
/// use tower::ServiceExt;
///
/// # let backend = tower::service_fn(|_req: http::Request<()>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// # });
/// // Not a hop: nothing is marked.
/// let res = MarkHops::new(backend).oneshot(http::Request::new(())).await.unwrap();
/// assert!(res.extensions().is_empty());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MarkHops<S> {
    inner: S,
}

impl<S> MarkHops<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> MarkHops<S> {
        MarkHops { inner }
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

impl<S, B, R> Service<Request<B>> for MarkHops<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = MarkHopsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let hop = req.extensions().get::<RedirectHop>().map(RedirectHop::hop);
        MarkHopsFuture {
            inner: self.inner.call(req),
            hop,
        }
    }
}

impl<F> MarkHopsFuture<F> {
    /// Marks what `inner`, the future of hop number `hop`, comes back with.
    pub(crate) fn new(inner: F, hop: u32) -> Self {
        MarkHopsFuture {
            inner,
            hop: Some(hop),
        }
    }
}

pin_project! {
    /// The response future of [`MarkHops`], and of each hop a [`FollowRedirect`] sends.
    #[must_use = "futures do nothing unless polled"]
    pub struct MarkHopsFuture<F> {
        #[pin]
        inner: F,
        hop: Option<u32>,
    }
}

impl<F, R, E> Future for MarkHopsFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(hop) = *this.hop else {
            return Poll::Ready(result.map_err(Into::into));
        };
        Poll::Ready(match result {
            Ok(mut res) => {
                res.extensions_mut().insert(FollowUp::new(hop));
                Ok(res)
            }
            Err(err) => {
                let err: BoxError = err.into();
                // NOTE: calm's transport marks its own hop errors already.
                if is_follow_up(&*err) {
                    Err(err)
                } else {
                    Err(Box::new(FollowUpError::new(hop, err)) as BoxError)
                }
            }
        })
    }
}

impl<F> fmt::Debug for MarkHopsFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarkHopsFuture")
            .field("hop", &self.hop)
            .finish_non_exhaustive()
    }
}
