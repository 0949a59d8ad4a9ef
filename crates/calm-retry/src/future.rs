//! The future returned by [`Retry`](crate::Retry).
//
// NOTE: this is our own state machine rather than `tower::retry::Retry` because tower's keeps
// `Error = S::Error` (so the final error cannot carry the `RetryInfo`), clones the whole policy
// and service into every call, has no step to drain the dropped response while waiting, and
// cannot swap in a per-request policy. The shape follows `tower/src/retry/future.rs`.

use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::Buf;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};
use tower::BoxError;
use tower_service::Service;
use tracing::Span;

use crate::{
    body::{try_clone_request, TryCloneBody},
    error::RetryError,
    follow_up::{is_follow_up, is_follow_up_response},
    info::{RetryInfo, RetryReason, RetryRecord, StopReason, WaitSource},
    metrics::Meter,
    policy::RetryPolicy,
    retry_after::{self, MAX_DELAY},
    service::Config,
    trace::{self, Outcome as Traced},
};

/// How much of a response that will be retried is read (while waiting) so its connection can
/// be reused; the rest is dropped.
const DRAIN_LIMIT: usize = 16 * 1024;

pin_project! {
    /// The response future of [`Retry`](crate::Retry).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, B, R>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, R>,
        attempts: Option<Attempts<S, B>>,
        info: RetryInfo,
        // NOTE: with a deadline, the outcome being retried is kept whole (not drained) until
        // the retry is sent: a retry that cannot start in time returns it instead. Boxed, like
        // everything only a retry needs, so the common case (one attempt) moves a small future.
        last: Option<Box<Last<R>>>,
        // NOTE: the logical request's span, entered at every poll, and the span of the attempt
        // under way (see `trace`). `None` when no subscriber wants them, so the future stays
        // small when nothing is traced.
        spans: Option<Box<Spans>>,
        meter: Option<Meter>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R> {
        Calling {
            #[pin]
            future: F,
        },
        Waiting {
            sleep: Pin<Box<Sleep>>,
            drain: Option<Pin<Box<R>>>,
            drained: usize,
            phase: Phase,
        },
        Ready,
        Failed {
            error: Option<RetryError>,
        },
        Done,
    }
}

/// The spans of a request being traced.
pub(crate) struct Spans {
    request: Span,
    attempt: Span,
    /// Whether the request's outcome was recorded; a request dropped before it (its caller
    /// gave up, a timeout around it ran out) closes its spans as cancelled.
    finished: AtomicBool,
}

impl Drop for Spans {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            trace::record_cancelled(&self.attempt);
            trace::record_cancelled(&self.request);
        }
    }
}

/// Everything a request needs to be tried again.
pub(crate) struct Attempts<S, B> {
    /// `None` when no retry can happen.
    service: Option<S>,
    /// An unsent copy of the request, the source of every retry's copy.
    spare: Option<Request<B>>,
    /// The request of the retry being prepared (boxed: only a retry needs it).
    next: Option<Box<Request<B>>>,
    config: Arc<Config>,
    idempotent: bool,
    deadline: Option<Instant>,
    rng: Option<fastrand::Rng>,
    prev_wait: Duration,
}

/// What `Waiting`'s sleep is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The wait before the retry.
    Backoff,
    /// The retry is due and waits for the inner service; the sleep ends at the deadline.
    Starting,
}

/// The outcome of the attempt being retried.
enum Last<R> {
    Response(Response<R>),
    Error(BoxError),
}

enum Outcome<'a> {
    Status {
        status: StatusCode,
        headers: &'a HeaderMap,
        follow_up: bool,
    },
    Error(&'a (dyn StdError + 'static)),
}

struct Planned {
    reason: RetryReason,
    wait: Duration,
    at: Instant,
    source: WaitSource,
}

impl<S, B> Attempts<S, B> {
    pub(crate) fn new(
        service: Option<S>,
        spare: Option<Request<B>>,
        config: Arc<Config>,
        idempotent: bool,
        deadline: Option<Instant>,
    ) -> Self {
        Attempts {
            service,
            spare,
            next: None,
            config,
            idempotent,
            deadline,
            rng: None,
            prev_wait: Duration::ZERO,
        }
    }
}

