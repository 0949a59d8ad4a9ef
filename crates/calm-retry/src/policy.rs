//! [`RetryPolicy`]: what is retried, how often, and how long to wait.

use std::{error::Error as StdError, fmt, time::Duration, time::SystemTime};

use http::{header::HeaderName, Method, Request, StatusCode};
use tokio::time::Instant;

use crate::{
    backoff::Backoff,
    body::DEFAULT_MAX_REPLAY_BYTES,
    budget::RetryBudget,
    error::{self, ConfigError},
};

/// The `Idempotency-Key` request header (IETF draft): a POST or PATCH that carries it may be
/// retried.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The longest `Retry-After` the retry layer sleeps on unless set with
/// [`RetryPolicy::max_retry_after`]: one minute. calm's rate limiter caps a server pause at the
/// same default (`calm_ratelimit::DEFAULT_MAX_PAUSE`): past a minute the caller should decide,
/// not a sleeping task.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A test run on an error's source chain.
pub type ErrorPredicate = fn(&(dyn StdError + 'static)) -> bool;

/// Reads, from an inner service's error, that the attempt was refused before it started and
/// when it could have started; see [`RetryPolicy::refused_until`].
pub type RefusedUntil = fn(&(dyn StdError + 'static)) -> Option<Instant>;

/// What [`Retry`](crate::Retry) retries, how often, and how long it waits.
///
/// Build one from [`RetryPolicy::default()`] with the by-value setters below, then hand it to
/// [`RetryLayer::new`](crate::RetryLayer::new), which validates it. A policy placed in a
/// request's extensions replaces the layer's for that request.
///
/// # Which outcomes are retried
///
/// A response whose status is in the retry set, or an error of the inner service — and only
/// when it is safe:
///
/// | outcome | retried for |
/// |---|---|
/// | status in the set (default 429, 502, 503, 504) | idempotent methods (GET HEAD OPTIONS PUT DELETE TRACE) |
/// | 429 Too Many Requests (when in the set) | any method: the server refused it unprocessed |
/// | connect error (never sent; see [`connect_error`](Self::connect_error)) | any method |
/// | other error of the inner service (see [`retryable_error`](Self::retryable_error)) | idempotent methods |
///
/// A POST or PATCH carrying an `Idempotency-Key` header counts as idempotent (other methods
/// are not vouched for by the key);
/// [`retry_non_idempotent(true)`](Self::retry_non_idempotent) makes every method count.
///
/// # Defaults
///
/// | setting | default | why |
/// |---|---|---|
/// | [`max_retries`](Self::max_retries) | 3 | at most 4 attempts: recovers from blips without multiplying load |
/// | [`retry_on_status`](Self::retry_on_status) | 429, 502, 503, 504 | the statuses that mean "not now" rather than "no" |
/// | [`backoff`](Self::backoff) | [`Backoff::default()`]: exponential from 250 ms, ×2, max 30 s, full jitter | spreads retries of many clients apart |
/// | [`respect_retry_after`](Self::respect_retry_after) | `true` | the server knows best when it can serve again |
/// | [`max_retry_after`](Self::max_retry_after) | 60 s | past a minute the caller should decide, not a sleeping task |
/// | [`deadline`](Self::deadline) | none | per-attempt timeouts belong below the layer |
/// | [`retry_non_idempotent`](Self::retry_non_idempotent) | `false` | a retried POST may act twice |
/// | [`budget`](Self::budget) | the layer's own [`RetryBudget::default()`] | stops retry storms across clones |
/// | [`max_replay_bytes`](Self::max_replay_bytes) | 64 KiB | bounds the memory a streaming body may pin |
/// | [`connect_error`](Self::connect_error) | [`error::is_connection_refused`] | recognises hyper-util's and calm's refused connects |
/// | [`retryable_error`](Self::retryable_error) | [`error::any_error`] | every transport error is worth one more try |
/// | [`wall_clock`](Self::wall_clock) | [`SystemTime::now`] | only used for `Retry-After` dates when the response has no valid `Date` |
///
/// # Per-request policies
///
/// A `RetryPolicy` in a request's extensions replaces the layer's for that request, except
/// for the budget: unless it names its own ([`budget`](Self::budget)) or none
/// ([`no_budget`](Self::no_budget)), it draws from the layer's shared budget. It is
/// validated when the request arrives; an invalid one fails that request with
/// [`RetryErrorKind::InvalidPolicy`](crate::error::RetryErrorKind::InvalidPolicy) before
/// anything is sent.
///
/// # Examples
///
/// The urllib3 port of `Retry(total=3, backoff_factor=1, status_forcelist=[429, 503])`:
///
/// ```
/// use calm_retry::{Backoff, RetryLayer, RetryPolicy};
/// use http::StatusCode;
///
/// let policy = RetryPolicy::default()
///     .max_retries(3)
///     .backoff(Backoff::urllib3(1.0))
///     .retry_on_status([StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]);
/// let layer = RetryLayer::new(policy).expect("valid policy");
/// assert!(!layer.policy().retries_status(StatusCode::BAD_GATEWAY)); // the forcelist replaces
/// ```
///
/// Turning retries off for one request:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy};
/// use http::{Request, Response, StatusCode};
/// use tower::{Layer, ServiceExt};
///
/// # let backend = tower::service_fn(|_req: Request<String>| async {
/// #     let mut res = Response::new(String::new());
/// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
/// #     Ok::<_, tower::BoxError>(res)
/// # });
/// // `backend` always answers 503.
/// let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
///
/// let mut req = Request::get("/reports").body(String::new()).unwrap();
/// req.extensions_mut().insert(RetryPolicy::default().max_retries(0));
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) statuses: StatusSet,
    pub(crate) backoff: Backoff,
    pub(crate) respect_retry_after: bool,
    pub(crate) max_retry_after: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retry_non_idempotent: bool,
    pub(crate) budget: BudgetChoice,
    pub(crate) max_replay_bytes: usize,
    pub(crate) connect_error: ErrorPredicate,
    pub(crate) retryable_error: ErrorPredicate,
    pub(crate) refused_until: Option<RefusedUntil>,
    pub(crate) wall_clock: fn() -> SystemTime,
}

#[derive(Clone, Debug)]
pub(crate) enum BudgetChoice {
    /// The budget of the layer the request goes through.
    Layer,
    Disabled,
    Own(RetryBudget),
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            statuses: StatusSet::from_iter([
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::GATEWAY_TIMEOUT,
            ]),
            backoff: Backoff::default(),
            respect_retry_after: true,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            deadline: None,
            retry_non_idempotent: false,
            budget: BudgetChoice::Layer,
            max_replay_bytes: DEFAULT_MAX_REPLAY_BYTES,
            connect_error: error::is_connection_refused,
            retryable_error: error::any_error,
            refused_until: None,
            wall_clock: SystemTime::now,
        }
    }
}

