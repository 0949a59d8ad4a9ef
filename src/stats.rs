//! What a [`Client`](crate::Client) has done so far.

use crate::retry::{RetryInfo, RetryReason};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one client (and all its clones), read with [`Client::stats`](crate::Client::stats).
///
/// ```
/// # tokio_test::block_on(async {
/// let client = calm::Client::builder("http://api.test")
///     .build_with(tower::service_fn(|_req: http::Request<calm::Body>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
///     }))
///     .unwrap();
/// client.get("/a").send().await.unwrap();
/// client.get("/b").send().await.unwrap();
/// let stats = client.stats();
/// assert_eq!(stats.requests, 2);
/// assert_eq!(stats.attempts, 2);
/// assert_eq!(stats.retries(), 0);
/// # });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests sent by callers (each counted once, however many attempts it took).
    pub requests: u64,
    /// Attempts that reached the transport: first tries and retries.
    pub attempts: u64,
    /// Retries made, by reason, most frequent first.
    pub retries_by_reason: Vec<(RetryReason, u64)>,
    /// Responses with status 429 received from the server (on any attempt).
    pub responses_429: u64,
    /// Requests that ended in an error rather than a response.
    pub errors: u64,
    /// Total time requests spent waiting for the rate limiter (zero without one).
    pub rate_limit_wait: Duration,
    /// Requests that had to wait for the rate limiter.
    pub rate_limit_waits: u64,
    /// Redirect hops followed (each to the API's origin took its place in the rate limiter).
    pub redirects: u64,
    /// Times a server hint (`Retry-After`, quota headers) paused every caller of the rate
    /// limiter (zero without one).
    pub server_pauses: u64,
}

impl Stats {
    /// All retries, whatever their reason.
    pub fn retries(&self) -> u64 {
        self.retries_by_reason.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    requests: AtomicU64,
    attempts: AtomicU64,
    responses_429: AtomicU64,
    errors: AtomicU64,
    redirects: AtomicU64,
    retries: Mutex<HashMap<RetryReason, u64>>,
}

impl Recorder {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn attempt(&self, status: Option<http::StatusCode>) {
        self.attempts.fetch_add(1, Relaxed);
        if status == Some(http::StatusCode::TOO_MANY_REQUESTS) {
            self.responses_429.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn redirect(&self) {
        self.redirects.fetch_add(1, Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn finished(&self, result: &Result<http::Response<crate::Body>, tower::BoxError>) {
        let info = match result {
            Ok(response) => response.extensions().get::<RetryInfo>(),
            Err(error) => {
                self.errors.fetch_add(1, Relaxed);
                error
                    .downcast_ref::<crate::retry::error::RetryError>()
                    .and_then(|error| error.info())
            }
        };
        let Some(info) = info.filter(|info| !info.retries().is_empty()) else {
            return;
        };
        let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        for record in info.retries() {
            *retries.entry(record.reason()).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut retries_by_reason: Vec<_> = self
            .retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(reason, n)| (*reason, *n))
            .collect();
        retries_by_reason.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
        });
        Stats {
            requests: self.requests.load(Relaxed),
            attempts: self.attempts.load(Relaxed),
            retries_by_reason,
            responses_429: self.responses_429.load(Relaxed),
            errors: self.errors.load(Relaxed),
            rate_limit_wait: Duration::ZERO,
            rate_limit_waits: 0,
            redirects: self.redirects.load(Relaxed),
            server_pauses: 0,
        }
    }
}
