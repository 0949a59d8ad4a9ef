use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower::BoxError;
use tower_service::Service;
use tracing::Span;

use crate::{
    body::{try_clone_request, TryCloneBody},
    budget::RetryBudget,
    deadline::Deadline,
    error::{ConfigError, RetryError},
    future::{Attempts, ResponseFuture},
    info::{RetryInfo, StopReason},
    layer::RetryLayer,
    metrics::Meter,
    policy::{BudgetChoice, RetryPolicy},
    trace,
};

/// Retries requests to the inner service according to a [`RetryPolicy`]; made by
/// [`RetryLayer`].
///
/// Works over any `S: Service<http::Request<B>, Response = http::Response<R>> + Clone` whose
/// error converts into [`BoxError`], with a request body `B` that implements
/// [`TryCloneBody`] (every `Clone` body does; wrap others with
/// [`ReplayBodyLayer`](crate::ReplayBodyLayer)).
///
/// # Errors
///
/// [`RetryError`]: the inner service's last error with the [`RetryInfo`] of the attempts,
/// or an invalid per-request policy (the request is then not sent).
///
/// # Panics
///
/// Like any `tokio::time::sleep`, a retry that waits needs a tokio runtime with the time
/// driver; the success path and zero waits use no timer.
///
/// # Clone
///
/// Clones share the policy and the retry budget. Each call takes the inner service that
/// `poll_ready` made ready and leaves a clone in its place; the response future polls its
/// service ready again before every retry.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_retry::{Backoff, Retry, RetryInfo, RetryPolicy, StopReason};
/// use http::{Request, Response, StatusCode};
/// use tower::ServiceExt;
///
/// let always_busy = tower::service_fn(|_req: Request<String>| async {
///     let mut res = Response::new(String::new());
///     *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
///     res.headers_mut().insert("retry-after", "3600".parse().unwrap());
///     Ok::<_, tower::BoxError>(res)
/// });
/// let svc = Retry::new(always_busy, RetryPolicy::default()).unwrap();
///
/// // An hour is above the default 60 s cap: no sleep, the 429 comes back at once.
/// let res = svc.oneshot(Request::new(String::new())).await.unwrap();
/// let info = res.extensions().get::<RetryInfo>().unwrap();
/// assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert!(matches!(info.stop_reason(), StopReason::RetryAfterTooLong { .. }));
/// assert!(info.retry_after().is_some());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    config: Arc<Config>,
}

/// A policy with the budget it draws from; one `Arc` of it is shared by a layer, its
/// services and their futures.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) policy: RetryPolicy,
    pub(crate) budget: Option<RetryBudget>,
    /// Whether spans show the request's query in `url.full`.
    pub(crate) trace_url_query: bool,
}

impl<S> Retry<S> {
    /// Wraps `inner` with a layer made from `policy`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the policy is invalid.
    pub fn new(inner: S, policy: RetryPolicy) -> Result<Self, ConfigError> {
        let layer = RetryLayer::new(policy)?;
        Ok(tower_layer::Layer::layer(&layer, inner))
    }

    pub(crate) fn from_parts(inner: S, config: Arc<Config>) -> Self {
        Retry { inner, config }
    }

    /// The layer's policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.config.policy
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, R> Service<Request<B>> for Retry<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: TryCloneBody,
    R: Body,
{
    type Response = Response<R>;
    type Error = RetryError;
    type Future = ResponseFuture<S, B, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|err| {
            let mut info = RetryInfo::default();
            info.stop(StopReason::NotReady);
            RetryError::service(err.into(), info)
        })
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        start(Arc::clone(&self.config), Borrowed(&mut self.inner), req)
    }
}

impl<S> Retry<S> {
    /// Sends `req` as [`call`](Service::call) does, consuming this copy of the service: the
    /// inner service moves into the response future for the retries, and no clone of it is
    /// left behind. For a copy of a stack made for one request, this saves a clone of
    /// everything below.
    ///
    /// The service must be ready (its [`poll_ready`](Service::poll_ready) returned
    /// `Ready(Ok(()))`), as for `call`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use calm_retry::{Retry, RetryInfo, RetryPolicy};
    /// use http::{Request, Response};
    /// use tower::{Service, ServiceExt};
    ///
    /// let backend = tower::service_fn(|_req: Request<String>| async {
    ///     Ok::<_, tower::BoxError>(Response::new(String::from("ok")))
    /// });
    /// let mut svc = Retry::new(backend, RetryPolicy::default()).unwrap();
    /// svc.ready().await.unwrap();
    /// let res = svc.call_owned(Request::new(String::new())).await.unwrap();
    /// assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts(), 1);
    /// # }
    /// ```
    pub fn call_owned<B, R>(self, req: Request<B>) -> ResponseFuture<S, B, R>
    where
        S: Service<Request<B>, Response = Response<R>> + Clone,
        S::Error: Into<BoxError>,
        B: TryCloneBody,
        R: Body,
    {
        start(self.config, Owned(self.inner), req)
    }
}

