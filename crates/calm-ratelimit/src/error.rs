//! Errors of the rate limit layer.
//!
//! At the [`Service`](tower_service::Service) boundary every error is a [`BoxError`]; the
//! limiter's own error, [`MaxWaitExceeded`], can be recovered with `downcast_ref`, which tells
//! it apart from the inner service's errors.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The error type at the service boundary (the same alias as `tower::BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The place a request could get is further away than its bound: the layer's `max_wait`, or
/// the request's own [`MaxWait`](crate::MaxWait), whichever ends first.
///
/// The request was not sent and its reservation was released, so no capacity is lost.
/// [`available_at`](Self::available_at) tells when it could have gone. When a server pause is
/// what put the place out of reach (the pause ends after the bound),
/// [`paused_until`](Self::paused_until) names the end of the pause, and the message says so.
/// A caller already waiting when such a pause begins fails at once, not when its bound runs
/// out.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::{error::MaxWaitExceeded, Quota, RateLimitLayer};
/// use tower::{Layer, Service, ServiceExt};
///
/// let layer = RateLimitLayer::new(Quota::per_minute(NonZeroU32::new(1).unwrap()))
///     .max_wait(Duration::from_secs(5));
/// # let backend = tower::service_fn(|_req: http::Request<()>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// # });
/// let mut svc = layer.layer(backend);
///
/// svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
/// let err = svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap_err();
/// let err = err.downcast_ref::<MaxWaitExceeded>().unwrap();
/// assert!(err.wait() > Duration::from_secs(59));
/// assert_eq!(err.available_at(), err.asked_at() + err.wait());
/// assert_eq!(err.max_wait(), Duration::from_secs(5));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxWaitExceeded {
    available_at: Instant,
    asked_at: Instant,
    max_wait: Duration,
    paused_until: Option<Instant>,
}

impl MaxWaitExceeded {
    pub(crate) fn new(available_at: Instant, asked_at: Instant, max_wait: Duration) -> Self {
        MaxWaitExceeded {
            available_at,
            asked_at,
            max_wait,
            paused_until: None,
        }
    }

    pub(crate) fn paused_until_at(mut self, paused_until: Option<Instant>) -> Self {
        self.paused_until = paused_until;
        self
    }

    /// The end of the server pause that put the place out of reach, if a pause did.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::num::NonZeroU32;
    /// use std::time::Duration;
    /// use calm_ratelimit::{Limiter, Quota};
    /// use tokio::time::Instant;
    ///
    /// let limiter = Limiter::new(Quota::per_second(NonZeroU32::new(10).unwrap()));
    /// let until = Instant::now() + Duration::from_secs(30);
    /// limiter.pause_until(until); // what a `Retry-After: 30` does
    /// let err = limiter.try_acquire().unwrap_err();
    /// assert!(err.is_paused());
    /// assert_eq!(err.paused_until(), Some(until));
    /// assert!(err.to_string().contains("the server paused requests"));
    /// # }
    /// ```
    #[must_use]
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Whether a server pause put the place out of reach; see
    /// [`paused_until`](Self::paused_until).
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// The earliest instant the request could have been sent.
    #[must_use]
    pub fn available_at(&self) -> Instant {
        self.available_at
    }

    /// When the request asked for its place.
    #[must_use]
    pub fn asked_at(&self) -> Instant {
        self.asked_at
    }

    /// How long the request would have waited, counted from when it asked.
    #[must_use]
    pub fn wait(&self) -> Duration {
        self.available_at.saturating_duration_since(self.asked_at)
    }

    /// The bound it exceeded: the layer's `max_wait`, or the time from asking to the
    /// request's [`MaxWait`](crate::MaxWait) deadline when that ends first.
    #[must_use]
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

impl fmt::Display for MaxWaitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.paused_until {
            Some(end) => write!(
                f,
                "rate limit: the server paused requests until {:?} after this one asked; its \
                 place is {:?} away, more than max_wait ({:?})",
                end.saturating_duration_since(self.asked_at),
                self.wait(),
                self.max_wait
            ),
            None => write!(
                f,
                "rate limit: the next place is {:?} away, more than max_wait ({:?})",
                self.wait(),
                self.max_wait
            ),
        }
    }
}

impl std::error::Error for MaxWaitExceeded {}

/// The limiter's shared state is out of reach and its policy is to fail closed: the request
/// was not sent.
///
/// Only a backend that keeps its state in a shared store (such as calm-ratelimit-redis)
/// returns it, and only when told to fail closed rather than fall back to pacing in this
/// process. [`source`](Error::source) is the store's own error.
///
/// A retry layer outside should not retry it (calm's `Client` does not): failing closed is
/// meant to fail now, and the store's refused connection in the source chain is not the
/// API's. With calm-retry, say so with `RetryPolicy::retryable_error` and `connect_error`.
///
/// # Examples
///
/// ```
/// use std::error::Error as _;
/// use calm_ratelimit::error::Unavailable;
///
/// let err = Unavailable::new("connection refused");
/// assert!(err.to_string().contains("out of reach"));
/// assert_eq!(err.source().unwrap().to_string(), "connection refused");
/// ```
#[derive(Clone)]
pub struct Unavailable {
    source: Arc<dyn Error + Send + Sync>,
}

impl Unavailable {
    /// An error whose cause is `source`.
    pub fn new(source: impl Into<BoxError>) -> Unavailable {
        Unavailable {
            source: Arc::from(source.into()),
        }
    }
}

impl fmt::Debug for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unavailable")
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "rate limit: the shared limiter state is out of reach and the limiter fails closed",
        )
    }
}

impl Error for Unavailable {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// Two errors are equal when they share one cause (one outage seen by several callers).
impl PartialEq for Unavailable {
    fn eq(&self, other: &Unavailable) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
    }
}

impl Eq for Unavailable {}

/// Why a waiter did not get its place.
#[derive(Debug)]
pub(crate) enum Denied {
    MaxWait(MaxWaitExceeded),
    Unavailable(Unavailable),
}

impl From<MaxWaitExceeded> for Denied {
    fn from(e: MaxWaitExceeded) -> Denied {
        Denied::MaxWait(e)
    }
}

impl From<Denied> for BoxError {
    fn from(d: Denied) -> BoxError {
        match d {
            Denied::MaxWait(e) => e.into(),
            Denied::Unavailable(e) => e.into(),
        }
    }
}