impl<S, B: TryCloneBody> Attempts<S, B> {
    /// Decides what follows an attempt: `Some(instant)` to retry then (with `self.next`
    /// ready), `None` to return the outcome (with the stop reason in `info`).
    fn decide(&mut self, outcome: Outcome<'_>, info: &mut RetryInfo) -> Option<Instant> {
        match self.plan(outcome, info) {
            Ok(planned) => {
                info.push(RetryRecord::new(
                    planned.reason,
                    planned.wait,
                    planned.source,
                ));
                // NOTE: in the request span, which names the method and the (redacted) URL.
                tracing::debug!(
                    http.request.resend_count = info.attempts(),
                    calm.retry.reason = %planned.reason,
                    calm.retry.wait = planned.wait.as_secs_f64(),
                    calm.retry.wait_source = %planned.source,
                    "retry scheduled"
                );
                Some(planned.at)
            }
            Err(stop) => {
                log_stop(stop, info.attempts());
                info.stop(stop);
                self.spare = None;
                None
            }
        }
    }

    fn plan(&mut self, outcome: Outcome<'_>, info: &mut RetryInfo) -> Result<Planned, StopReason> {
        let policy = &self.config.policy;
        let mut hint = None;
        let (reason, safe) = match outcome {
            Outcome::Status {
                status,
                headers,
                follow_up,
            } => {
                if policy.respect_retry_after {
                    hint = retry_after::hint(headers, policy.wall_clock);
                }
                if !policy.statuses.contains(status) {
                    // NOTE: `info` may hold an earlier response's instant; it must describe
                    // the last one.
                    info.set_retry_after(hint.map(|wait| after(Instant::now(), wait)));
                    return Err(StopReason::Succeeded);
                }
                // NOTE: a 429 of a later hop does not say the request itself was refused.
                let refused = status == StatusCode::TOO_MANY_REQUESTS && !follow_up;
                (RetryReason::Status(status), self.idempotent || refused)
            }
            Outcome::Error(err) => {
                // NOTE: a hop's connect error does not say the request itself was never sent.
                if !is_follow_up(err) && (policy.connect_error)(err) {
                    (RetryReason::Connect, true)
                } else {
                    let retryable = (policy.retryable_error)(err);
                    (RetryReason::Error, self.idempotent && retryable)
                }
            }
        };
        let now = Instant::now();
        let hint_at = hint.map(|wait| after(now, wait));
        info.set_retry_after(hint_at);
        if !safe {
            return Err(StopReason::NotRetryable);
        }
        let retries = u32::try_from(info.retries().len()).unwrap_or(u32::MAX);
        if retries >= policy.max_retries || self.service.is_none() {
            return Err(StopReason::AttemptsExhausted);
        }
        let (wait, source) = match (hint, hint_at) {
            (Some(wait), Some(retry_at)) if wait > policy.max_retry_after => {
                return Err(StopReason::RetryAfterTooLong { retry_at });
            }
            (Some(wait), _) => (wait, WaitSource::RetryAfter),
            _ => {
                let rng = self.rng.get_or_insert_with(|| policy.backoff.rng());
                let wait = policy.backoff.sample(retries + 1, self.prev_wait, rng);
                (wait, WaitSource::Backoff)
            }
        };
        let at = after(now, wait);
        if self.deadline.is_some_and(|deadline| at > deadline) {
            return Err(StopReason::DeadlineExceeded { retry_at: at });
        }
        let Some(next) = self.spare.as_ref().and_then(try_clone_request) else {
            return Err(StopReason::BodyNotReplayable);
        };
        if let Some(budget) = &self.config.budget {
            if !budget.withdraw() {
                return Err(StopReason::BudgetExhausted);
            }
        }
        if retries + 1 >= policy.max_retries {
            // NOTE: the last retry: free the spare (and a ReplayBody's buffer with it) early.
            self.spare = None;
        }
        self.next = Some(Box::new(next));
        self.prev_wait = wait;
        Ok(Planned {
            reason,
            wait,
            at,
            source,
        })
    }
}

impl<S, B> Attempts<S, B> {
    fn poll_service_ready<R>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>
    where
        S: Service<Request<B>, Response = Response<R>>,
        S::Error: Into<BoxError>,
    {
        let service = self.service.as_mut().expect("a retry keeps the service");
        service.poll_ready(cx).map_err(Into::into)
    }

