//! What a [`Client`](crate::Client) has done so far.

use crate::retry::{RetryInfo, RetryReason};
use std::collections::HashMap;
use std::fmt;
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
/// // `Debug` is for people: retries by reason, durations to the millisecond.
/// assert_eq!(
///     format!("{stats:?}"),
///     "Stats { requests: 2, attempts: 2, retries: {}, responses_429: 0, errors: 0, \
///      rate_limit_wait: 0ns, rate_limit_waits: 0, redirects: 0, server_pauses: 0, \
///      learned_rate: none }",
/// );
/// # });
/// ```
#[derive(Clone, Default, PartialEq)]
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
    /// The rate an adaptive rate limiter paces at now, per second
    /// ([`ClientBuilder::adaptive_rate`](crate::ClientBuilder::adaptive_rate)); `None`
    /// without one.
    pub learned_rate: Option<f64>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retries = DebugMap(&self.retries_by_reason);
        let waited = to_millis(self.rate_limit_wait);
        f.debug_struct("Stats")
            .field("requests", &self.requests)
            .field("attempts", &self.attempts)
            .field("retries", &retries)
            .field("responses_429", &self.responses_429)
            .field("errors", &self.errors)
            .field("rate_limit_wait", &waited)
            .field("rate_limit_waits", &self.rate_limit_waits)
            .field("redirects", &self.redirects)
            .field("server_pauses", &self.server_pauses)
            .field(
                "learned_rate",
                &format_args!("{}", LearnedRate(self.learned_rate)),
            )
            .finish()
    }
}

/// `d` to the millisecond, so `Debug` shows `1.2s` rather than `1.199999871s`.
pub(crate) fn to_millis(d: Duration) -> Duration {
    let millis = d.as_micros().saturating_add(500) / 1000;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A learned rate as `37.2/s`, or `none`.
pub(crate) struct LearnedRate(pub(crate) Option<f64>);

impl fmt::Display for LearnedRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(rate) => write!(f, "{rate:.1}/s"),
            None => f.write_str("none"),
        }
    }
}

/// Retries by reason as `{"status 503": 2, "connect error": 1}`.
struct DebugMap<'a>(&'a [(RetryReason, u64)]);

impl fmt::Debug for DebugMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(reason, n)| (reason.to_string(), n)))
            .finish()
    }
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
            learned_rate: None,
        }
    }
}
