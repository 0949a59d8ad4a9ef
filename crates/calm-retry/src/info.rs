//! [`RetryInfo`]: what the retry layer did for one request.

use std::{fmt, time::Duration};

use http::StatusCode;
use tokio::time::Instant;

/// What [`Retry`](crate::Retry) did for one request: how many attempts it made, the reason
/// and wait of each retry, and why it stopped.
///
/// Every response that went through the layer carries one in its
/// [extensions](http::Response::extensions) — the first-try success included. When the final
/// outcome is an error of the inner service,
/// [`RetryError::info`](crate::error::RetryError::info) has it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy, StopReason};
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt};
///
/// let backend = tower::service_fn(|_req: Request<String>| async {
///     Ok::<_, tower::BoxError>(Response::new(String::from("hello")))
/// });
/// let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
///
/// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
/// let info = res.extensions().get::<RetryInfo>().unwrap();
/// assert_eq!(info.attempts(), 1);
/// assert!(info.retries().is_empty());
/// assert_eq!(info.stop_reason(), &StopReason::Succeeded);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryInfo {
    attempts: u32,
    retries: Vec<RetryRecord>,
    stop: StopReason,
    retry_after: Option<Instant>,
}

impl Default for RetryInfo {
    fn default() -> Self {
        RetryInfo {
            attempts: 0,
            retries: Vec::new(),
            stop: StopReason::NotRetryable,
            retry_after: None,
        }
    }
}

impl RetryInfo {
    /// How many times the request was sent to the inner service (first try included).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// One record per retry, in order: why it happened and how long the layer waited first.
    pub fn retries(&self) -> &[RetryRecord] {
        &self.retries
    }

    /// Why the layer returned this outcome instead of trying again.
    pub fn stop_reason(&self) -> &StopReason {
        &self.stop
    }

    /// The instant named by the `Retry-After` header of the last response, if it had a valid
    /// one (and [`respect_retry_after`](crate::RetryPolicy::respect_retry_after) is on),
    /// whether or not the layer waited for it.
    ///
    /// An HTTP-date is turned into an instant relative to the response's `Date` header (or the
    /// policy's wall clock when it has no valid one), so the instant is on tokio's clock like every
    /// other time here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy};
    /// use http::{Request, Response, StatusCode};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// # let calls = Arc::new(AtomicU32::new(0));
    /// # let backend = tower::service_fn(move |_req: Request<String>| {
    /// #     let n = calls.fetch_add(1, Ordering::SeqCst);
    /// #     async move {
    /// #         let mut res = Response::new(String::new());
    /// #         if n == 0 {
    /// #             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #             res.headers_mut().insert("retry-after", "2".parse().unwrap());
    /// #         } else {
    /// #             res.headers_mut().insert("retry-after", "60".parse().unwrap());
    /// #         }
    /// #         Ok::<_, tower::BoxError>(res)
    /// #     }
    /// # });
    /// // `backend` answers 503 with `Retry-After: 2`, then 200 with `Retry-After: 60`.
    /// let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
    ///
    /// let start = Instant::now();
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(res.status(), StatusCode::OK);
    /// // The hint of the last response (the 200), from when it arrived 2 s in.
    /// assert_eq!(info.retry_after(), Some(start + Duration::from_secs(2 + 60)));
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Instant> {
        self.retry_after
    }

    /// The sum of all waits between attempts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// # let calls = Arc::new(AtomicU32::new(0));
    /// # let backend = tower::service_fn(move |_req: Request<String>| {
    /// #     let n = calls.fetch_add(1, Ordering::SeqCst);
    /// #     async move {
    /// #         let mut res = Response::new(String::new());
    /// #         if n < 3 {
    /// #             *res.status_mut() = StatusCode::BAD_GATEWAY;
    /// #         }
    /// #         Ok::<_, tower::BoxError>(res)
    /// #     }
    /// # });
    /// // `backend` answers 502 three times, then 200.
    /// let backoff = Backoff::urllib3(1.0); // 0 s, 2 s, 4 s
    /// let svc = RetryLayer::new(RetryPolicy::default().backoff(backoff)).unwrap().layer(backend);
    ///
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(info.attempts(), 4);
    /// assert_eq!(info.total_wait(), Duration::from_secs(6));
    /// # }
    /// ```
    pub fn total_wait(&self) -> Duration {
        self.retries.iter().map(|r| r.wait).sum()
    }