/// Where the service that sends a request comes from: borrowed from a `Retry` that stays in
/// use (the future then keeps a ready copy, and a clone stays behind) or owned.
trait Source<S> {
    fn service(&mut self) -> &mut S;
    /// The ready service, for the future to keep for the retries.
    fn into_service(self) -> S;
}

struct Borrowed<'a, S>(&'a mut S);

impl<S: Clone> Source<S> for Borrowed<'_, S> {
    fn service(&mut self) -> &mut S {
        self.0
    }

    fn into_service(self) -> S {
        // NOTE: the ready service made the call and moves into the future for the retries
        // (where it is polled ready again). A clone taken after the call, as tower's `Retry`
        // takes its own, stays behind: not ready yet, polled ready before its next call.
        let clone = self.0.clone();
        std::mem::replace(self.0, clone)
    }
}

struct Owned<S>(S);

impl<S> Source<S> for Owned<S> {
    fn service(&mut self) -> &mut S {
        &mut self.0
    }

    fn into_service(self) -> S {
        self.0
    }
}

/// Sends the first attempt of `req` through `source`'s service and returns the future that
/// drives it and the retries.
// NOTE: inlined into `call` and `call_owned`, so the future is built in place.
#[inline(always)]
fn start<S, B, R>(
    layer_config: Arc<Config>,
    mut source: impl Source<S>,
    mut req: Request<B>,
) -> ResponseFuture<S, B, R>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    B: TryCloneBody,
    R: Body,
{
    let config = match req.extensions().get::<RetryPolicy>() {
        None => layer_config,
        Some(own) => {
            if let Err(err) = own.validate() {
                return ResponseFuture::failed(RetryError::invalid_policy(err));
            }
            let budget = match &own.budget {
                BudgetChoice::Layer => layer_config.budget.clone(),
                BudgetChoice::Disabled => None,
                BudgetChoice::Own(budget) => Some(budget.clone()),
            };
            Arc::new(Config {
                policy: own.clone(),
                budget,
                trace_url_query: layer_config.trace_url_query,
            })
        }
    };
    if let Some(budget) = &config.budget {
        budget.deposit();
    }
    let request_span = trace::request_span(&req, config.trace_url_query);
    let attempt_span = trace::attempt_span(&request_span, &req, config.trace_url_query, 0, None);
    let spans = (request_span, attempt_span);
    let meter = Meter::start(&req);
    let policy = &config.policy;

    if policy.max_retries == 0 {
        // NOTE: no retry can happen, so keep no copy of the request or the service.
        req.body_mut().limit_replay(0);
        let idempotent = policy.is_idempotent(&req);
        let attempts = Attempts::new(None, None, config, idempotent, None);
        let future = call_in(&spans, source.service(), req);
        return ResponseFuture::new(future, attempts, spans, meter);
    }

    req.body_mut().limit_replay(policy.max_replay_bytes);
    let spare = try_clone_request(&req);
    let idempotent = policy.is_idempotent(&req);
    let configured = policy
        .deadline
        .and_then(|total| Instant::now().checked_add(total));
    let requested = req.extensions().get::<Deadline>().map(Deadline::instant);
    let deadline = match (configured, requested) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let future = call_in(&spans, source.service(), req);
    let service = source.into_service();
    let attempts = Attempts::new(Some(service), spare, config, idempotent, deadline);
    ResponseFuture::new(future, attempts, spans, meter)
}

/// `service.call(req)` inside the request's and its first attempt's spans, so what the layers
/// below log as they take the request belongs to it.
// NOTE: untraced, exactly the bare call: an `Entered` guard held around it would keep the
// future from being built in place.
#[inline(always)]
fn call_in<S: Service<R>, R>(spans: &(Span, Span), service: &mut S, req: R) -> S::Future {
    if spans.0.is_disabled() {
        return service.call(req);
    }
    let _request = spans.0.enter();
    let _attempt = spans.1.enter();
    service.call(req)
}
