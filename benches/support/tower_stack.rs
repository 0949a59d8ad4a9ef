//! The stack one would assemble from ecosystem parts for the concerns calm's layers own, so
//! the benches can put calm next to it: tower-http's `SetRequestHeader` (a default
//! `User-Agent`) → a base-URL rewrite (`map_request`) → `tower::retry::Retry` (a 503 retried
//! at once, up to 3 times, cloning every request) → a governor `RateLimiter::direct` awaited
//! with `until_ready()` in a ten-line service → tower's `ConcurrencyLimit`.
//!
//! `tower_stack` is the core (retry, rate limit, concurrency limit); `tower_full_stack` adds
//! the default header and the base URL, which calm's `SharedClientLayer` owns.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use governor::{DefaultDirectRateLimiter, RateLimiter};
use http::header::{HeaderValue, USER_AGENT};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response, StatusCode};
use tower::limit::ConcurrencyLimit;
use tower::retry::{Policy, Retry};
use tower::{Service, ServiceBuilder};
use tower_http::set_header::{SetRequestHeader, SetRequestHeaderLayer};

/// Requests in flight the baseline's `ConcurrencyLimit` allows: never reached by the benches.
const MAX_IN_FLIGHT: usize = 1024;

/// The baseline's retry policy: a 503 is retried at once, up to 3 times.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry503 {
    left: u32,
}

impl<B: Clone, Res, E> Policy<Request<B>, Response<Res>, E> for Retry503 {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _req: &mut Request<B>,
        result: &mut Result<Response<Res>, E>,
    ) -> Option<Self::Future> {
        match result {
            Ok(response)
                if response.status() == StatusCode::SERVICE_UNAVAILABLE && self.left > 0 =>
            {
                self.left -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        Some(req.clone())
    }
}

/// The baseline's rate limiter: a governor `RateLimiter` awaited before each call, as one
/// would write it in a few lines.
#[derive(Clone)]
pub(crate) struct Governed<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl<S, Req> Service<Req> for Governed<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = Arc::clone(&self.limiter);
        Box::pin(async move {
            limiter.until_ready().await;
            inner.call(req).await
        })
    }
}

/// Retry → governor → concurrency limit over `inner`.
pub(crate) type TowerStack<S> = Retry<Retry503, Governed<ConcurrencyLimit<S>>>;

/// `TowerStack` with a default `User-Agent` and requests resolved against a base URL.
pub(crate) type TowerFullStack<S> = SetRequestHeader<WithBase<TowerStack<S>>, HeaderValue>;

/// Resolves a request's path against a base URL's scheme and authority (what
/// `SharedClientLayer` does, minus its checks), as a `map_request` closure would.
#[derive(Clone)]
pub(crate) struct WithBase<S> {
    inner: S,
    scheme: Scheme,
    authority: Authority,
}

impl<S, B> Service<Request<B>> for WithBase<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build();
        if let Ok(uri) = uri {
            *request.uri_mut() = uri;
        }
        self.inner.call(request)
    }
}

/// The core of the baseline over `inner`, with a governor quota of `per_second`.
pub(crate) fn tower_stack<S>(inner: S, per_second: NonZeroU32) -> TowerStack<S> {
    let limiter = RateLimiter::direct(governor::Quota::per_second(per_second));
    let governed = Governed {
        inner: ConcurrencyLimit::new(inner, MAX_IN_FLIGHT),
        limiter: Arc::new(limiter),
    };
    Retry::new(Retry503 { left: 3 }, governed)
}

/// The whole baseline over `inner`: `tower_stack` plus a default header and `base`.
pub(crate) fn tower_full_stack<S>(
    inner: S,
    per_second: NonZeroU32,
    base: &Uri,
) -> TowerFullStack<S> {
    let with_base = WithBase {
        inner: tower_stack(inner, per_second),
        scheme: base.scheme().cloned().expect("an absolute base URL"),
        authority: base.authority().cloned().expect("an absolute base URL"),
    };
    ServiceBuilder::new()
        .layer(SetRequestHeaderLayer::if_not_present(
            USER_AGENT,
            HeaderValue::from_static("baseline/0.1"),
        ))
        .service(with_base)
}