impl RetryPolicy {
    /// At most this many retries (so `n + 1` attempts). `0` turns retries off.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, StopReason};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     let mut res = Response::new(String::new());
    /// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #     Ok::<_, tower::BoxError>(res)
    /// # });
    /// // `backend` always answers 503.
    /// let policy = RetryPolicy::default().max_retries(2).backoff(Backoff::none());
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(info.attempts(), 3);
    /// assert_eq!(info.stop_reason(), &StopReason::AttemptsExhausted);
    /// # }
    /// ```
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The response statuses worth retrying; replaces the default set.
    ///
    /// ```
    /// use calm_retry::RetryPolicy;
    /// use http::StatusCode;
    ///
    /// let policy = RetryPolicy::default().retry_on_status([StatusCode::INTERNAL_SERVER_ERROR]);
    /// assert!(policy.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
    /// assert!(!policy.retries_status(StatusCode::SERVICE_UNAVAILABLE)); // no longer in the set
    /// ```
    #[must_use]
    pub fn retry_on_status(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.statuses = StatusSet::from_iter(statuses);
        self
    }

    /// How long to wait before each retry when the server does not say.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, WaitSource};
    /// use http::{Request, Response, StatusCode};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     let mut res = Response::new(String::new());
    /// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #     Ok::<_, tower::BoxError>(res)
    /// # });
    /// // `backend` always answers 503, without `Retry-After`.
    /// let policy = RetryPolicy::default()
    ///     .max_retries(2)
    ///     .backoff(Backoff::constant(Duration::from_secs(1)));
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let start = Instant::now();
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// assert_eq!(info.total_wait(), Duration::from_secs(2));
    /// assert!(info.retries().iter().all(|r| r.wait_source() == WaitSource::Backoff));
    /// # }
    /// ```
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Whether a valid `Retry-After` (delta-seconds or HTTP-date) replaces the backoff wait.
    /// Malformed, negative and past values are ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, WaitSource};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// # let calls = Arc::new(AtomicU32::new(0));
    /// # let backend = tower::service_fn(move |_req: Request<String>| {
    /// #     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
    /// #     async move {
    /// #         let mut res = Response::new(String::new());
    /// #         if first {
    /// #             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #             res.headers_mut().insert("retry-after", "10".parse().unwrap());
    /// #         }
    /// #         Ok::<_, tower::BoxError>(res)
    /// #     }
    /// # });
    /// // `backend` answers 503 with `Retry-After: 10`, then 200.
    /// let policy = RetryPolicy::default()
    ///     .respect_retry_after(false)
    ///     .backoff(Backoff::constant(Duration::from_secs(1)));
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(res.status(), StatusCode::OK);
    /// // The backoff's 1 s, not the server's 10 s.
    /// assert_eq!(info.retries()[0].wait(), Duration::from_secs(1));
    /// assert_eq!(info.retries()[0].wait_source(), WaitSource::Backoff);
    /// # }
    /// ```
    #[must_use]
    pub fn respect_retry_after(mut self, yes: bool) -> Self {
        self.respect_retry_after = yes;
        self
    }

