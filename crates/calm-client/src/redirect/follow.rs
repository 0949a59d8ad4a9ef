//! [`FollowRedirect`]: calm's redirect follower, the service of a
//! [`FollowRedirectLayer`](super::FollowRedirectLayer).
//
// NOTE: the rules are tower-http's `FollowRedirect` with calm's `RedirectPolicy` (method and
// body changes, `Location` resolved with the `url` crate, at most `max` hops, credentials
// dropped for good once a hop left the origin). It is our own so that a request that is not
// redirected, nearly every one, pays for less: tower-http also clones its policy into every
// call, keeps a hop's future inline in every request's, and puts a `RequestUri` into every
// response. As tower-http's, hops go through the very service that sent the request (a clone
// of it per hop), so a service that keeps state between calls sees them in order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use pin_project_lite::pin_project;
use tower::util::Oneshot;
use tower::BoxError;
use tower_service::Service;

use super::policy::{drop_credentials, same_origin};
use super::{MarkHopsFuture, RedirectHop};

/// Follows redirects as one request; made by [`FollowRedirectLayer`](super::FollowRedirectLayer).
///
/// The request body type must be `Default` (what a `303 See Other` sends) and the inner
/// service `Clone` (each hop is sent through a clone).
#[derive(Clone)]
pub struct FollowRedirect<S> {
    inner: S,
    max: usize,
}

impl<S> FollowRedirect<S> {
    pub(crate) fn new(inner: S, max: usize) -> Self {
        FollowRedirect { inner, max }
    }

    /// The most redirects followed in a row.
    #[must_use]
    pub fn max_redirects(&self) -> usize {
        self.max
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for FollowRedirect<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowRedirect")
            .field("inner", &self.inner)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> Service<Request<B>> for FollowRedirect<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: http_body::Body + Default,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.max == 0 {
            return ResponseFuture {
                state: State::First {
                    future: self.inner.call(req),
                },
                chain: None,
            };
        }
        let method = req.method().clone();
        let uri = req.uri().clone();
        let version = req.version();
        let headers = req.headers().clone();
        // NOTE: only an empty body can be sent again (as tower-http's default policy); a 303,
        // or a POST moved by a 301 or 302, sends none anyway.
        let body = (req.body().size_hint().exact() == Some(0)).then(B::default);
        // NOTE: the ready service sends the request, then moves into the future, where each
        // hop goes through a clone of it; the clone left behind is not ready yet.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let future = service.call(req);
        ResponseFuture {
            state: State::First { future },
            chain: Some(Chain {
                method,
                uri,
                version,
                headers,
                body,
                left: self.max,
                hop: 0,
                origin: None,
                left_origin: false,
                service,
            }),
        }
    }
}

/// What a request keeps to follow a redirect; each hop goes through a clone of `service`.
struct Chain<S, B> {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    /// The body a hop sends; `None` when the request's own could not be sent again.
    body: Option<B>,
    /// Redirects still allowed.
    left: usize,
    hop: u32,
    /// The original request's URI, kept from the first redirect on (boxed: most requests are
    /// not redirected, and the chain is inline in every request's future).
    origin: Option<Box<Uri>>,
    left_origin: bool,
    service: S,
}

impl<S, B: Default> Chain<S, B> {
    /// The request to send after `res`, if it is a redirect this chain follows.
    fn next<R>(&mut self, res: &Response<R>) -> Option<Request<B>> {
        match res.status() {
            // NOTE: user agents may change a POST to a GET (RFC 9110, 15.4.2 and 15.4.3).
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND if self.method == Method::POST => {
                self.method = Method::GET;
                self.body = Some(B::default());
                drop_payload_headers(&mut self.headers);
            }
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => {}
            StatusCode::SEE_OTHER => {
                if self.method != Method::HEAD {
                    self.method = Method::GET;
                }
                self.body = Some(B::default());
                drop_payload_headers(&mut self.headers);
            }
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {}
            _ => return None,
        }
        let body = self.body.take()?;
        let location = res.headers().get(LOCATION)?.to_str().ok()?;
        let location = resolve(location, &self.uri)?;
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.hop += 1;
        let origin = self
            .origin
            .get_or_insert_with(|| Box::new(self.uri.clone()));
        let same_origin_as_first = same_origin(origin, &location);
        self.left_origin |= !same_origin(&self.uri, &location);
        self.uri = location;
        self.body = Some(B::default());

        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req.extensions_mut().insert(RedirectHop {
            hop: self.hop,
            same_origin: same_origin_as_first,
            left_origin: self.left_origin,
        });
        if self.left_origin {
            // NOTE: for the rest of the chain, a hop back to the origin included.
            drop_credentials(req.headers_mut());
        }
        Some(req)
    }
}

fn drop_payload_headers(headers: &mut HeaderMap) {
    for name in [
        CONTENT_TYPE,
        CONTENT_LENGTH,
        CONTENT_ENCODING,
        TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
}

/// `location` resolved against `base` (RFC 3986 reference resolution).
fn resolve(location: &str, base: &Uri) -> Option<Uri> {
    let base = url::Url::parse(&base.to_string()).ok()?;
    let resolved = base.join(location).ok()?;
    Uri::try_from(String::from(resolved)).ok()
}

pin_project! {
    /// The future of [`FollowRedirect`] over the service `S`.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
        chain: Option<Chain<S, B>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // NOTE: the request itself goes to `S` straight: only a hop's outcome is marked, and
        // a wrapper around every request's future would move every response once more.
        First {
            #[pin]
            future: S::Future,
        },
        // NOTE: boxed: only a redirect gets here, and inline it would grow every request's
        // future by a whole request and a service.
        Hop {
            future: Pin<Box<MarkHopsFuture<Oneshot<S, Request<B>>>>>,
        },
    }
}

impl<S, B, R> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: Default,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let res = match this.state.as_mut().project() {
                StateProj::First { future } => ready!(future.poll(cx)).map_err(Into::into)?,
                StateProj::Hop { future } => ready!(future.as_mut().poll(cx))?,
            };
            let Some(chain) = this.chain.as_mut() else {
                return Poll::Ready(Ok(res));
            };
            let Some(req) = chain.next(&res) else {
                return Poll::Ready(Ok(res));
            };
            let hop = MarkHopsFuture::new(Oneshot::new(chain.service.clone(), req), chain.hop);
            this.state.set(State::Hop {
                future: Box::pin(hop),
            });
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hop = self.chain.as_ref().map_or(0, |chain| chain.hop);
        f.debug_struct("ResponseFuture")
            .field("hop", &hop)
            .finish_non_exhaustive()
    }
}