    pub(crate) fn count_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    pub(crate) fn push(&mut self, record: RetryRecord) {
        self.retries.push(record);
    }

    /// Forgets the last planned retry: it was not made after all.
    pub(crate) fn unplan_last(&mut self) {
        self.retries.pop();
    }

    pub(crate) fn stop(&mut self, reason: StopReason) {
        self.stop = reason;
    }

    pub(crate) fn set_retry_after(&mut self, at: Option<Instant>) {
        self.retry_after = at;
    }
}

/// One retry: why it happened and how long the layer waited before it.
///
/// [`RetryInfo::retries`] lists them in order.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, RetryReason, WaitSource};
/// use http::{Request, Response, StatusCode};
/// use tower::{Layer, ServiceExt};
///
/// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// # let calls = Arc::new(AtomicU32::new(0));
/// # let backend = tower::service_fn(move |_req: Request<String>| {
/// #     let n = calls.fetch_add(1, Ordering::SeqCst);
/// #     async move {
/// #         let mut res = Response::new(String::new());
/// #         match n {
/// #             0 => {
/// #                 *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
/// #                 res.headers_mut().insert("retry-after", "5".parse().unwrap());
/// #             }
/// #             1 => *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
/// #             _ => {}
/// #         }
/// #         Ok::<_, tower::BoxError>(res)
/// #     }
/// # });
/// // `backend` answers 429 with `Retry-After: 5`, then 503, then 200.
/// let policy = RetryPolicy::default().backoff(Backoff::constant(Duration::from_secs(1)));
/// let svc = RetryLayer::new(policy).unwrap().layer(backend);
///
/// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
/// let info = res.extensions().get::<RetryInfo>().unwrap();
/// let [first, second] = info.retries() else { panic!("two retries") };
/// assert_eq!(first.reason(), RetryReason::Status(StatusCode::TOO_MANY_REQUESTS));
/// assert_eq!(first.wait(), Duration::from_secs(5));
/// assert_eq!(first.wait_source(), WaitSource::RetryAfter);
/// assert_eq!(second.reason(), RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE));
/// assert_eq!(second.wait(), Duration::from_secs(1));
/// assert_eq!(second.wait_source(), WaitSource::Backoff);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRecord {
    reason: RetryReason,
    wait: Duration,
    source: WaitSource,
}

impl RetryRecord {
    pub(crate) fn new(reason: RetryReason, wait: Duration, source: WaitSource) -> Self {
        RetryRecord {
            reason,
            wait,
            source,
        }
    }

    /// What the previous attempt ended with.
    pub fn reason(&self) -> RetryReason {
        self.reason
    }

    /// How long the layer waited before sending the retry.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Where the wait came from: the backoff schedule or the server's `Retry-After`.
    pub fn wait_source(&self) -> WaitSource {
        self.source
    }
}

/// Why a retry happened.
///
/// See [`RetryRecord`] for an example; its `Display` is short, for logs.
///
/// # Examples
///
/// ```
/// use calm_retry::RetryReason;
/// use http::StatusCode;
///
/// assert_eq!(RetryReason::Status(StatusCode::BAD_GATEWAY).to_string(), "status 502");
/// assert_eq!(RetryReason::Connect.to_string(), "connect error");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// The response had a status in the policy's retry set.
    Status(StatusCode),
    /// The connection could not be made, so the request was never sent.
    Connect,
    /// The inner service failed with another (transport) error.
    Error,
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryReason::Status(status) => write!(f, "status {}", status.as_u16()),
            RetryReason::Connect => f.write_str("connect error"),
            RetryReason::Error => f.write_str("transport error"),
        }
    }
}