    /// The longest `Retry-After` the layer sleeps on. A longer one is not slept on: the
    /// response is returned at once with
    /// [`StopReason::RetryAfterTooLong`](crate::StopReason::RetryAfterTooLong), which carries
    /// the instant the server named.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy, StopReason};
    /// use http::{Request, Response, StatusCode};
    /// use tokio::time::Instant;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     let mut res = Response::new(String::new());
    /// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #     res.headers_mut().insert("retry-after", "30".parse().unwrap());
    /// #     Ok::<_, tower::BoxError>(res)
    /// # });
    /// // `backend` answers 503 with `Retry-After: 30`.
    /// let policy = RetryPolicy::default().max_retry_after(Duration::from_secs(10));
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let start = Instant::now();
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(start.elapsed(), Duration::ZERO); // not slept on
    /// assert_eq!(info.attempts(), 1);
    /// let retry_at = start + Duration::from_secs(30);
    /// assert_eq!(info.stop_reason(), &StopReason::RetryAfterTooLong { retry_at });
    /// # }
    /// ```
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The [`max_retry_after`](Self::max_retry_after) set.
    ///
    /// ```
    /// use calm_retry::{RetryPolicy, DEFAULT_MAX_RETRY_AFTER};
    ///
    /// let policy = RetryPolicy::default();
    /// assert_eq!(policy.configured_max_retry_after(), DEFAULT_MAX_RETRY_AFTER);
    /// ```
    #[must_use]
    pub fn configured_max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The total time across attempts, measured from the call: no retry is scheduled to start
    /// after it (the response is returned at once with
    /// [`StopReason::DeadlineExceeded`](crate::StopReason::DeadlineExceeded)). An attempt in
    /// flight is not cancelled: wrap the stack in a `tower::timeout::Timeout` for a hard limit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, StopReason};
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
    /// let policy = RetryPolicy::default()
    ///     .backoff(Backoff::constant(Duration::from_secs(2)))
    ///     .deadline(Duration::from_secs(3));
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let start = Instant::now();
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// // Attempts at 0 s and 2 s; the next one, at 4 s, would be past the deadline.
    /// assert_eq!(info.attempts(), 2);
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// let retry_at = start + Duration::from_secs(4);
    /// assert_eq!(info.stop_reason(), &StopReason::DeadlineExceeded { retry_at });
    /// # }
    /// ```
    #[must_use]
    pub fn deadline(mut self, total: Duration) -> Self {
        self.deadline = Some(total);
        self
    }

