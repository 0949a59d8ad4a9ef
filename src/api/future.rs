//! The future a [`Client`](super::Client) returns.

use super::{Shared, Stack};
use crate::error::TimedOut;
use crate::request::RequestTimeout;
use crate::Body;
use calm_ratelimit::MaxWait;
use calm_retry::Deadline;
use http::{Request, Response};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Service};

type Outcome = Result<Response<Body>, BoxError>;

/// The response future of [`Client`](super::Client): the whole request, from the wait for
/// the first place in the rate limiter to the last attempt's response.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    state: State,
    /// The request's time limit (its own or the client's `timeout`) and when it runs out,
    /// once the request was accepted.
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
}

// NOTE: `Ready` holds the request by value; boxing it would cost an allocation per request to
// shrink a future that is moved only a few times.
#[allow(clippy::large_enum_variant)]
enum State {
    Refused(Option<BoxError>),
    /// Waiting for this request's copy of the stack to be ready (its place in the rate
    /// limiter, an in-flight slot).
    Ready {
        stack: Stack,
        request: Option<Request<Body>>,
        shared: Arc<Shared>,
        /// When the client's deadline passes, if it has one.
        ends: Option<Instant>,
    },
    Called {
        future: <Stack as Service<Request<Body>>>::Future,
        shared: Arc<Shared>,
    },
    Done,
}

impl ResponseFuture {
    pub(super) fn refused(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Refused(Some(error)),
            deadline: None,
        }
    }

    pub(super) fn send(stack: Stack, request: Request<Body>, shared: Arc<Shared>) -> Self {
        let own = request.extensions().get::<RequestTimeout>().map(|t| t.0);
        let timeout = match (own, shared.timeout) {
            (Some(own), Some(client)) => Some(own.min(client)),
            (own, client) => own.or(client),
        };
        // NOTE: a limit too far away to be an `Instant` (`Duration::MAX`) is no limit.
        let ends = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        ResponseFuture {
            state: State::Ready {
                stack,
                request: Some(request),
                shared,
                ends,
            },
            deadline: ends
                .zip(timeout)
                .map(|(at, after)| (Box::pin(tokio::time::sleep_until(at)), after)),
        }
    }

    fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            match &mut self.state {
                State::Refused(error) => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(done)));
                }
                State::Ready {
                    stack,
                    request,
                    shared,
                    ends,
                } => {
                    if let Err(error) = ready!(stack.poll_ready(cx)) {
                        return Poll::Ready(Err(error));
                    }
                    let request = within_deadline(request.take().ok_or_else(done)?, *ends);
                    self.state = State::Called {
                        future: stack.call(request),
                        shared: Arc::clone(shared),
                    };
                }
                State::Called { future, .. } => return future.as_mut().poll(cx),
                State::Done => return Poll::Ready(Err(done())),
            }
        }
    }
}

/// Tells the retry layer the client's deadline, so it never begins a retry (nor a wait) the
/// deadline would cut short, and returns the last response instead.
fn within_deadline(mut request: Request<Body>, ends: Option<Instant>) -> Request<Body> {
    if let Some(ends) = ends {
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
    request
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
                Err(TimedOut { after }.into())
            }
        };
        // NOTE: the limit covers the body too: it keeps running while the body is read.
        let outcome = match (outcome, this.deadline.take()) {
            (Ok(response), Some((deadline, after))) => {
                Ok(response.map(|body| body.with_deadline(deadline, after)))
            }
            (outcome, _) => outcome,
        };
        match std::mem::replace(&mut this.state, State::Done) {
            State::Ready { shared, .. } | State::Called { shared, .. } => {
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
            State::Ready { .. } => "waiting for the stack",
            State::Called { .. } => "sending",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
