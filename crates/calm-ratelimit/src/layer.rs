//! [`RateLimitLayer`]: configuration of the rate limit middleware.

use std::time::Duration;

use tower_layer::Layer;

use crate::hints::WallClock;
use crate::{Limiter, Quota, RateLimit};

/// How long a server hint may pause every caller, unless set with
/// [`RateLimitLayer::max_pause`]: five minutes.
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(5 * 60);

/// Paces requests through a shared [`Limiter`] and listens to the server's quota hints.
///
/// Every service this layer builds, and every clone of those, shares the layer's limiter.
///
/// # Defaults
///
/// No `max_wait` (callers wait as long as their place takes), server hints on, pauses capped
/// at [`DEFAULT_MAX_PAUSE`], the system wall clock.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::{Quota, RateLimitLayer};
/// use tower::{Layer, ServiceExt};
///
/// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()))
///     .max_wait(Duration::from_secs(30))
///     .max_pause(Duration::from_secs(120));
/// # let backend = tower::service_fn(|_req: http::Request<()>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// # });
/// let svc = layer.layer(backend);
/// let response = svc.oneshot(http::Request::new(())).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RateLimitLayer {
    limiter: Limiter,
    config: Config,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) max_wait: Option<Duration>,
    pub(crate) server_hints: bool,
    pub(crate) max_pause: Duration,
    pub(crate) clock: WallClock,
}

impl RateLimitLayer {
    /// A layer with a limiter of its own enforcing `quota`.
    pub fn new(quota: Quota) -> RateLimitLayer {
        RateLimitLayer::from_limiter(Limiter::new(quota))
    }

    /// A layer over an existing limiter, so several stacks share one budget.
    pub fn from_limiter(limiter: Limiter) -> RateLimitLayer {
        RateLimitLayer {
            limiter,
            config: Config {
                max_wait: None,
                server_hints: true,
                max_pause: DEFAULT_MAX_PAUSE,
                clock: WallClock::system(),
            },
        }
    }

    /// Fails a request at once, with [`MaxWaitExceeded`](crate::error::MaxWaitExceeded), when
    /// its place is further away than `max_wait` (also when a server pause later pushes it
    /// there). Its place is given back. `Duration::ZERO` never waits.
    pub fn max_wait(mut self, max_wait: Duration) -> RateLimitLayer {
        self.config.max_wait = Some(max_wait);
        self
    }

    /// Reads quota hints from responses and pauses every caller when the server says its quota
    /// is spent (default: on). See [`hints`](crate::hints).
    ///
    /// Turn it off when the layer guards a *server* (an axum `Router`, say): the responses it
    /// sees are then your own handlers', and a handler answering 429 or 503 with `Retry-After`
    /// would pause every inbound request.
    pub fn server_hints(mut self, enabled: bool) -> RateLimitLayer {
        self.config.server_hints = enabled;
        self
    }

    /// The longest pause a server hint may impose (default [`DEFAULT_MAX_PAUSE`]).
    pub fn max_pause(mut self, max_pause: Duration) -> RateLimitLayer {
        self.config.max_pause = max_pause;
        self
    }

    /// The wall clock HTTP-dates and epoch resets are read against (default: the system's).
    pub fn wall_clock(mut self, clock: WallClock) -> RateLimitLayer {
        self.config.clock = clock;
        self
    }

    /// The shared limiter.
    #[must_use]
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit::from_parts(inner, self.limiter.clone(), self.config)
    }
}
