//! The future a [`Client`](super::Client) returns.

use super::{Shared, Stack};
use crate::Body;
use calm_retry::RetryPolicy;
use http::{Request, Response};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tower::timeout::error::Elapsed;
use tower::{BoxError, Service, ServiceExt};

type Sending = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

/// The response future of [`Client`](super::Client): the whole request, first attempt to last.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    state: State,
}

enum State {
    Refused(Option<BoxError>),
    Sending(Sending),
}

impl ResponseFuture {
    pub(super) fn refused(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Refused(Some(error)),
        }
    }

    pub(super) fn send(stack: Stack, request: Request<Body>, shared: Arc<Shared>) -> Self {
        ResponseFuture {
            state: State::Sending(Box::pin(send(stack, request, shared))),
        }
    }
}

async fn send(
    mut stack: Stack,
    request: Request<Body>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, BoxError> {
    let started = Instant::now();
    let whole = async {
        // NOTE: readiness is driven here, not in `Client::poll_ready`, so that the wait for the
        // first place in the rate limiter counts against the deadline.
        let ready = stack.ready().await?;
        let request = within_deadline(request, &shared, started);
        ready.call(request).await
    };
    let result = match shared.deadline {
        Some(deadline) => tokio::time::timeout(deadline, whole)
            .await
            .unwrap_or_else(|_| Err(Elapsed::new().into())),
        None => whole.await,
    };
    shared.recorder.finished(&result);
    result
}

/// Gives the retry layer what is left of the client's deadline once the first place is
/// taken, so it never begins a wait the deadline would cut short.
fn within_deadline(mut request: Request<Body>, shared: &Shared, started: Instant) -> Request<Body> {
    if let Some(deadline) = shared.deadline {
        let left = deadline.saturating_sub(started.elapsed());
        let policy = request
            .extensions()
            .get::<RetryPolicy>()
            .unwrap_or(&shared.retry)
            .clone()
            .deadline(left);
        request.extensions_mut().insert(policy);
    }
    request
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Refused(error) => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion"))),
            State::Sending(sending) => sending.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Refused(_) => "refused",
            State::Sending(_) => "sending",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
