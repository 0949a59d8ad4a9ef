//! [`MaxWait`]: a bound on one request's wait, carried in its extensions.

use std::time::Duration;

use tokio::time::Instant;

use crate::limiter::Bound;

/// Bounds how long one request may wait for its place: a request extension that
/// [`RateLimit`](crate::RateLimit) honours in addition to the layer's
/// [`max_wait`](crate::RateLimitLayer::max_wait) (the earlier of the two ends the wait).
///
/// An outer layer that knows a request's deadline (a retry layer, a whole-call timeout) puts
/// it here, so a request whose place lies past the deadline fails at once with
/// [`MaxWaitExceeded`](crate::error::MaxWaitExceeded), naming when it could have gone,
/// instead of sleeping towards a place it cannot use. The wait is counted from `call`, when
/// the request asks for its place; a place free at once is never refused. The extension is
/// `Clone`, so it survives request cloning by a retry layer.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use calm_ratelimit::{error::MaxWaitExceeded, MaxWait, Quota, RateLimitLayer};
/// use tokio::time::Instant;
/// use tower::{Layer, ServiceExt};
///
/// # let backend = tower::service_fn(|_req: http::Request<()>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// # });
/// // One request per second; the layer lets callers wait as long as it takes.
/// let svc = RateLimitLayer::new(Quota::per_second(NonZeroU32::new(1).unwrap())).layer(backend);
/// let start = Instant::now();
/// svc.clone().oneshot(http::Request::new(())).await.unwrap();
///
/// // This request must go within 500 ms; its place is at 1 s.
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(MaxWait::until(start + Duration::from_millis(500)));
/// let err = svc.clone().oneshot(request).await.unwrap_err();
/// let err = err.downcast_ref::<MaxWaitExceeded>().unwrap();
/// assert_eq!(err.available_at(), start + Duration::from_secs(1));
/// assert_eq!(start.elapsed(), Duration::ZERO); // refused at once
///
/// // Bounds relative to the asking moment work the same way.
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(MaxWait::new(Duration::from_secs(2)));
/// svc.oneshot(request).await.unwrap();
/// assert_eq!(start.elapsed(), Duration::from_secs(1));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxWait(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    For(Duration),
    Until(Instant),
}

impl MaxWait {
    /// Waits at most `max_wait`, counted from when the request asks for its place.
    /// `Duration::ZERO` goes only if a place is free at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_ratelimit::MaxWait;
    ///
    /// let bound = MaxWait::new(Duration::from_secs(5));
    /// assert_eq!(bound.duration(), Some(Duration::from_secs(5)));
    /// assert_eq!(bound.deadline(), None);
    /// ```
    #[must_use]
    pub const fn new(max_wait: Duration) -> MaxWait {
        MaxWait(Kind::For(max_wait))
    }

    /// Goes no later than `deadline`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_ratelimit::MaxWait;
    /// use tokio::time::Instant;
    ///
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// assert_eq!(MaxWait::until(deadline).deadline(), Some(deadline));
    /// assert_eq!(MaxWait::until(deadline).duration(), None);
    /// # }
    /// ```
    #[must_use]
    pub const fn until(deadline: Instant) -> MaxWait {
        MaxWait(Kind::Until(deadline))
    }

    /// The bound as a duration, if built with [`MaxWait::new`].
    #[must_use]
    pub const fn duration(&self) -> Option<Duration> {
        match self.0 {
            Kind::For(d) => Some(d),
            Kind::Until(_) => None,
        }
    }

    /// The bound as an instant, if built with [`MaxWait::until`].
    #[must_use]
    pub const fn deadline(&self) -> Option<Instant> {
        match self.0 {
            Kind::For(_) => None,
            Kind::Until(at) => Some(at),
        }
    }

    fn deadline_from(&self, asked_at: Instant) -> Option<Instant> {
        match self.0 {
            Kind::For(d) => asked_at.checked_add(d),
            Kind::Until(at) => Some(at),
        }
    }
}

/// The bound of a request asking at `asked_at`: the earlier of the layer's `max_wait` and the
/// request's [`MaxWait`]. `None` when neither bounds it.
pub(crate) fn bound(
    asked_at: Instant,
    layer: Option<Duration>,
    request: Option<&MaxWait>,
) -> Option<Bound> {
    let layer = layer.and_then(|w| asked_at.checked_add(w));
    let request = request.and_then(|m| m.deadline_from(asked_at));
    let deadline = match (layer, request) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(Bound { asked_at, deadline })
}
