//! Shared, retrying, paced [tower] clients for rate-limited HTTP APIs.
//!
//! # Overview
//!
//! A program that calls the same API again and again needs three things, each with one owner:
//!
//! | concern  | layer | answers |
//! |----------|-------|---------|
//! | reuse    | [`SharedClientLayer`] | where requests go, with which default headers, over one connection pool |
//! | recovery | [`RetryLayer`] | what happens after a temporary failure (429, 503, connection errors) |
//! | pacing   | [`RateLimitLayer`] | how fast requests may be sent at all, shared by every task and clone |
//!
//! [`Client`] composes them, in that order, over calm's hyper-util + rustls transport (or any
//! service you give it) into one cheap, cloneable [`tower::Service`] per base URL, and a
//! [`Registry`] caches one client per base URL so every part of a program shares it.
//!
//! The layers are also usable on their own, over any `Service<http::Request<B>>`: see the
//! member crates re-exported here, [`client`], [`retry`], [`ratelimit`] and [`registry`].
//!
//! # Example
//!
//! ```
//! use calm::{Quota, Registry, RetryPolicy};
//! use std::num::NonZeroU32;
//!
//! # tokio_test::block_on(async {
//! # let api = calm_mock::MockApi::start().await;
//! # let base = api.base_url();
//! // One configuration for every API this program talks to.
//! let registry = Registry::new(|builder| {
//!     builder
//!         .rate_limit(Quota::per_second(NonZeroU32::new(50).unwrap()))
//!         .retry(RetryPolicy::default().max_retries(3))
//! });
//!
//! // Anywhere in the program: the same client (pool, pace, retry budget) for this base URL.
//! let client = registry.get(&base)?;
//! let response = client.get("/users?page=2").send().await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.retry_info().unwrap().attempts(), 1);
//! # Ok::<(), tower::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Feature flags
//!
//! - `json` (default): [`RequestBuilder::json`] and [`Response::json`] with serde.
//! - `form` (default): [`RequestBuilder::query`] and [`RequestBuilder::form`] with
//!   serde_urlencoded.
//! - `gzip`, `brotli`, `zstd`, `deflate` (default): the transport asks for and decodes
//!   these encodings (zstd builds libzstd from C).
//! - `redis`: `calm::redis` (the calm-ratelimit-redis crate), a [`Limiter`] whose quota and
//!   pauses live in Redis, shared by every process that uses it. Needs Rust 1.88.
//! - `metrics`: records what [`metrics`] lists through the `metrics` crate's facade, for any
//!   exporter (Prometheus, OpenTelemetry, statsd).
//!
//! # Seeing what calm does
//!
//! **Spans** ([`tracing`]), after the OpenTelemetry HTTP client conventions: each request gets
//! one INFO span `calm.request` for the logical request and, under it, one DEBUG span per
//! attempt, named by the method (`GET`, `POST`, …) with `otel.kind = "client"`. Both carry
//! `http.request.method`, `server.address`, `server.port`, `url.full`,
//! `http.response.status_code` and `error.type`; an attempt that is a retry carries
//! `http.request.resend_count` (1, 2, …), `calm.retry.reason`, `calm.retry.wait` (seconds)
//! and `calm.retry.wait_source` (`backoff` / `retry-after`), and every attempt that waited for
//! the rate limiter `calm.rate_limit.wait` (seconds). The request span ends with
//! `calm.attempts` and, when a retry was wanted but not made, `calm.retry.stop`. The full table
//! is in [`retry::trace`].
//!
//! **Events**, at levels chosen so that a default INFO subscriber shows what an operator must
//! know and nothing else:
//!
//! | event | level | why that level |
//! |---|---|---|
//! | a server hint paused every caller (host, pause, header, value) | WARN | the API says the quota is spent: every request waits |
//! | the shared retry budget is spent | WARN | retries are being shed across every clone |
//! | Redis unreachable: the fallback is in force / Redis answers again | WARN / INFO | one quota for many processes is not shared meanwhile |
//! | `max_wait` refusal (host, the wait it would have taken) | INFO | the caller asked for this bound and gets a typed error; a request was not sent |
//! | a `Retry-After` above the cap, a retry past the deadline: the response comes back early | INFO | nothing broke, but the caller gets a failure a retry might have fixed |
//! | a request cut by its [`timeout`](ClientBuilder::timeout) | INFO | the caller gets the typed error it asked for, but the request did not complete |
//! | retry scheduled (reason, wait, its source) | DEBUG | routine: the span tree shows it too |
//! | a wait for the rate limiter of [`ratelimit::LOGGED_WAIT`] or more | DEBUG | pacing is the limiter doing its job |
//! | a malformed quota or `Retry-After` hint, ignored | DEBUG | the server's mistake, handled |
//!
//! No field, message or `Debug` output ever holds a credential or a URL's userinfo, nor (unless
//! [`ClientBuilder::trace_url_query`] says so) a query string: `url.full` shows it as `?***`.
//!
//! **Readable state**: `{:?}` of a [`Client`] shows its base URL, quotas, queue and pause;
//! of a [`ratelimit::Snapshot`] and of [`Stats`], instants relative to the snapshot
//! (`next_free: in 1.2s`, `paused: 29.8s left`) and durations to the millisecond.
//!
//! `examples/observe.rs` runs a scripted scenario with a `tracing-subscriber` and prints what
//! it recorded.

