//! [`RateLimit`]: the service.

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower_service::Service;

use crate::error::BoxError;
use crate::future::{log_refusal, Ask, Host, Observer, ResponseFuture, Waiting};
use crate::layer::Config;
use crate::limiter::Waiter;
use crate::max_wait::{self, MaxWait};
use crate::metrics::Address;
use crate::{Limiter, Quota, RateLimitLayer};

/// Paces requests through a shared [`Limiter`]; built by [`RateLimitLayer`].
///
/// # Readiness
///
/// **A place is spent only when the request can go.** `poll_ready` is the inner service's
/// readiness, nothing more: no place is taken while the inner service is not ready (a
/// `ConcurrencyLimit` below, a busy pool, a `Buffer`). `call` then reserves the request's
/// place, first come first served. A place free at once goes straight to the inner service.
/// Otherwise the response future keeps the ready inner service (a clone is left in its place,
/// so the inner must be `Clone`), sleeps until the place, and polls the inner service's
/// readiness *again*: if it is still ready the request goes at that very instant; if it
/// became not ready meanwhile, that place is spent (it lies in the past, and is not given
/// back), the future waits for the inner service to be ready again, and only then reserves a
/// new place. So at the inner service, whatever its readiness does, every request arrives at
/// the instant of a place of its own, and no window ever holds more than the quotas allow
/// (see [`Quota`]'s guarantee), bursts included.
///
/// Dropping the response future before its place has come gives the place back. Every
/// attempt driven through the service pays for a place, whether driven by `oneshot`,
/// `ready().await` + `call`, a `tower::buffer::Buffer` or a retry layer outside it; and since
/// the place is reserved by `call`, a request's own bound ([`MaxWait`] in its extensions) is
/// honoured together with the layer's `max_wait`.
///
/// # Clone
///
/// Clones share the limiter. A place belongs to a response future, never to the service.
///
/// # Errors
///
/// Errors are [`BoxError`]s: the inner service's, or
/// [`MaxWaitExceeded`](crate::error::MaxWaitExceeded) (returned by the response future, so a
/// `Buffer` in front survives it) when the place is further away than the layer's `max_wait`
/// or the request's [`MaxWait`]; or [`Unavailable`](crate::error::Unavailable) from a
/// backend whose shared store is out of reach and that is told to fail closed.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::{Quota, RateLimit};
/// use tokio::time::Instant;
/// use tower::{Service, ServiceExt};
///
/// # let backend = tower::service_fn(|_req: http::Request<()>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// # });
/// let mut svc = RateLimit::new(backend, Quota::per_second(NonZeroU32::new(4).unwrap()));
/// let start = Instant::now();
/// for _ in 0..3 {
///     svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
/// }
/// assert_eq!(start.elapsed(), Duration::from_millis(500));
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Limiter,
    // NOTE: behind an `Arc`, as every request's stack holds copies of this service.
    config: Arc<Config>,
}

impl<S> RateLimit<S> {
    /// Wraps `inner` with a limiter of its own enforcing `quota` and default settings.
    /// Prefer [`RateLimitLayer`], whose clones share one limiter.
    pub fn new(inner: S, quota: Quota) -> RateLimit<S> {
        tower_layer::Layer::layer(&RateLimitLayer::new(quota), inner)
    }

    pub(crate) fn from_parts(inner: S, limiter: Limiter, config: Arc<Config>) -> RateLimit<S> {
        RateLimit {
            inner,
            limiter,
            config,
        }
    }

    /// The shared limiter; clones of this service share it.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{Quota, RateLimit};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let svc = RateLimit::new(backend, Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// assert!(svc.clone().limiter().ptr_eq(svc.limiter()));
    /// ```
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{Quota, RateLimit};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let svc = RateLimit::new(backend, Quota::per_second(NonZeroU32::new(1).unwrap()));
    /// let _backend = svc.into_inner();
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

// NOTE: a struct literal, not `from_parts`: the inner clone is built in place rather than
// passed by value and moved (every request clones the stack below the retry layer).
impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S, B, R> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_bound = req.extensions().get::<MaxWait>();
        // NOTE: the clock is read only for a bounded request.
        let bound = (self.config.max_wait.is_some() || request_bound.is_some())
            .then(|| max_wait::bound(Instant::now(), self.config.max_wait, request_bound))
            .flatten();
        let observer = self.config.server_hints.then(|| Observer {
            limiter: self.limiter.clone(),
            max_pause: self.config.max_pause,
            clock: self.config.clock,
            host: Host::of(self.config.host.as_ref(), &req),
        });
        let address = Address::of(self.config.address.as_ref(), &req);
        let mut waiter = Waiter::default();
        // NOTE: the noop waker is replaced by the task's at the future's first poll.
        match waiter.reserve(&self.limiter, bound, Waker::noop()) {
            Ok(true) => {
                address.waited(Duration::ZERO);
                ResponseFuture::called(self.inner.call(req), observer)
            }
            Ok(false) => {
                let ask = Ask {
                    bound,
                    at: bound.map_or_else(Instant::now, |b| b.asked_at),
                    queued: address.queued(),
                };
                let clone = self.inner.clone();
                let inner = mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(Waiting::new(
                    waiter,
                    inner,
                    req,
                    self.limiter.clone(),
                    observer,
                    ask,
                ))
            }
            Err(refused) => {
                let host = Host::of(self.config.host.as_ref(), &req);
                log_refusal(&refused, &host, &address);
                ResponseFuture::refused(refused)
            }
        }
    }
}
