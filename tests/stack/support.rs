//! Helpers shared by the modules: an in-process backend that records what reaches it, and
//! shorthands for quotas and durations.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use calm::{Backoff, Body, Client, ClientBuilder, Quota, RetryPolicy};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::{BoxError, Service};

/// The base URL of the in-process tests.
pub(crate) const BASE: &str = "http://api.test/v1";

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).expect("a non-zero quota"))
}

pub(crate) fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).expect("a non-zero quota"))
}

/// The default policy retrying at once, so only the rate limiter spaces attempts.
pub(crate) fn immediate_retries() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::none())
}

/// A client builder for [`BASE`] with immediate retries.
pub(crate) fn builder() -> ClientBuilder {
    Client::builder(BASE).retry(immediate_retries())
}

/// An `http::Response<calm::Body>` with `status` and an empty body.
pub(crate) fn response(status: u16) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    response
}

/// What a [`Backend`] does with one request.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, &'static str)>,
    delay: Duration,
    action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Respond,
    Stall,
    Fail,
}

impl Answer {
    /// A response with `code` (the body is `ok` for 200, empty otherwise).
    pub(crate) fn status(code: u16) -> Answer {
        Answer {
            status: StatusCode::from_u16(code).expect("a valid status"),
            headers: Vec::new(),
            delay: Duration::ZERO,
            action: Action::Respond,
        }
    }

    pub(crate) fn ok() -> Answer {
        Answer::status(200)
    }

    /// Reads the request, then never answers.
    pub(crate) fn stall() -> Answer {
        Answer {
            action: Action::Stall,
            ..Answer::ok()
        }
    }

    /// Reads the request, then fails with [`Broken`] (as a transport would on a reset).
    pub(crate) fn fail() -> Answer {
        Answer {
            action: Action::Fail,
            ..Answer::ok()
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: &'static str) -> Answer {
        self.headers.push((name, value));
        self
    }

    /// Answers `delay` after the request was read.
    pub(crate) fn delay(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

/// The error a [`Backend`] fails with for [`Answer::fail`].
#[derive(Debug)]
pub(crate) struct Broken;

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by the test backend")
    }
}

impl std::error::Error for Broken {}

/// One request as a [`Backend`] received it.
#[derive(Clone, Debug)]
pub(crate) struct Arrival {
    /// When `call` was made, on tokio's clock.
    pub(crate) at: Instant,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A transport double: answers from a script (the last answer repeats; an empty script
/// answers 200), records every request with its whole body, and tracks how many requests are
/// in flight at once.
#[derive(Clone, Default)]
pub(crate) struct Backend {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Answer>>,
    arrivals: Mutex<Vec<Arrival>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Backend {
    pub(crate) fn new(script: impl IntoIterator<Item = Answer>) -> Backend {
        let backend = Backend::default();
        *lock(&backend.inner.script) = script.into_iter().collect();
        backend
    }

    /// Every request received so far, in order of `call`.
    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        let mut arrivals = lock(&self.inner.arrivals).clone();
        arrivals.sort_by_key(|a| a.at);
        arrivals
    }

    pub(crate) fn count(&self) -> usize {
        lock(&self.inner.arrivals).len()
    }

    /// The most requests that were in flight at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    fn next_answer(&self) -> Answer {
        let mut script = lock(&self.inner.script);
        match script.len() {
            0 => Answer::ok(),
            1 => script[0].clone(),
            _ => script.pop_front().expect("a non-empty script"),
        }
    }
}

/// Counts a request in flight until dropped (answered, failed or abandoned).
struct InFlight(Arc<Inner>);

impl InFlight {
    fn enter(inner: &Arc<Inner>) -> InFlight {
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(inner))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

impl Service<Request<Body>> for Backend {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> BoxFuture {
        let at = Instant::now();
        let answer = self.next_answer();
        let guard = InFlight::enter(&self.inner);
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let _guard = guard;
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            lock(&inner.arrivals).push(Arrival {
                at,
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            });
            if !answer.delay.is_zero() {
                tokio::time::sleep(answer.delay).await;
            }
            match answer.action {
                Action::Respond => {}
                Action::Stall => std::future::pending::<()>().await,
                Action::Fail => return Err(Broken.into()),
            }
            let body = if answer.status == StatusCode::OK {
                Body::from("ok")
            } else {
                Body::empty()
            };
            let mut response = Response::new(body);
            *response.status_mut() = answer.status;
            for (name, value) in answer.headers {
                response.headers_mut().append(name, value.parse()?);
            }
            Ok(response)
        })
    }
}