    /// Removes the [`deadline`](Self::deadline).
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::RetryPolicy;
    ///
    /// let shared = RetryPolicy::default().deadline(Duration::from_secs(5));
    /// let patient = shared.clone().no_deadline();
    /// assert_eq!(patient.configured_deadline(), None);
    /// ```
    #[must_use]
    pub fn no_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// The [`deadline`](Self::deadline) set, if any.
    ///
    /// ```
    /// use calm_retry::RetryPolicy;
    /// use std::time::Duration;
    ///
    /// assert_eq!(RetryPolicy::default().configured_deadline(), None);
    /// let policy = RetryPolicy::default().deadline(Duration::from_secs(5));
    /// assert_eq!(policy.configured_deadline(), Some(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub fn configured_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Whether every method is retried, idempotent or not (default `false`: a retried POST
    /// may act twice).
    ///
    /// ```
    /// use calm_retry::RetryPolicy;
    ///
    /// let post = http::Request::post("/orders").body(()).unwrap();
    /// assert!(!RetryPolicy::default().is_idempotent(&post));
    /// assert!(RetryPolicy::default().retry_non_idempotent(true).is_idempotent(&post));
    /// ```
    #[must_use]
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.retry_non_idempotent = yes;
        self
    }

    /// Uses `budget` instead of the layer's own (share one `RetryBudget` between layers to
    /// share a budget).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{RetryBudget, RetryInfo, RetryLayer, RetryPolicy, StopReason};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     let mut res = Response::new(String::new());
    /// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #     Ok::<_, tower::BoxError>(res)
    /// # });
    /// // No floor and no share of the traffic: not a single retry.
    /// let empty = RetryBudget::new(Duration::from_secs(10), 0, 0.0).unwrap();
    /// let svc = RetryLayer::new(RetryPolicy::default().budget(empty)).unwrap().layer(backend);
    ///
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(info.attempts(), 1);
    /// assert_eq!(info.stop_reason(), &StopReason::BudgetExhausted);
    /// # }
    /// ```
    #[must_use]
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = BudgetChoice::Own(budget);
        self
    }

    /// No budget: only [`max_retries`](Self::max_retries) bounds retries.
    ///
    /// ```
    /// use calm_retry::{RetryLayer, RetryPolicy};
    ///
    /// assert!(RetryLayer::new(RetryPolicy::default()).unwrap().budget().is_some());
    /// assert!(RetryLayer::new(RetryPolicy::default().no_budget()).unwrap().budget().is_none());
    /// ```
    #[must_use]
    pub fn no_budget(mut self) -> Self {
        self.budget = BudgetChoice::Disabled;
        self
    }

    /// The cap of a [`ReplayBody`](crate::ReplayBody)'s buffer for requests under this
    /// policy; a body past it is sent once and not retried.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use bytes::Bytes;
    /// use calm_retry::{ReplayBody, ReplayBodyLayer, RetryInfo, RetryLayer, RetryPolicy};
    /// use calm_retry::StopReason;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{ServiceBuilder, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|req: Request<ReplayBody<Full<Bytes>>>| async {
    /// #     req.into_body().collect().await?;
    /// #     let mut res = Response::new(String::new());
    /// #     *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #     Ok::<_, tower::BoxError>(res)
    /// # });
    /// // `backend` reads the whole body, then answers 503.
    /// let svc = ServiceBuilder::new()
    ///     .layer(ReplayBodyLayer::new())
    ///     .layer(RetryLayer::new(RetryPolicy::default().max_replay_bytes(4)).unwrap())
    ///     .service(backend);
    ///
    /// let req = Request::put("/blob").body(Full::new(Bytes::from("ten bytes!"))).unwrap();
    /// let res = svc.oneshot(req).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(info.attempts(), 1);
    /// assert_eq!(info.stop_reason(), &StopReason::BodyNotReplayable);
    /// # }
    /// ```
    #[must_use]
    pub fn max_replay_bytes(mut self, max: usize) -> Self {
        self.max_replay_bytes = max;
        self
    }

    /// How to recognise an error that means the request was never sent (retried for any
    /// method). The default is [`error::is_connection_refused`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::io;
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy, RetryReason};
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt};
    ///
    /// // This transport reports an unreachable host as `NotConnected`: never sent.
    /// fn never_sent(err: &(dyn std::error::Error + 'static)) -> bool {
    ///     err.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::NotConnected)
    /// }
    ///
    /// # let calls = Arc::new(AtomicU32::new(0));
    /// # let backend = tower::service_fn(move |_req: Request<String>| {
    /// #     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
    /// #     async move {
    /// #         if first {
    /// #             let refused = io::Error::from(io::ErrorKind::NotConnected);
    /// #             return Err(tower::BoxError::from(refused));
    /// #         }
    /// #         Ok(Response::new(String::new()))
    /// #     }
    /// # });
    /// // `backend` fails with `NotConnected` once, then answers 200.
    /// let svc = RetryLayer::new(RetryPolicy::default().connect_error(never_sent))
    ///     .unwrap()
    ///     .layer(backend);
    ///
    /// // A POST is not idempotent, but a request that was never sent is safe to send.
    /// let res = svc.oneshot(Request::post("/orders").body(String::new()).unwrap()).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(info.attempts(), 2);
    /// assert_eq!(info.retries()[0].reason(), RetryReason::Connect);
    /// # }
    /// ```
    #[must_use]
    pub fn connect_error(mut self, is_connect: ErrorPredicate) -> Self {
        self.connect_error = is_connect;
        self
    }

    /// Which other errors of the inner service may be retried (idempotent requests only).
    /// The default, [`error::any_error`], retries all.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::io;
    /// use calm_retry::{RetryLayer, RetryPolicy, StopReason};
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt};
    ///
    /// // Retrying will not fix a permission problem.
    /// fn worth_retrying(err: &(dyn std::error::Error + 'static)) -> bool {
    ///     err.downcast_ref::<io::Error>()
    ///         .is_none_or(|e| e.kind() != io::ErrorKind::PermissionDenied)
    /// }
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     Err::<Response<String>, _>(tower::BoxError::from(io::Error::from(
    /// #         io::ErrorKind::PermissionDenied,
    /// #     )))
    /// # });
    /// // `backend` always fails with `PermissionDenied`.
    /// let svc = RetryLayer::new(RetryPolicy::default().retryable_error(worth_retrying))
    ///     .unwrap()
    ///     .layer(backend);
    ///
    /// let err = svc.oneshot(Request::new(String::new())).await.unwrap_err();
    /// let info = err.info().unwrap();
    /// assert_eq!(info.attempts(), 1);
    /// assert_eq!(info.stop_reason(), &StopReason::NotRetryable);
    /// # }
    /// ```
    #[must_use]
    pub fn retryable_error(mut self, is_retryable: ErrorPredicate) -> Self {
        self.retryable_error = is_retryable;
        self
    }

    /// Tells the errors of an inner service that refused to *start* an attempt, and when it
    /// could have started (a rate limiter's "your place is too far away", say). When a retry
    /// is refused so, with an instant past the request's deadline
    /// ([`deadline`](Self::deadline) or a [`Deadline`](crate::Deadline) extension), the retry
    /// did not happen: the outcome it was retrying comes back (a 503 stays a 503) with
    /// [`StopReason::DeadlineExceeded`](crate::StopReason::DeadlineExceeded) naming that
    /// instant. Default: none (every error is an attempt's outcome).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::{Backoff, Deadline, RetryInfo, RetryLayer, RetryPolicy, StopReason};
    /// use http::{Request, Response, StatusCode};
    /// use tokio::time::Instant;
    /// use tower::{BoxError, Layer, ServiceExt};
    ///
    /// #[derive(Debug)]
    /// struct TooFar(Instant);
    /// impl std::fmt::Display for TooFar {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("no place before the deadline")
    ///     }
    /// }
    /// impl std::error::Error for TooFar {}
    ///
    /// fn too_far(err: &(dyn std::error::Error + 'static)) -> Option<Instant> {
    ///     err.downcast_ref::<TooFar>().map(|e| e.0)
    /// }
    ///
    /// let start = Instant::now();
    /// let mut calls = 0;
    /// // The first attempt gets a 503; the retry is refused: its place would be at 60 s.
    /// let backend = tower::service_fn(move |_req: Request<String>| {
    ///     calls += 1;
    ///     let first = calls == 1;
    ///     async move {
    ///         if first {
    ///             let mut res = Response::new(String::from("busy"));
    ///             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    ///             Ok(res)
    ///         } else {
    ///             Err(BoxError::from(TooFar(start + Duration::from_secs(60))))
    ///         }
    ///     }
    /// });
    /// let policy = RetryPolicy::default().backoff(Backoff::none()).refused_until(too_far);
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let mut req = Request::new(String::new());
    /// req.extensions_mut().insert(Deadline::at(start + Duration::from_secs(5)));
    /// let res = svc.oneshot(req).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(info.attempts(), 1);
    /// let retry_at = start + Duration::from_secs(60);
    /// assert_eq!(info.stop_reason(), &StopReason::DeadlineExceeded { retry_at });
    /// # }
    /// ```
    #[must_use]
    pub fn refused_until(mut self, refused_until: RefusedUntil) -> Self {
        self.refused_until = Some(refused_until);
        self
    }

    /// The wall clock that `Retry-After` HTTP-dates are measured from when the response has
    /// no valid `Date` header. For tests.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::{Duration, SystemTime};
    /// use calm_retry::{RetryInfo, RetryLayer, RetryPolicy};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt};
    ///
    /// fn frozen() -> SystemTime {
    ///     httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:07 GMT").unwrap()
    /// }
    ///
    /// # use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// # let calls = Arc::new(AtomicU32::new(0));
    /// # let backend = tower::service_fn(move |_req: Request<String>| {
    /// #     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
    /// #     async move {
    /// #         let mut res = Response::new(String::new());
    /// #         if first {
    /// #             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    /// #             let at = http::HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
    /// #             res.headers_mut().insert("retry-after", at);
    /// #         }
    /// #         Ok::<_, tower::BoxError>(res)
    /// #     }
    /// # });
    /// // `backend` answers 503 with `Retry-After: Sun, 06 Nov 1994 08:49:37 GMT` and no
    /// // `Date`, then 200.
    /// let policy = RetryPolicy::default().wall_clock(frozen);
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
    /// let info = res.extensions().get::<RetryInfo>().unwrap();
    /// assert_eq!(info.retries()[0].wait(), Duration::from_secs(30));
    /// # }
    /// ```
    #[must_use]
    pub fn wall_clock(mut self, now: fn() -> SystemTime) -> Self {
        self.wall_clock = now;
        self
    }

    /// Checks that the policy makes sense; [`RetryLayer::new`](crate::RetryLayer::new) calls it.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of an invalid [`Backoff`] (budgets are checked when they are made).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use calm_retry::{error::ConfigErrorKind, Backoff, RetryPolicy};
    ///
    /// assert!(RetryPolicy::default().validate().is_ok());
    /// let shrinking = Backoff::exponential(Duration::from_secs(1)).factor(0.5);
    /// let err = RetryPolicy::default().backoff(shrinking).validate().unwrap_err();
    /// assert_eq!(err.kind(), ConfigErrorKind::BackoffFactor);
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.backoff.validate()
    }

    /// Whether `status` is in the retry set.
    ///
    /// ```
    /// use calm_retry::RetryPolicy;
    /// use http::StatusCode;
    ///
    /// let policy = RetryPolicy::default();
    /// assert!(policy.retries_status(StatusCode::TOO_MANY_REQUESTS));
    /// assert!(policy.retries_status(StatusCode::GATEWAY_TIMEOUT));
    /// assert!(!policy.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
    /// ```
    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses.contains(status)
    }

    /// Whether this request may be retried after any retryable outcome (not only a 429 or a
    /// connect error): its method is idempotent, it is a POST or PATCH carrying an
    /// `Idempotency-Key`, or the policy retries every method.
    ///
    /// ```
    /// use calm_retry::{RetryPolicy, IDEMPOTENCY_KEY};
    /// use http::Request;
    ///
    /// let policy = RetryPolicy::default();
    /// assert!(policy.is_idempotent(&Request::put("/items/7").body(()).unwrap()));
    /// assert!(!policy.is_idempotent(&Request::post("/items").body(()).unwrap()));
    ///
    /// let keyed = Request::post("/items").header(IDEMPOTENCY_KEY, "a1b2").body(()).unwrap();
    /// assert!(policy.is_idempotent(&keyed));
    /// ```
    pub fn is_idempotent<B>(&self, req: &Request<B>) -> bool {
        self.retry_non_idempotent
            || is_idempotent_method(req.method())
            || (matches!(*req.method(), Method::POST | Method::PATCH)
                && req.headers().contains_key(IDEMPOTENCY_KEY))
    }
}

