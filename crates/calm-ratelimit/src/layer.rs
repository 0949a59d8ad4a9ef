//! [`RateLimitLayer`]: configuration of the rate limit middleware.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::hints::WallClock;
use crate::{Limiter, Quota, RateLimit};

/// How long a server hint may pause every caller, unless set with
/// [`RateLimitLayer::max_pause`]: one minute.
///
/// The same bound as calm-retry's default `max_retry_after`, the longest `Retry-After` the
/// retry layer sleeps on: past a minute the caller should decide, not a sleeping task. A
/// longer hint still pauses the limiter for this long, and the retry layer hands the response
/// back to the caller.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(calm_ratelimit::DEFAULT_MAX_PAUSE, Duration::from_secs(60));
/// ```
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(60);

/// Paces requests through a shared [`Limiter`] and listens to the server's quota hints.
///
/// Every service this layer builds, and every clone of those, shares the layer's limiter.
///
/// # Defaults
///
/// No `max_wait` (callers wait as long as their place takes), server hints **off**, pauses
/// capped at [`DEFAULT_MAX_PAUSE`], the system wall clock.
///
/// # Server hints
///
/// For calls to an upstream API, turn hints on with
/// [`server_hints(true)`](Self::server_hints) (calm's `Client` does): a 429 with
/// `Retry-After`, or quota headers saying nothing remains, then pause every caller of the
/// limiter. They are off by default because a layer in front of your own routes would
/// otherwise pause itself on your own handlers' answers: one handler's
/// `503` + `Retry-After: 5` would make every route wait five seconds.
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
    // NOTE: shared with every service the layer makes, which every request's stack copies.
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_wait: Option<Duration>,
    pub(crate) server_hints: bool,
    pub(crate) max_pause: Duration,
    pub(crate) clock: WallClock,
    pub(crate) host: Option<Arc<str>>,
    /// `host` without its port: the `server.address` of the layer's metrics, made once.
    pub(crate) address: Option<Arc<str>>,
}

impl RateLimitLayer {
    /// A layer with a limiter of its own enforcing `quota`.
    pub fn new(quota: Quota) -> RateLimitLayer {
        RateLimitLayer::from_limiter(Limiter::new(quota))
    }

