//! Errors of the rate limit layer.
//!
//! At the [`Service`](tower_service::Service) boundary every error is a [`BoxError`]; the
//! limiter's own error, [`MaxWaitExceeded`], can be recovered with `downcast_ref`, which tells
//! it apart from the inner service's errors.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The error type at the service boundary (the same alias as `tower::BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The place a request could get is further away than the configured `max_wait`.
///
/// The request was not sent and its reservation was released, so no capacity is lost.
/// [`available_at`](Self::available_at) tells when it could have gone.
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
}

impl MaxWaitExceeded {
    pub(crate) fn new(available_at: Instant, asked_at: Instant, max_wait: Duration) -> Self {
        MaxWaitExceeded {
            available_at,
            asked_at,
            max_wait,
        }
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

    /// The configured bound it exceeded.
    #[must_use]
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

impl fmt::Display for MaxWaitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limit: the next place is {:?} away, more than max_wait ({:?})",
            self.wait(),
            self.max_wait
        )
    }
}

impl std::error::Error for MaxWaitExceeded {}