    /// Sends the prepared retry, in a span of its own under `request_span` when the request
    /// is traced; the service must be ready.
    fn call<R>(
        &mut self,
        request_span: Option<&Span>,
        info: &RetryInfo,
    ) -> (S::Future, Option<Span>)
    where
        S: Service<Request<B>, Response = Response<R>>,
    {
        let req = *self.next.take().expect("a retry has its request");
        let span = request_span.map(|parent| {
            trace::attempt_span(
                parent,
                &req,
                self.config.trace_url_query,
                info.attempts(),
                info.retries().last(),
            )
        });
        let service = self.service.as_mut().expect("a retry keeps the service");
        let entered = span.as_ref().map(Span::enter);
        let future = service.call(req);
        drop(entered);
        (future, span)
    }
}

impl<S, B> Attempts<S, B> {
    /// The instant an inner refusal names, when it is past the deadline.
    fn refused_past_deadline(&self, err: &(dyn StdError + 'static)) -> Option<Instant> {
        let refused_until = self.config.policy.refused_until?;
        let deadline = self.deadline?;
        refused_until(err).filter(|at| *at > deadline)
    }
}

/// Logs why no retry follows an attempt that could have been retried, at the level its
/// consequence deserves: INFO when a retry was wanted but the time for it was not there (the
/// caller gets the last outcome back early), WARN when the shared retry budget ran dry (retries
/// are being shed across every clone), DEBUG otherwise.
fn log_stop(stop: StopReason, attempts: u32) {
    match stop {
        StopReason::Succeeded => {}
        StopReason::RetryAfterTooLong { retry_at } => tracing::info!(
            calm.attempts = attempts,
            calm.retry.stop = %stop,
            retry_in = ?retry_at.saturating_duration_since(Instant::now()),
            "not retrying: the server's Retry-After is above the cap; returning its response"
        ),
        StopReason::DeadlineExceeded { retry_at } => tracing::info!(
            calm.attempts = attempts,
            calm.retry.stop = %stop,
            retry_in = ?retry_at.saturating_duration_since(Instant::now()),
            "not retrying: the next attempt would start after the request's deadline"
        ),
        StopReason::BudgetExhausted => tracing::warn!(
            calm.attempts = attempts,
            calm.retry.stop = %stop,
            "not retrying: the shared retry budget is spent (too many retries across clients)"
        ),
        _ => tracing::debug!(calm.attempts = attempts, calm.retry.stop = %stop, "not retrying"),
    }
}

/// The outcome a retry was for, returned with `info` because the retry did not happen.
fn give_back<R>(last: Last<R>, info: RetryInfo) -> Result<Response<R>, RetryError> {
    match last {
        Last::Response(mut res) => {
            res.extensions_mut().insert(info);
            Ok(res)
        }
        Last::Error(err) => Err(RetryError::service(err, info)),
    }
}

/// `now + wait`, saturating far in the future instead of overflowing.
fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(MAX_DELAY))
        .unwrap_or(now)
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    // NOTE: inlined into `Retry::call`, so `attempts` and the inner future are built in place
    // rather than copied into the future.
    #[inline(always)]
    pub(crate) fn new(
        future: S::Future,
        attempts: Attempts<S, B>,
        (request, attempt): (Span, Span),
        meter: Meter,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            attempts: Some(attempts),
            info: RetryInfo::default(),
            last: None,
            spans: (!request.is_disabled()).then(|| {
                Box::new(Spans {
                    request,
                    attempt,
                    finished: AtomicBool::new(false),
                })
            }),
            meter: Some(meter),
        }
    }

    pub(crate) fn failed(error: RetryError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
            attempts: None,
            info: RetryInfo::default(),
            last: None,
            spans: None,
            meter: None,
        }
    }
}

