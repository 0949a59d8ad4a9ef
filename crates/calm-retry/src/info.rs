//! [`RetryInfo`]: what the retry layer did for one request.

use std::{fmt, time::Duration};

use http::StatusCode;
use tokio::time::Instant;

/// What [`Retry`](crate::Retry) did for one request: how many attempts it made, the reason
/// and wait of each retry, and why it stopped.
///
/// Every response that went through the layer carries one in its
/// [extensions](http::Response::extensions) — the first-try success included. When the final
/// outcome is an error, [`RetryError::info`](crate::error::RetryError::info) has it.
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
    /// policy's wall clock when it has none), so the instant is on tokio's clock like every
    /// other time here.
    pub fn retry_after(&self) -> Option<Instant> {
        self.retry_after
    }

    /// The sum of all waits between attempts.
    pub fn total_wait(&self) -> Duration {
        self.retries.iter().map(|r| r.wait).sum()
    }

    pub(crate) fn count_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    pub(crate) fn push(&mut self, record: RetryRecord) {
        self.retries.push(record);
    }

    pub(crate) fn stop(&mut self, reason: StopReason) {
        self.stop = reason;
    }

    pub(crate) fn set_retry_after(&mut self, at: Option<Instant>) {
        self.retry_after = at;
    }
}

/// One retry: why it happened and how long the layer waited before it.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitSource {
    /// The policy's [`Backoff`](crate::Backoff).
    Backoff,
    /// The response's `Retry-After` header, which replaces the backoff for that retry.
    RetryAfter,
}

/// Why the layer stopped and returned the outcome it had.
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
    /// The inner service failed in `poll_ready` before a retry; such errors end the request.
    NotReady,
}

impl StopReason {
    /// The instant carried by [`RetryAfterTooLong`](Self::RetryAfterTooLong) and
    /// [`DeadlineExceeded`](Self::DeadlineExceeded).
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
