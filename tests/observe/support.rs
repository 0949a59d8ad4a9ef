//! A scripted in-memory API, so spans, events and metrics come out the same on paused time.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use calm::Body;
use http::{Request, Response, StatusCode};

/// The bearer token the clients send: it must never show.
pub(crate) const TOKEN: &str = "s3cr3t-t0ken";
/// A query value: it must not show unless asked for.
pub(crate) const QUERY_SECRET: &str = "QUERY-SECRET";
pub(crate) const BASE: &str = "http://api.test:8080/v1";

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn per_second(n: u32) -> calm::Quota {
    calm::Quota::per_second(std::num::NonZeroU32::new(n).expect("a non-zero quota"))
}

/// Runs the tests of this binary one at a time.
///
/// NOTE: `tracing` caches each call site's interest globally. A test that registers a call
/// site while another installs its thread's subscriber can leave a stale "never" behind, and
/// the other test then sees no span; one at a time, every new subscriber rebuilds the cache.
///
/// Each test holds it across its awaits on purpose: every test runs its own current-thread
/// runtime on its own thread, so a test waiting for it blocks only itself.
pub(crate) fn serial() -> Serial {
    static SERIAL: Mutex<()> = Mutex::new(());
    Serial(SERIAL.lock().unwrap_or_else(PoisonError::into_inner))
}

/// One test's turn; the next waits until it is dropped.
pub(crate) struct Serial(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

/// One scripted answer: a status and its headers.
pub(crate) type Answer = (u16, &'static [(&'static str, &'static str)]);

type Sending = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

/// Answers with `answers` in order, then 200 for ever.
pub(crate) fn scripted(
    answers: impl IntoIterator<Item = Answer>,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<String>,
    Error = Infallible,
    Future = Sending,
> + Clone
       + Send
       + Sync
       + 'static {
    let answers: Arc<Mutex<VecDeque<Answer>>> = Arc::new(Mutex::new(answers.into_iter().collect()));
    tower::service_fn(move |_req: Request<Body>| {
        let answer = answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .unwrap_or((200, &[]));
        Box::pin(async move {
            let mut response = Response::new(String::from("ok"));
            *response.status_mut() = StatusCode::from_u16(answer.0).expect("a valid status");
            for (name, value) in answer.1 {
                response
                    .headers_mut()
                    .insert(*name, value.parse().expect("a valid header value"));
            }
            Ok(response)
        }) as Sending
    })
}

/// Answers 200 after 10 s: longer than any test waits for it.
pub(crate) fn stalled() -> impl tower::Service<
    Request<Body>,
    Response = Response<String>,
    Error = Infallible,
    Future = Sending,
> + Clone
       + Send
       + Sync
       + 'static {
    tower::service_fn(|_req: Request<Body>| {
        Box::pin(async {
            tokio::time::sleep(ms(10_000)).await;
            Ok(Response::new(String::new()))
        }) as Sending
    })
}