impl<S, B, R> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    B: TryCloneBody,
    R: Body,
{
    type Output = Result<Response<R>, RetryError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // NOTE: without spans, none of this costs more than a check of `None`.
        let (request_span, mut attempt_span, finished) = match this.spans.as_deref_mut() {
            Some(Spans {
                request,
                attempt,
                finished,
            }) => (Some(&*request), Some(attempt), Some(&*finished)),
            None => (None, None, None),
        };
        let _entered = request_span.map(Span::enter);
        // NOTE: every outcome leaves through `finish!`, which records it on the request span
        // and in the metrics.
        macro_rules! finish {
            ($output:expr) => {{
                let output = $output;
                if let (Some(span), Some(attempts)) = (request_span, this.attempts.as_ref()) {
                    record_end(span, &output, &attempts.config.policy);
                }
                if let Some(finished) = finished {
                    finished.store(true, Ordering::Relaxed);
                }
                if let Some(mut meter) = this.meter.take() {
                    meter.finish(output.as_ref().ok().map(Response::status));
                }
                return Poll::Ready(output);
            }};
        }
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let entered = attempt_span.as_deref().map(Span::enter);
                    let polled = future.poll(cx);
                    drop(entered);
                    let result: Result<Response<R>, BoxError> = match polled {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending => {
                            // NOTE: the retry is under way: what it retries is not needed.
                            *this.last = None;
                            return Poll::Pending;
                        }
                    };
                    let attempts = this
                        .attempts
                        .as_mut()
                        .expect("a called future has its attempts");
                    let traced = match &result {
                        Ok(res) => Traced::Status(res.status()),
                        Err(err) => Traced::Error(&**err),
                    };
                    if let Some(span) = attempt_span.as_deref_mut() {
                        trace::record_outcome(span, traced, &attempts.config.policy);
                        // NOTE: the attempt is over: its span closes now, not with the request.
                        *span = Span::none();
                    }
                    if let Some(meter) = this.meter.as_ref() {
                        meter.attempt(traced, &attempts.config.policy);
                    }
                    if let (Err(err), Some(last)) = (&result, this.last.take()) {
                        if let Some(retry_at) = attempts.refused_past_deadline(&**err) {
                            // NOTE: the retry never started; what it was retrying comes back.
                            this.info.unplan_last();
                            let stop = StopReason::DeadlineExceeded { retry_at };
                            log_stop(stop, this.info.attempts());
                            this.info.stop(stop);
                            this.state.set(State::Done);
                            release(this.attempts);
                            finish!(give_back(*last, std::mem::take(this.info)));
                        }
                    }
                    this.info.count_attempt();
                    let deadline = attempts.deadline;
                    match result {
                        Ok(mut res) => {
                            let outcome = Outcome::Status {
                                status: res.status(),
                                headers: res.headers(),
                                follow_up: is_follow_up_response(res.extensions()),
                            };
                            match attempts.decide(outcome, this.info) {
                                None => {
                                    this.state.set(State::Done);
                                    res.extensions_mut().insert(std::mem::take(this.info));
                                    finish!(Ok(res));
                                }
                                Some(at) if deadline.is_some() => {
                                    *this.last = Some(Box::new(Last::Response(res)));
                                    this.state.set(wait_until(at, None, deadline));
                                }
                                Some(at) => {
                                    let body = Some(res.into_body());
                                    this.state.set(wait_until(at, body, None));
                                }
                            }
                        }
                        Err(err) => match attempts.decide(Outcome::Error(&*err), this.info) {
                            None => {
                                this.state.set(State::Done);
                                let info = std::mem::take(this.info);
                                finish!(Err(RetryError::service(err, info)));
                            }
                            Some(at) => {
                                if deadline.is_some() {
                                    *this.last = Some(Box::new(Last::Error(err)));
                                }
                                this.state.set(wait_until(at, None, deadline));
                            }
                        },
                    }
                }
                StateProj::Waiting {
                    sleep,
                    drain,
                    drained,
                    phase,
                } => {
                    let attempts = this.attempts.as_mut().expect("a retry has its attempts");
                    if *phase == Phase::Backoff {
                        if let Some(body) = drain {
                            if drain_some(body.as_mut(), drained, cx) {
                                *drain = None;
                            }
                        }
                        ready!(sleep.as_mut().poll(cx));
                        match attempts.deadline {
                            None => {
                                this.state.set(State::Ready);
                                continue;
                            }
                            Some(deadline) => {
                                sleep.as_mut().reset(deadline);
                                *phase = Phase::Starting;
                            }
                        }
                    }
                    let ready = attempts.poll_service_ready(cx);
                    let expired = match ready {
                        // NOTE: ready at the deadline itself may still start; after it, not.
                        Poll::Ready(Ok(())) => Instant::now() > sleep.deadline(),
                        Poll::Pending => sleep.as_mut().poll(cx).is_ready(),
                        Poll::Ready(Err(_)) => false,
                    };
                    if expired {
                        this.info.unplan_last();
                        let stop = StopReason::DeadlineExceeded {
                            retry_at: Instant::now(),
                        };
                        log_stop(stop, this.info.attempts());
                        this.info.stop(stop);
                        this.state.set(State::Done);
                        release(this.attempts);
                        let info = std::mem::take(this.info);
                        finish!(match this.last.take() {
                            Some(last) => give_back(*last, info),
                            None => Err(RetryError::service(
                                "no outcome to return at the deadline".into(),
                                info,
                            )),
                        });
                    }
                    match ready {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(err)) => {
                            this.info.stop(StopReason::NotReady);
                            this.state.set(State::Done);
                            let info = std::mem::take(this.info);
                            finish!(Err(RetryError::service(err, info)));
                        }
                        Poll::Ready(Ok(())) => {
                            count_retry(this.meter.as_ref(), this.info);
                            let (future, span) = attempts.call(request_span, this.info);
                            if let (Some(slot), Some(span)) = (attempt_span.as_deref_mut(), span) {
                                *slot = span;
                            }
                            this.state.set(State::Calling { future });
                        }
                    }
                }
                StateProj::Ready => {
                    let attempts = this.attempts.as_mut().expect("a retry has its attempts");
                    if let Err(err) = ready!(attempts.poll_service_ready(cx)) {
                        this.info.stop(StopReason::NotReady);
                        this.state.set(State::Done);
                        let info = std::mem::take(this.info);
                        finish!(Err(RetryError::service(err, info)));
                    }
                    count_retry(this.meter.as_ref(), this.info);
                    let (future, span) = attempts.call(request_span, this.info);
                    if let (Some(slot), Some(span)) = (attempt_span.as_deref_mut(), span) {
                        *slot = span;
                    }
                    this.state.set(State::Calling { future });
                }
                StateProj::Failed { error } => {
                    let error = error.take().expect("polled after completion");
                    this.state.set(State::Done);
                    finish!(Err(error));
                }
                StateProj::Done => panic!("calm_retry::ResponseFuture polled after completion"),
            }
        }
    }
}