/// Where the wait before a retry came from.
///
/// # Examples
///
/// `Retry-After: 0` is the server saying "now": the retry goes at once, and the record says
/// the server chose it (see [`RetryRecord`] for both sources side by side).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy, WaitSource};
/// use http::{Request, Response, StatusCode};
/// use tower::{Layer, ServiceExt};
///
/// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// # let calls = Arc::new(AtomicU32::new(0));
/// # let backend = tower::service_fn(move |_req: Request<String>| {
/// #     let n = calls.fetch_add(1, Ordering::SeqCst);
/// #     async move {
/// #         let mut res = Response::new(String::new());
/// #         if n == 0 {
/// #             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
/// #             res.headers_mut().insert("retry-after", "0".parse().unwrap());
/// #         }
/// #         Ok::<_, tower::BoxError>(res)
/// #     }
/// # });
/// // `backend` answers 503 with `Retry-After: 0`, then 200.
/// let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
///
/// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
/// let retry = res.extensions().get::<RetryInfo>().unwrap().retries()[0];
/// assert_eq!(retry.wait(), Duration::ZERO);
/// assert_eq!(retry.wait_source(), WaitSource::RetryAfter);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitSource {
    /// The policy's [`Backoff`](crate::Backoff).
    Backoff,
    /// The response's `Retry-After` header, which replaces the backoff for that retry.
    RetryAfter,
}

impl fmt::Display for WaitSource {
    /// `backoff` or `retry-after`, as spans and logs show it.
    ///
    /// ```
    /// assert_eq!(calm_retry::WaitSource::RetryAfter.to_string(), "retry-after");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitSource::Backoff => "backoff",
            WaitSource::RetryAfter => "retry-after",
        })
    }
}

/// Why the layer stopped and returned the outcome it had:
/// [`RetryInfo::stop_reason`].
///
/// # Examples
///
/// ```
/// use calm_retry::StopReason;
/// use tokio::time::Instant;
///
/// let at = Instant::now();
/// assert_eq!(StopReason::RetryAfterTooLong { retry_at: at }.retry_at(), Some(at));
/// assert_eq!(StopReason::AttemptsExhausted.retry_at(), None);
/// // `Display` is short, for logs.
/// assert_eq!(StopReason::BudgetExhausted.to_string(), "retry budget exhausted");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last outcome is a response whose status is not in the retry set: a success, or a
    /// final answer such as `404`.
    Succeeded,
    /// The last outcome could have been retried, but not for this request: the method is not
    /// idempotent (and neither a 429, a connect error nor an `Idempotency-Key` made it safe),
    /// or the error is one the policy does not retry.
    NotRetryable,
    /// `max_retries` retries were made already.
    AttemptsExhausted,
    /// The shared retry budget had nothing left.
    BudgetExhausted,
    /// The response's `Retry-After` named a wait longer than `max_retry_after`: the layer did
    /// not sleep on it. `retry_at` is the instant the server named.
    RetryAfterTooLong {
        /// When the server said the request may be retried.
        retry_at: Instant,
    },
    /// The next attempt would have started after the request's deadline: the layer did not
    /// wait for it. `retry_at` is when that attempt would have started (the server's
    /// `Retry-After` instant when it named one).
    DeadlineExceeded {
        /// When the next attempt would have started.
        retry_at: Instant,
    },
    /// The request body could not be replayed: a [`ReplayBody`](crate::ReplayBody) went past
    /// its cap, or the body type could not be cloned.
    BodyNotReplayable,
    /// The inner service failed in `poll_ready`, before the first attempt or a retry; such
    /// errors end the request.
    NotReady,
}

impl StopReason {
    /// The instant carried by [`RetryAfterTooLong`](Self::RetryAfterTooLong) and
    /// [`DeadlineExceeded`](Self::DeadlineExceeded); see the type's example.
    pub fn retry_at(&self) -> Option<Instant> {
        match self {
            StopReason::RetryAfterTooLong { retry_at }
            | StopReason::DeadlineExceeded { retry_at } => Some(*retry_at),
            _ => None,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Succeeded => f.write_str("final response"),
            StopReason::NotRetryable => f.write_str("not retryable"),
            StopReason::AttemptsExhausted => f.write_str("attempts exhausted"),
            StopReason::BudgetExhausted => f.write_str("retry budget exhausted"),
            StopReason::RetryAfterTooLong { .. } => f.write_str("Retry-After above the cap"),
            StopReason::DeadlineExceeded { .. } => f.write_str("next attempt past the deadline"),
            StopReason::BodyNotReplayable => f.write_str("request body not replayable"),
            StopReason::NotReady => f.write_str("inner service failed to become ready"),
        }
    }
}
