//! The future a [`Client`](super::Client) returns.

use super::stack::Sending;
use super::Shared;
use crate::error::{sources, TimedOut};
use crate::request::RequestTimeout;
use crate::Body;
use calm_ratelimit::error::MaxWaitExceeded;
use calm_ratelimit::MaxWait;
use calm_retry::Deadline;
use http::{Request, Response};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tower::BoxError;

type Outcome = Result<Response<Body>, BoxError>;

/// The response future of [`Client`](super::Client): the whole request, from the wait for
/// the first place in the rate limiter to the last attempt's response.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    state: State,
    /// The request's time limit (its own or the client's `timeout`) and when it runs out,
    /// once the request was accepted.
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    /// Attempts started, counted when there is a time limit (its error says how many).
    attempts: Option<AttemptCount>,
}

/// Counts the attempts of one request (a request extension, bumped by the stack per attempt).
#[derive(Clone, Debug, Default)]
pub(crate) struct AttemptCount(Arc<AtomicU32>);

impl AttemptCount {
    /// Counts one more attempt.
    pub(crate) fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

enum State {
    Refused(Option<BoxError>),
    /// Going through this request's copy of the stack: its readiness (a place in the rate
    /// limiter, an in-flight slot), then the call.
    Sending {
        future: Sending,
        shared: Arc<Shared>,
    },
    Done,
}

impl ResponseFuture {
    pub(super) fn refused(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Refused(Some(error)),
            deadline: None,
            attempts: None,
        }
    }

    pub(super) fn send(mut request: Request<Body>, shared: Arc<Shared>) -> Self {
        let own = request.extensions().get::<RequestTimeout>().map(|t| t.0);
        let timeout = match (own, shared.timeout) {
            (Some(own), Some(client)) => Some(own.min(client)),
            (own, client) => own.or(client),
        };
        // NOTE: a limit too far away to be an `Instant` (`Duration::MAX`) is no limit.
        let ends = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let attempts = ends.map(|_| AttemptCount::default());
        if let Some(attempts) = &attempts {
            request.extensions_mut().insert(attempts.clone());
        }
        if let Some(ends) = ends {
            within_deadline(&mut request, ends);
        }
        let future = shared.stack.send(request);
        ResponseFuture {
            state: State::Sending { future, shared },
            deadline: ends
                .zip(timeout)
                .map(|(at, after)| (Box::pin(tokio::time::sleep_until(at)), after)),
            attempts,
        }
    }

    fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        match &mut self.state {
            State::Refused(error) => Poll::Ready(Err(error.take().unwrap_or_else(done))),
            State::Sending { future, .. } => future.as_mut().poll(cx),
            State::Done => Poll::Ready(Err(done())),
        }
    }
}

/// Tells the retry layer the client's deadline, so it never begins a retry (nor a wait) the
/// deadline would cut short, and returns the last response instead.
fn within_deadline(request: &mut Request<Body>, ends: Instant) {
    let extensions = request.extensions_mut();
    // NOTE: a caller's own, earlier deadline stays in force.
    let deadline = extensions
        .get::<Deadline>()
        .map_or(ends, |own| own.instant().min(ends));
    extensions.insert(Deadline::at(deadline));
    // NOTE: a place past the deadline is refused at once rather than slept towards; a
    // caller's own bound relative to each attempt is kept as it is.
    match extensions.get::<MaxWait>().map(|own| own.deadline()) {
        None => {
            extensions.insert(MaxWait::until(deadline));
        }
        Some(Some(own)) => {
            extensions.insert(MaxWait::until(own.min(deadline)));
        }
        Some(None) => {}
    }
}

/// A refusal by the rate limiter whose bound was the request's time limit is the limit
/// running out (early: the place lies past it), not a `max_wait` the caller set.
fn past_the_limit(
    error: BoxError,
    ends: Instant,
    after: Duration,
    attempts: Option<&AttemptCount>,
) -> BoxError {
    let refusal = sources(&*error).find_map(|e| e.downcast_ref::<MaxWaitExceeded>());
    // NOTE: the bound is `MaxWait::until(ends)`, turned into a duration from the ask.
    let bound_was_the_limit =
        refusal.is_some_and(|r| r.asked_at() + r.max_wait() + Duration::from_millis(1) >= ends);
    if !bound_was_the_limit {
        return error;
    }
    let mut timed_out = TimedOut::new(after);
    timed_out.attempts = attempts.map_or(0, AttemptCount::get);
    timed_out.cause = Some(Arc::from(error));
    timed_out.into()
}

fn done() -> BoxError {
    "calm::ResponseFuture polled after it completed".into()
}

impl Future for ResponseFuture {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let outcome = match this.poll_state(cx) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                let expired = match &mut this.deadline {
                    Some((deadline, after)) => {
                        deadline.as_mut().poll(cx).is_ready().then_some(*after)
                    }
                    None => None,
                };
                let Some(after) = expired else {
                    return Poll::Pending;
                };
                let mut timed_out = TimedOut::new(after);
                timed_out.attempts = this.attempts.as_ref().map_or(0, AttemptCount::get);
                // NOTE: INFO, like the retry layer's early returns: the caller gets a typed
                // error it asked for, but the request did not complete.
                tracing::info!(
                    timeout = ?after,
                    calm.attempts = timed_out.attempts,
                    "request cut by its timeout"
                );
                Err(timed_out.into())
            }
        };
        let outcome = match (outcome, &this.deadline) {
            (Err(error), Some((deadline, after))) => Err(past_the_limit(
                error,
                deadline.deadline(),
                *after,
                this.attempts.as_ref(),
            )),
            (outcome, _) => outcome,
        };
        // NOTE: the limit covers the body too: it keeps running while the body is read.
        let outcome = match (outcome, this.deadline.take()) {
            (Ok(response), Some((deadline, after))) => {
                Ok(response.map(|body| body.with_deadline(deadline, after)))
            }
            (outcome, _) => outcome,
        };
        match std::mem::replace(&mut this.state, State::Done) {
            State::Sending { shared, .. } => {
                shared.recorder.finished(&outcome);
            }
            State::Refused(_) | State::Done => {}
        }
        Poll::Ready(outcome)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Refused(_) => "refused",
            State::Sending { .. } => "sending",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
