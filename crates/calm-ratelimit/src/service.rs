//! [`RateLimit`]: the service.

use std::mem;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::error::{BoxError, MaxWaitExceeded};
use crate::future::{Observer, ResponseFuture};
use crate::layer::Config;
use crate::limiter::Waiter;
use crate::{Limiter, Quota, RateLimitLayer};

/// Paces requests through a shared [`Limiter`]; built by [`RateLimitLayer`].
///
/// # Readiness
///
/// `poll_ready` reserves the caller's place (at its first call), sleeps until it, then polls
/// the inner service's readiness; `call` forwards. The place is held by this instance from
/// `poll_ready` until `call`: dropping the instance before its place has come gives the place
/// back. So every attempt driven through it pays for a place, whether driven by `oneshot`,
/// `ready().await` + `call`, a `tower::buffer::Buffer` or a retry layer outside it.
///
/// # Clone
///
/// Clones share the limiter and start holding no place.
///
/// # Errors
///
/// Errors are [`BoxError`]s: the inner service's, or [`MaxWaitExceeded`] (returned by the
/// response future, so a `Buffer` in front survives it) when `max_wait` is set and the place is
/// too far away.
///
/// # Panics
///
/// `call` panics if `poll_ready` did not return `Ready(Ok(()))` before it, as tower's
/// contract requires.
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
    config: Config,
    waiter: Waiter,
    state: State,
}

#[derive(Debug)]
enum State {
    /// No place taken yet.
    Idle,
    /// The place has come; waiting for (or holding) the inner service's readiness.
    Admitted,
    /// The place was too far away; `call` answers with this error.
    Refused(MaxWaitExceeded),
}

impl<S> RateLimit<S> {
    /// Wraps `inner` with a limiter of its own enforcing `quota` and default settings.
    /// Prefer [`RateLimitLayer`], whose clones share one limiter.
    pub fn new(inner: S, quota: Quota) -> RateLimit<S> {
        tower_layer::Layer::layer(&RateLimitLayer::new(quota), inner)
    }

    pub(crate) fn from_parts(inner: S, limiter: Limiter, config: Config) -> RateLimit<S> {
        RateLimit {
            inner,
            limiter,
            config,
            waiter: Waiter::default(),
            state: State::Idle,
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

    /// The inner service; a place held is given back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Quota, RateLimit};
    /// use tokio::time::timeout;
    /// use tower::{Service, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let mut svc = RateLimit::new(backend, Quota::per_second(NonZeroU32::new(1).unwrap()));
    /// let limiter = svc.limiter().clone();
    /// svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
    ///
    /// // `poll_ready` reserves the next place (at 1 s) and the service holds it...
    /// assert!(timeout(Duration::from_millis(10), svc.ready()).await.is_err());
    /// assert_eq!(limiter.snapshot().queued, 1);
    /// // ...until it is unwrapped.
    /// let _backend = svc.into_inner();
    /// assert_eq!(limiter.snapshot().queued, 0);
    /// # }
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit::from_parts(self.inner.clone(), self.limiter.clone(), self.config)
    }
}

impl<S, B, R> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if let State::Idle = self.state {
            self.state =
                match ready!(self
                    .waiter
                    .poll_acquire(&self.limiter, self.config.max_wait, cx))
                {
                    Ok(()) => State::Admitted,
                    Err(refused) => State::Refused(refused),
                };
        }
        match self.state {
            State::Refused(_) => Poll::Ready(Ok(())),
            _ => self.inner.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match mem::replace(&mut self.state, State::Idle) {
            State::Admitted => {
                let observer = self.config.server_hints.then(|| Observer {
                    limiter: self.limiter.clone(),
                    max_pause: self.config.max_pause,
                    clock: self.config.clock,
                });
                ResponseFuture::called(self.inner.call(req), observer)
            }
            State::Refused(refused) => ResponseFuture::refused(refused),
            State::Idle => panic!("RateLimit::call before poll_ready returned Ready(Ok(()))"),
        }
    }
}