    /// A layer over an existing limiter, so several stacks share one budget.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Limiter, Quota, RateLimitLayer};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// // One account, two hosts of the same API: one budget of 1 request per second.
    /// let account = Limiter::new(Quota::per_second(NonZeroU32::new(1).unwrap()));
    /// let eu = RateLimitLayer::from_limiter(account.clone()).layer(backend.clone());
    /// let us = RateLimitLayer::from_limiter(account.clone()).layer(backend);
    ///
    /// let start = Instant::now();
    /// eu.oneshot(http::Request::new(())).await.unwrap();
    /// us.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn from_limiter(limiter: Limiter) -> RateLimitLayer {
        RateLimitLayer {
            limiter,
            config: Arc::new(Config {
                max_wait: None,
                server_hints: false,
                max_pause: DEFAULT_MAX_PAUSE,
                clock: WallClock::system(),
                host: None,
                address: None,
            }),
        }
    }

    /// Fails a request at once, with [`MaxWaitExceeded`](crate::error::MaxWaitExceeded), when
    /// its place is further away than `max_wait` (also when a server pause later pushes it
    /// there). Its place is given back. `Duration::ZERO` never waits.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{error::MaxWaitExceeded, Quota, RateLimitLayer};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(1).unwrap()))
    ///     .max_wait(Duration::ZERO);
    /// let svc = layer.layer(backend);
    ///
    /// let start = Instant::now();
    /// svc.clone().oneshot(http::Request::new(())).await.unwrap();
    /// let err = svc.oneshot(http::Request::new(())).await.unwrap_err();
    /// assert!(err.is::<MaxWaitExceeded>());
    /// assert_eq!(start.elapsed(), Duration::ZERO); // refused at once, not after a wait
    /// assert_eq!(layer.limiter().snapshot().rejected, 1);
    /// # }
    /// ```
    pub fn max_wait(mut self, max_wait: Duration) -> RateLimitLayer {
        Arc::make_mut(&mut self.config).max_wait = Some(max_wait);
        self
    }

    /// Reads quota hints from responses and pauses every caller when the server says its quota
    /// is spent (default: **off**). See [`hints`](crate::hints).
    ///
    /// Turn it on for calls to an upstream API (calm's `Client` does). Leave it off when the
    /// layer guards a *server* (an axum `Router`, say): the responses it sees are then your
    /// own handlers', and a handler answering 429 or 503 with `Retry-After` would pause every
    /// inbound request. A pause is logged at WARN with the [`host`](Self::host), the pause
    /// and the header that caused it, and counted in
    /// [`Snapshot::pauses`](crate::Snapshot::pauses).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Quota, RateLimitLayer};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     let mut res = http::Response::new(());
    /// #     *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    /// #     res.headers_mut().insert("retry-after", http::HeaderValue::from_static("30"));
    /// #     Ok::<_, std::convert::Infallible>(res)
    /// # });
    /// // `backend` answers 429 with `Retry-After: 30`.
    /// let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    /// let listening = RateLimitLayer::new(quota).server_hints(true);
    /// let deaf = RateLimitLayer::new(quota); // the default
    ///
    /// let start = Instant::now();
    /// listening.layer(backend.clone()).oneshot(http::Request::new(())).await.unwrap();
    /// deaf.layer(backend).oneshot(http::Request::new(())).await.unwrap();
    /// let paused = start + Duration::from_secs(30);
    /// assert_eq!(listening.limiter().snapshot().paused_until, Some(paused));
    /// assert_eq!(deaf.limiter().snapshot().paused_until, None);
    /// # }
    /// ```
    pub fn server_hints(mut self, enabled: bool) -> RateLimitLayer {
        Arc::make_mut(&mut self.config).server_hints = enabled;
        self
    }

    /// The longest pause a server hint may impose (default [`DEFAULT_MAX_PAUSE`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Quota, RateLimitLayer};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     let mut res = http::Response::new(());
    /// #     *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    /// #     res.headers_mut().insert("retry-after", http::HeaderValue::from_static("3600"));
    /// #     Ok::<_, std::convert::Infallible>(res)
    /// # });
    /// // `backend` answers 429 with `Retry-After: 3600`.
    /// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()))
    ///     .server_hints(true)
    ///     .max_pause(Duration::from_secs(10));
    ///
    /// let start = Instant::now();
    /// layer.layer(backend).oneshot(http::Request::new(())).await.unwrap();
    /// let snapshot = layer.limiter().snapshot();
    /// assert_eq!(snapshot.paused_until, Some(start + Duration::from_secs(10)));
    /// # }
    /// ```
    pub fn max_pause(mut self, max_pause: Duration) -> RateLimitLayer {
        Arc::make_mut(&mut self.config).max_pause = max_pause;
        self
    }

    /// The wall clock HTTP-dates and epoch resets are read against (default: the system's).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Quota, RateLimitLayer, WallClock};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     let mut res = http::Response::new(());
    /// #     *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    /// #     let date = http::HeaderValue::from_static("Tue, 14 Nov 2023 22:13:50 GMT");
    /// #     res.headers_mut().insert("retry-after", date);
    /// #     Ok::<_, std::convert::Infallible>(res)
    /// # });
    /// // `backend` answers 429 with `Retry-After: Tue, 14 Nov 2023 22:13:50 GMT`.
    /// let now = httpdate::parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT").unwrap();
    /// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()))
    ///     .server_hints(true)
    ///     .wall_clock(WallClock::starting_at(now));
    ///
    /// let start = Instant::now();
    /// layer.layer(backend).oneshot(http::Request::new(())).await.unwrap();
    /// let snapshot = layer.limiter().snapshot();
    /// assert_eq!(snapshot.paused_until, Some(start + Duration::from_secs(30)));
    /// # }
    /// ```
    pub fn wall_clock(mut self, clock: WallClock) -> RateLimitLayer {
        Arc::make_mut(&mut self.config).clock = clock;
        self
    }

    /// The host named when a server hint pauses the limiter (a WARN event's `host` field):
    /// say the API's authority, `api.example.com`. Userinfo, a path or a query given here are
    /// dropped.
    ///
    /// Without it, and with hints on, each request keeps its own URI's authority (or `Host`
    /// header) until its response is read: a reference-counted clone, which may allocate.
    /// Setting the host keeps that path allocation-free. Neither is read with hints off.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{Quota, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()))
    ///     .server_hints(true)
    ///     .host("api.example.com");
    /// assert_eq!(layer.host_name(), Some("api.example.com"));
    /// let layer = layer.host("user:secret@api.example.com:8443/v1?key=x");
    /// assert_eq!(layer.host_name(), Some("api.example.com:8443"));
    /// ```
    pub fn host(mut self, host: impl AsRef<str>) -> RateLimitLayer {
        let host = bare_host(host.as_ref());
        let config = Arc::make_mut(&mut self.config);
        config.host = Some(Arc::from(host));
        config.address = Some(Arc::from(host_only(host)));
        self
    }

    /// The host set with [`host`](Self::host), as it is logged.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{Quota, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// assert_eq!(layer.host_name(), None);
    /// ```
    #[must_use]
    pub fn host_name(&self) -> Option<&str> {
        self.config.host.as_deref()
    }

    /// The shared limiter: every service this layer builds uses it.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use calm_ratelimit::{Quota, RateLimitLayer};
    /// use tower::Layer;
    ///
    /// # let backend = tower::service_fn(|_req: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let layer = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// let svc = layer.layer(backend);
    /// assert!(svc.limiter().ptr_eq(layer.limiter()));
    /// assert!(layer.clone().limiter().ptr_eq(layer.limiter()));
    /// ```
    #[must_use]
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit::from_parts(inner, self.limiter.clone(), Arc::clone(&self.config))
    }
}

/// `host[:port]` without its port, as OpenTelemetry's `server.address` (and the retry layer's
/// metric label) has it.
pub(crate) fn host_only(host_port: &str) -> String {
    match host_port.parse::<http::uri::Authority>() {
        Ok(authority) => authority.host().to_owned(),
        Err(_) => host_port.to_owned(),
    }
}

/// `text` without a scheme, userinfo, path, query or fragment: what may be logged as a host.
pub(crate) fn bare_host(text: &str) -> &str {
    let text = text.split_once("://").map_or(text, |(_, rest)| rest);
    let text = text.split(['/', '?', '#']).next().unwrap_or_default();
    text.rsplit_once('@').map_or(text, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::bare_host;

    #[test]
    fn bare_hosts_drop_everything_but_host_and_port() {
        assert_eq!(bare_host("api.example.com"), "api.example.com");
        assert_eq!(
            bare_host("https://u:p@h.example:8443/x?q=1#f"),
            "h.example:8443"
        );
        assert_eq!(bare_host("a@b@c"), "c");
        assert_eq!(bare_host("h?token=1"), "h");
        assert_eq!(bare_host(""), "");
    }
}