/// Records how the request ended on its span, if it is traced.
fn record_end<R>(span: &Span, output: &Result<Response<R>, RetryError>, policy: &RetryPolicy) {
    if span.is_disabled() {
        return;
    }
    let (traced, info) = match output {
        Ok(res) => (
            Traced::Status(res.status()),
            res.extensions().get::<RetryInfo>(),
        ),
        Err(err) => {
            let inner: &(dyn StdError + 'static) = match err.inner() {
                Some(inner) => inner,
                None => err,
            };
            (Traced::Error(inner), err.info())
        }
    };
    trace::request_done(span, traced, info, policy);
}

/// Drops what only a retry needed (the service, the spare request) once none will be made.
fn release<S, B>(attempts: &mut Option<Attempts<S, B>>) {
    if let Some(attempts) = attempts {
        attempts.service = None;
        attempts.spare = None;
        attempts.next = None;
    }
}

/// Counts the retry about to be sent (`info`'s last record) in the metrics.
fn count_retry(meter: Option<&Meter>, info: &RetryInfo) {
    if let (Some(meter), Some(record)) = (meter, info.retries().last()) {
        meter.retry(record.reason());
    }
}

/// The state that waits until `at` for the next attempt (draining `body` meanwhile), then,
/// with a `deadline`, waits at most until it for the inner service to become ready.
fn wait_until<F, R>(at: Instant, body: Option<R>, deadline: Option<Instant>) -> State<F, R> {
    match deadline {
        // NOTE: no wait, so no time to drain: drop the response body now.
        None if at <= Instant::now() => State::Ready,
        Some(deadline) if at <= Instant::now() => State::Waiting {
            sleep: Box::pin(sleep_until(deadline)),
            drain: None,
            drained: 0,
            phase: Phase::Starting,
        },
        _ => State::Waiting {
            sleep: Box::pin(sleep_until(at)),
            drain: body.map(Box::pin),
            drained: 0,
            phase: Phase::Backoff,
        },
    }
}

/// Reads what is ready of a response body that will be dropped; `true` when done with it
/// (ended, failed, or past [`DRAIN_LIMIT`]).
fn drain_some<R: Body>(mut body: Pin<&mut R>, drained: &mut usize, cx: &mut Context<'_>) -> bool {
    loop {
        match body.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // NOTE: every frame counts for at least one byte, so a body that yields endless
                // empty frames is given up on too instead of spinning here.
                let len = frame.data_ref().map_or(0, |data| data.remaining());
                *drained = drained.saturating_add(len.max(1));
                if *drained > DRAIN_LIMIT {
                    return true;
                }
            }
            Poll::Ready(_) => return true,
            Poll::Pending => return false,
        }
    }
}

impl<S, B, R> fmt::Debug for ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Waiting { .. } => "waiting",
            State::Ready => "ready",
            State::Failed { .. } => "failed",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}
