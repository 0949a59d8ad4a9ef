//! The server-side quota: fixed windows counted from server start.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::HeaderMap;
use tokio::time::Instant;

/// How a [`MockApi`](crate::MockApi) in quota mode describes its quota in response headers.
///
/// Every response in quota mode carries these headers (a header the script already set is
/// left alone); 429 answers also carry `Retry-After` in whole seconds, rounded up. Chosen
/// with [`MockApiBuilder::quota_headers`](crate::MockApiBuilder::quota_headers).
///
/// With a quota of 10 per second, 3 requests left and 340 ms to the end of the window:
///
/// | style | headers |
/// |-------|---------|
/// | [`XRateLimit`](QuotaHeaders::XRateLimit) | `X-RateLimit-Limit: 10`, `X-RateLimit-Remaining: 3`, `X-RateLimit-Reset: 340ms` |
/// | [`XRateLimitEpoch`](QuotaHeaders::XRateLimitEpoch) | `X-RateLimit-Limit: 10`, `X-RateLimit-Remaining: 3`, `X-RateLimit-Reset: 1767225600` |
/// | [`Ietf`](QuotaHeaders::Ietf) | `RateLimit: "default";r=3;t=1`, `RateLimit-Policy: "default";q=10;w=1` |
/// | [`None`](QuotaHeaders::None) | none |
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use std::time::Duration;
/// use calm_mock::{MockApi, QuotaHeaders};
///
/// let api = MockApi::builder()
///     .quota(10, Duration::from_secs(1))
///     .quota_headers(QuotaHeaders::XRateLimit) // the default
///     .start()
///     .await;
/// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
///
/// let res = client.get(api.url("/").parse().unwrap()).await.unwrap();
/// assert_eq!(res.headers()["x-ratelimit-limit"], "10");
/// assert_eq!(res.headers()["x-ratelimit-remaining"], "9");
/// let reset = res.headers()["x-ratelimit-reset"].to_str().unwrap();
/// let ms: u64 = reset.strip_suffix("ms").unwrap().parse().unwrap();
/// assert!((1..=1000).contains(&ms), "{reset}");
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaHeaders {
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, and `X-RateLimit-Reset` as the time to
    /// the end of the window in milliseconds, rounded up, with an `ms` suffix (`340ms`).
    #[default]
    XRateLimit,
    /// Like [`XRateLimit`](QuotaHeaders::XRateLimit), but `X-RateLimit-Reset` is the end of the
    /// window as Unix epoch seconds, rounded up (`1767225600`).
    XRateLimitEpoch,
    /// The IETF draft's structured fields: `RateLimit: "default";r=<remaining>;t=<seconds to
    /// reset, rounded up>` and `RateLimit-Policy: "default";q=<limit>;w=<period in seconds,
    /// rounded up>`.
    Ietf,
    /// No quota headers (429 answers still carry `Retry-After`).
    None,
    /// Nothing at all: a bare `429`, with neither quota headers nor `Retry-After`, as APIs
    /// that keep their quota to themselves answer.
    Silent,
}

/// Whether a request fits in the current window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    pub(crate) allowed: bool,
    pub(crate) remaining: u32,
    pub(crate) reset: Duration,
}

#[derive(Debug)]
pub(crate) struct QuotaState {
    style: QuotaHeaders,
    started: Instant,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    limit: u32,
    period: Duration,
    /// The window's index since `started`, and the requests admitted in it.
    index: u128,
    admitted: u32,
}

impl QuotaState {
    pub(crate) fn new(limit: u32, period: Duration, style: QuotaHeaders, started: Instant) -> Self {
        Self {
            style,
            started,
            window: Mutex::new(Window {
                limit,
                period: at_least_a_millisecond(period),
                index: 0,
                admitted: 0,
            }),
        }
    }

    /// From now on, `limit` per `period`; the current window keeps its count if the period
    /// stays (a new period starts windows anew at the next admission).
    pub(crate) fn set(&self, limit: u32, period: Duration) {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.limit = limit;
        window.period = at_least_a_millisecond(period);
    }

    /// The limit and period in force.
    pub(crate) fn get(&self) -> (u32, Duration) {
        let window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        (window.limit, window.period)
    }

    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(self.started).as_nanos();
        let period = window.period.as_nanos();
        let index = elapsed / period;
        let reset_nanos = period * (index + 1) - elapsed;
        let reset = Duration::from_nanos(u64::try_from(reset_nanos).unwrap_or(u64::MAX));