mod api;
mod body;
pub mod error;
mod request;
mod response;
mod shared_registry;
mod stats;

/// The metrics calm records, with the cargo feature `metrics`, through the
/// [`metrics`](https://docs.rs/metrics) facade: install any recorder (a Prometheus exporter,
/// an OpenTelemetry bridge) and they appear. Names follow OpenTelemetry's style.
///
/// | name | kind | unit | labels | recorded by |
/// |---|---|---|---|---|
/// | `http.client.request.duration` | histogram | seconds | `http.request.method`, `server.address`, `http.response.status_class` | the retry layer, once per logical request (waits, attempts and backoffs included) |
/// | `http.client.active_requests` | gauge | requests | `http.request.method`, `server.address` | the retry layer |
/// | `calm.http.client.attempts` | counter | attempts | `http.request.method`, `server.address` | the retry layer |
/// | `calm.http.client.retries` | counter | retries | `server.address`, `calm.retry.reason` | the retry layer |
/// | `calm.rate_limit.wait.duration` | histogram | seconds | `server.address` | the rate limiter, per request that got its place |
/// | `calm.rate_limit.queued` | gauge | requests | `server.address` | the rate limiter |
/// | `calm.rate_limit.refusals` | counter | requests | `server.address` | the rate limiter (`max_wait`) |
/// | `calm.rate_limit.pauses` | counter | pauses | `server.address`, `calm.rate_limit.header` | the rate limiter (server hints) |
/// | `calm.rate_limit.learned_rate` | gauge | requests per second | `server.address` | an adaptive rate limiter, when its rate changes |
///
/// The details are in [`retry::metrics`] and [`ratelimit::metrics`].
pub mod metrics {
    pub use calm_ratelimit::metrics::names::*;
    pub use calm_retry::metrics::names::*;
}

pub use api::{Client, ClientBuilder, ResponseFuture};
pub use body::Body;
pub use error::{BuildError, BuildErrorKind, Error, ErrorKind};
pub use request::RequestBuilder;
pub use response::Response;
pub use shared_registry::{shared, Registry};
pub use stats::Stats;

#[doc(inline)]
pub use calm_client as client;
#[doc(inline)]
pub use calm_ratelimit as ratelimit;
#[cfg(feature = "redis")]
#[doc(inline)]
pub use calm_ratelimit_redis as redis;
#[doc(inline)]
pub use calm_registry as registry;
#[doc(inline)]
pub use calm_retry as retry;

#[doc(no_inline)]
pub use calm_client::transport::{TransportError, TransportErrorKind};
#[doc(no_inline)]
pub use calm_client::{BaseUrl, SharedClientLayer};
#[doc(no_inline)]
pub use calm_ratelimit::error::MaxWaitExceeded;
#[doc(no_inline)]
pub use calm_ratelimit::{Limiter, MaxWait, Quota, RateLimitLayer, Snapshot};
#[doc(no_inline)]
pub use calm_retry::error::RetryError;
#[doc(no_inline)]
pub use calm_retry::{
    Backoff, Jitter, RetryInfo, RetryLayer, RetryPolicy, RetryReason, StopReason,
};