/// GET, HEAD, OPTIONS, PUT, DELETE and TRACE (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("retry_on_status", &self.statuses)
            .field("backoff", &self.backoff)
            .field("respect_retry_after", &self.respect_retry_after)
            .field("max_retry_after", &self.max_retry_after)
            .field("deadline", &self.deadline)
            .field("retry_non_idempotent", &self.retry_non_idempotent)
            .field("budget", &self.budget)
            .field("max_replay_bytes", &self.max_replay_bytes)
            .finish_non_exhaustive()
    }
}

/// A set of status codes: one bit per code in `0..1024`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusSet([u64; 16]);

impl StatusSet {
    pub(crate) fn contains(&self, status: StatusCode) -> bool {
        let code = usize::from(status.as_u16());
        code < 1024 && self.0[code / 64] & (1 << (code % 64)) != 0
    }

    fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0u16..1024).filter(|&c| self.0[usize::from(c) / 64] & (1 << (c % 64)) != 0)
    }
}

impl FromIterator<StatusCode> for StatusSet {
    fn from_iter<I: IntoIterator<Item = StatusCode>>(iter: I) -> Self {
        let mut bits = [0u64; 16];
        for status in iter {
            let code = usize::from(status.as_u16());
            if code < 1024 {
                bits[code / 64] |= 1 << (code % 64);
            }
        }
        StatusSet(bits)
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_set() {
        let set = StatusSet::from_iter([StatusCode::OK, StatusCode::from_u16(999).unwrap()]);
        assert!(set.contains(StatusCode::OK));
        assert!(set.contains(StatusCode::from_u16(999).unwrap()));
        assert!(!set.contains(StatusCode::CREATED));
        assert_eq!(format!("{set:?}"), "{200, 999}");
        let policy = RetryPolicy::default();
        for code in [429, 502, 503, 504] {
            assert!(policy.retries_status(StatusCode::from_u16(code).unwrap()));
        }
        assert!(!policy.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
    }

    #[test]
    fn idempotency() {
        let policy = RetryPolicy::default();
        let req = |m: Method| Request::builder().method(m).body(()).unwrap();
        for m in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
            Method::TRACE,
        ] {
            assert!(policy.is_idempotent(&req(m)));
        }
        assert!(!policy.is_idempotent(&req(Method::POST)));
        assert!(!policy.is_idempotent(&req(Method::PATCH)));
        let keyed = Request::post("/")
            .header("Idempotency-Key", "abc")
            .body(())
            .unwrap();
        assert!(policy.is_idempotent(&keyed));
        let keyed_patch = Request::patch("/")
            .header("Idempotency-Key", "abc")
            .body(())
            .unwrap();
        assert!(policy.is_idempotent(&keyed_patch));
        // the key vouches for POST and PATCH only
        for m in [Method::CONNECT, Method::from_bytes(b"LOCK").unwrap()] {
            let keyed = Request::builder()
                .method(m)
                .header("Idempotency-Key", "abc")
                .body(())
                .unwrap();
            assert!(!policy.is_idempotent(&keyed));
        }
        assert!(policy
            .retry_non_idempotent(true)
            .is_idempotent(&req(Method::POST)));
    }

    #[test]
    fn debug_is_readable() {
        let text = format!("{:?}", RetryPolicy::default());
        assert!(text.contains("max_retries: 3"), "{text}");
        assert!(text.contains("{429, 502, 503, 504}"), "{text}");
    }
}
