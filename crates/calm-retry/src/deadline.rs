//! [`Deadline`]: one request's deadline as an instant, set by the code that sends it.

use tokio::time::Instant;

/// No retry of this request starts after this instant (in the request's extensions).
///
/// [`RetryPolicy::deadline`](crate::RetryPolicy::deadline) is a duration measured from the
/// moment the request reaches the retry layer. A caller that already spent part of its time
/// budget (waiting for a rate limiter, say) and wants the retry layer to give up at the very
/// instant its own timer fires puts a `Deadline` in the request instead. When both are set,
/// the earlier one applies. A retry whose wait would end after the deadline is not begun, and
/// neither is one that could not *start* before it (an inner service still not ready when it
/// passes): the last outcome is returned with [`StopReason::DeadlineExceeded`].
///
/// [`StopReason::DeadlineExceeded`]: crate::StopReason::DeadlineExceeded
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use calm_retry::{Backoff, Deadline, RetryInfo, RetryLayer, RetryPolicy, StopReason};
/// use http::{Request, Response, StatusCode};
/// use tokio::time::Instant;
/// use tower::{Layer, ServiceExt};
///
/// # let backend = tower::service_fn(|_req: Request<String>| async {
/// #     let mut res = Response::new(String::new());
/// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
/// #     Ok::<_, tower::BoxError>(res)
/// # });
/// // `backend` always answers 503; retries wait 2 s each.
/// let policy = RetryPolicy::default().backoff(Backoff::constant(Duration::from_secs(2)));
/// let svc = RetryLayer::new(policy).unwrap().layer(backend);
///
/// let start = Instant::now();
/// let mut req = Request::new(String::new());
/// req.extensions_mut().insert(Deadline::at(start + Duration::from_secs(3)));
/// let res = svc.oneshot(req).await.unwrap();
/// let info = res.extensions().get::<RetryInfo>().unwrap();
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(info.attempts(), 2);
/// assert!(matches!(info.stop_reason(), StopReason::DeadlineExceeded { .. }));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline at `instant`.
    #[must_use]
    pub const fn at(instant: Instant) -> Deadline {
        Deadline(instant)
    }

    /// The instant after which no retry starts.
    #[must_use]
    pub const fn instant(&self) -> Instant {
        self.0
    }
}