        if window.index != index {
            window.index = index;
            window.admitted = 0;
        }
        if window.admitted < window.limit {
            window.admitted += 1;
            Admission {
                allowed: true,
                remaining: window.limit - window.admitted,
                reset,
            }
        } else {
            Admission {
                allowed: false,
                remaining: 0,
                reset,
            }
        }
    }

    /// Adds the quota headers (and `Retry-After` when refused) unless the script set them.
    pub(crate) fn apply(&self, admission: &Admission, headers: &mut HeaderMap) {
        let mut put = |name: HeaderName, value: String| {
            if !headers.contains_key(&name) {
                if let Ok(value) = HeaderValue::try_from(value) {
                    headers.insert(name, value);
                }
            }
        };
        if self.style == QuotaHeaders::Silent {
            return;
        }
        if !admission.allowed {
            put(RETRY_AFTER, ceil_secs(admission.reset).to_string());
        }
        let (limit, period) = self.get();
        let remaining = admission.remaining;
        match self.style {
            QuotaHeaders::XRateLimit | QuotaHeaders::XRateLimitEpoch => {
                put(X_LIMIT, limit.to_string());
                put(X_REMAINING, remaining.to_string());
                let reset = if self.style == QuotaHeaders::XRateLimit {
                    format!("{}ms", ceil_millis(admission.reset))
                } else {
                    let at = SystemTime::now() + admission.reset;
                    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
                    ceil_secs(since).to_string()
                };
                put(X_RESET, reset);
            }
            QuotaHeaders::Ietf => {
                put(
                    RATELIMIT,
                    format!("\"default\";r={remaining};t={}", ceil_secs(admission.reset)),
                );
                put(
                    RATELIMIT_POLICY,
                    format!("\"default\";q={limit};w={}", ceil_secs(period)),
                );
            }
            QuotaHeaders::None | QuotaHeaders::Silent => {}
        }
    }
}

const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// A zero period would divide by zero; one millisecond is "no real limit".
fn at_least_a_millisecond(period: Duration) -> Duration {
    period.max(Duration::from_millis(1))
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn ceil_millis(d: Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
        assert_eq!(ceil_millis(Duration::from_micros(340_001)), 341);
        assert_eq!(ceil_millis(Duration::from_millis(340)), 340);
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_windows_from_start() {
        let start = Instant::now();
        let q = QuotaState::new(2, Duration::from_secs(1), QuotaHeaders::XRateLimit, start);
        let a = q.admit(start + Duration::from_millis(100));
        assert!(a.allowed);
        assert_eq!(a.remaining, 1);
        assert_eq!(a.reset, Duration::from_millis(900));
        assert!(q.admit(start + Duration::from_millis(200)).allowed);
        let refused = q.admit(start + Duration::from_millis(660));
        assert!(!refused.allowed);
        assert_eq!(refused.reset, Duration::from_millis(340));

        let mut h = HeaderMap::new();
        q.apply(&refused, &mut h);
        assert_eq!(h["retry-after"], "1");
        assert_eq!(h["x-ratelimit-limit"], "2");
        assert_eq!(h["x-ratelimit-remaining"], "0");
        assert_eq!(h["x-ratelimit-reset"], "340ms");

        let next = q.admit(start + Duration::from_millis(1000));
        assert!(next.allowed);
        assert_eq!(next.remaining, 1);
        assert_eq!(next.reset, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn ietf_and_none_styles() {
        let start = Instant::now();
        let q = QuotaState::new(10, Duration::from_millis(1500), QuotaHeaders::Ietf, start);
        let a = q.admit(start + Duration::from_millis(100));
        let mut h = HeaderMap::new();
        q.apply(&a, &mut h);
        assert_eq!(h["ratelimit"], "\"default\";r=9;t=2");
        assert_eq!(h["ratelimit-policy"], "\"default\";q=10;w=2");
        assert!(!h.contains_key("retry-after"));

        let q = QuotaState::new(0, Duration::from_secs(3), QuotaHeaders::None, start);
        let a = q.admit(start);
        assert!(!a.allowed);
        let mut h = HeaderMap::new();
        q.apply(&a, &mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["retry-after"], "3");
    }

    #[tokio::test(start_paused = true)]
    async fn script_headers_win() {
        let start = Instant::now();
        let q = QuotaState::new(1, Duration::from_secs(1), QuotaHeaders::XRateLimit, start);
        let a = q.admit(start);
        let mut h = HeaderMap::new();
        h.insert(X_REMAINING, HeaderValue::from_static("42"));
        q.apply(&a, &mut h);
        assert_eq!(h["x-ratelimit-remaining"], "42");
        assert_eq!(h["x-ratelimit-limit"], "1");
    }
}
