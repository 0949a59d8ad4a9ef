//! Run with: cargo run --example requests_port [-- --rpm N]
//!
//! A faithful port of the classic Python API loop — one `requests.Session` per base URL from
//! a singleton manager, urllib3's `Retry(total=3, backoff_factor=1,
//! status_forcelist=[429, 503])`, a `RateLimiter(requests_per_minute=60)` and 100 GETs
//! printing each status — with each piece of the Python shown next to its calm equivalent.
//!
//! The API is calm-mock on 127.0.0.1, scripted to answer a few `503`s and a `429` with
//! `Retry-After: 1`, so the output shows retries and their waits (urllib3's schedule: 0 s,
//! then 2 s).
//!
//! `--rpm N` sets the requests per minute. The default, 1200, runs the loop in about 8 s
//! (5 s of pacing plus the scripted waits); `--rpm 60`, the Python's value, takes the real
//! 100 s or so.

use std::num::NonZeroU32;

use calm::retry::WaitSource;
use calm::{Backoff, Quota, Registry, RetryPolicy};
use calm_mock::{MockApi, Reply};
use http::StatusCode;
use tokio::time::Instant;
use tower::BoxError;

const PAGES: u32 = 100;
const DEFAULT_RPM: NonZeroU32 = NonZeroU32::new(1200).unwrap();

/// ```python
/// class RateLimiter:
///     def __init__(self, requests_per_minute):
///         self.interval = 60.0 / requests_per_minute
///         self.lock = threading.Lock()
///         self.next_time = time.monotonic()
///
///     def wait(self):
///         with self.lock:
///             now = time.monotonic()
///             if now < self.next_time:
///                 time.sleep(self.next_time - now)
///             self.next_time = max(now, self.next_time) + self.interval
///
/// limiter = RateLimiter(requests_per_minute=60)
/// ```
///
/// In calm the quota belongs to the client of the base URL, below the retries: every retry
/// waits for its place like a first try. (The Python limiter paces first tries only; urllib3's
/// retries go straight out.)
fn quota(requests_per_minute: NonZeroU32) -> Quota {
    Quota::per_minute(requests_per_minute)
}

/// ```python
/// retry = Retry(total=3, backoff_factor=1, status_forcelist=[429, 503])
/// ```
///
/// Same schedule (no wait before the first retry, then 2 s, 4 s), same idempotent methods,
/// `Retry-After` honored the same way. One difference: when the retries run out, urllib3
/// raises `RetryError`; calm returns the last `503` as the response it is.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(3)
        .backoff(Backoff::urllib3(1.0))
        .retry_on_status([
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ])
}

/// ```python
/// class SessionManager:
///     _instance = None
///     _lock = threading.Lock()
///
///     def __new__(cls):
///         with cls._lock:
///             if cls._instance is None:
///                 cls._instance = super().__new__(cls)
///                 cls._instance.sessions = {}
///             return cls._instance
///
///     def get_session(self, base_url):
///         with self._lock:
///             if base_url not in self.sessions:
///                 session = requests.Session()
///                 adapter = HTTPAdapter(max_retries=retry)
///                 session.mount("http://", adapter)
///                 session.mount("https://", adapter)
///                 self.sessions[base_url] = session
///             return self.sessions[base_url]
/// ```
///
/// `calm::Registry::set_global` installs the process-wide registry once, at start-up;
/// [`calm::shared`] is `SessionManager().get_session(base_url)`. Equivalent spellings of a
/// base URL share one client, and the configuration runs once per base URL even when many
/// tasks ask at the same moment.
fn install_session_manager(requests_per_minute: NonZeroU32) -> Result<(), BoxError> {
    let registry = Registry::new(move |builder| {
        builder
            .retry(retry_policy())
            .rate_limit(quota(requests_per_minute))
    });
    Registry::set_global(registry).map_err(|_| "the global registry was already in use".into())
}

/// ```python
/// for i in range(100):
///     limiter.wait()
///     session = SessionManager().get_session(BASE_URL)
///     response = session.get(f"{BASE_URL}/items", params={"page": i})
///     print(i, response.status_code)
/// ```
///
/// There is no `limiter.wait()`: the client for the base URL paces every attempt itself, and
/// `calm::shared` on a known base URL is a cheap lookup (no write lock, no allocation). The
/// retries of each response are printed after its status.
async fn fetch_all_pages(base_url: &str) -> Result<(), BoxError> {
    for i in 0..PAGES {
        let session = calm::shared(base_url)?;
        let response = session.get(format!("/items?page={i}")).send().await?;
        print!("{i} {}", response.status().as_u16());
        for retry in response.retry_info().map_or(&[][..], |info| info.retries()) {
            let source = match retry.wait_source() {
                WaitSource::RetryAfter => "Retry-After",
                _ => "backoff",
            };
            print!(
                "    retried after {}, waited {:.1} s ({source})",
                retry.reason(),
                retry.wait().as_secs_f64()
            );
        }
        println!();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let rpm = requests_per_minute()?;

    let api = MockApi::start().await;
    api.script("/v1/items", script());
    // BASE_URL = "https://api.example.com/v1"
    let base_url = api.url("/v1");

    install_session_manager(rpm)?;
    println!("GET {base_url}/items?page=0..{PAGES} at {rpm} requests per minute\n");

    let started = Instant::now();
    fetch_all_pages(&base_url).await?;
    let elapsed = started.elapsed();

    let stats = calm::shared(&base_url)?.stats();
    println!("\nrequests        {}", stats.requests);
    println!("attempts        {}", stats.attempts);
    for (reason, n) in &stats.retries_by_reason {
        println!("  retries after {reason}: {n}");
    }
    println!("429s received   {}", stats.responses_429);
    println!("paced for       {:.1?}", stats.rate_limit_wait);
    println!("elapsed         {elapsed:.1?}");
    println!(
        "server saw      {} requests over {} connection(s)",
        api.request_count(),
        api.connections()
    );
    Ok(())
}

/// The mock's answers, in order of arrival: `200` for every page, with a few failures first.
/// A retried page takes the next answer.
fn script() -> Vec<Reply> {
    let mut replies = Vec::new();
    for page in 0..PAGES {
        match page {
            12 => replies.push(Reply::status(503)),
            40 => replies.push(Reply::status(429).header("retry-after", 1)),
            71 => replies.extend([Reply::status(503), Reply::status(503)]),
            _ => {}
        }
        replies.push(
            Reply::ok()
                .header("content-type", "application/json")
                .body(format!(r#"{{"page":{page},"items":[]}}"#)),
        );
    }
    replies
}

/// `--rpm N` (or `--rpm=N`), default [`DEFAULT_RPM`].
fn requests_per_minute() -> Result<NonZeroU32, BoxError> {
    let usage = "usage: requests_port [--rpm N]";
    let mut args = std::env::args().skip(1);
    let mut rpm = DEFAULT_RPM;
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--rpm") {
            Some("") => args.next().ok_or(usage)?,
            Some(value) if value.starts_with('=') => value[1..].to_owned(),
            _ => return Err(format!("unknown argument {arg:?}; {usage}").into()),
        };
        rpm = value
            .parse()
            .map_err(|_| format!("--rpm wants a positive whole number, not {value:?}"))?;
    }
    Ok(rpm)
}
