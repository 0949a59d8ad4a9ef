//! Safe, budgeted HTTP retries for [tower] that honor `Retry-After` and replay streaming
//! bodies.
//!
//! # Overview
//!
//! [`RetryLayer`] wraps any `Service<http::Request<B>, Response = http::Response<R>>` — a
//! hyper-util client, calm's transport, an axum `Router` under test, a tower-test mock — in
//! [`Retry`], which sends a request again when the outcome is temporary and retrying is safe:
//!
//! - **Only what is safe**: idempotent methods on a retryable status (429, 502, 503, 504 by
//!   default) or a transport error; any method after a connect failure (never sent) or a 429
//!   (refused unprocessed); POST/PATCH carrying an `Idempotency-Key`; everything on opt-in.
//!   See [`RetryPolicy`].
//! - **Waits well**: exponential [`Backoff`] with a chosen [`Jitter`], capped, seedable; the
//!   preset [`Backoff::urllib3`] reproduces urllib3's schedule exactly.
//! - **Listens to the server**: `Retry-After` (delta-seconds or HTTP-date) replaces the
//!   backoff. A hint above [`max_retry_after`](RetryPolicy::max_retry_after), or one ending
//!   past the [`deadline`](RetryPolicy::deadline), is not slept on: the response comes back at
//!   once and [`StopReason::RetryAfterTooLong`] / [`StopReason::DeadlineExceeded`] carry the
//!   instant.
//! - **Bounded**: a [`RetryBudget`] shared by every clone of the layer (tower's `TpsBudget`)
//!   stops retry storms.
//! - **Replays streaming bodies**: `Clone` bodies are copied; [`ReplayBody`] (via
//!   [`ReplayBodyLayer`]) buffers any body lazily up to a cap (64 KiB); past it the request is
//!   sent once and not retried.
//! - **Says what it did**: every response carries a [`RetryInfo`] extension (attempts, the
//!   reason and wait of each retry, why it stopped); a final error is a
//!   [`RetryError`](error::RetryError) carrying the same. `tracing` debug events mark each
//!   retry.
//! - **Per-request override**: a [`RetryPolicy`] in the request's extensions replaces the
//!   layer's (`max_retries(0)` turns retries off for one call).
//!
//! The body of a response that will be retried is read while the layer waits (up to 16 KiB,
//! so its connection can be reused) and dropped. Every wait uses `tokio::time`, so tests run
//! whole schedules in no time with paused time.
//!
//! # Order
//!
//! Put `Retry` outside a rate limiter and per-attempt timeouts, so every attempt pays its
//! place: `Retry → RateLimit → Timeout → transport`. Put [`ReplayBodyLayer`] outside `Retry`.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
//! use std::time::Duration;
//! use calm_retry::{Backoff, RetryInfo, RetryLayer, RetryPolicy, RetryReason, StopReason};
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // A backend that is unavailable twice, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let backend = tower::service_fn(move |_req: Request<String>| {
//!     let n = calls.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         let mut res = Response::new(String::from("hello"));
//!         if n < 2 {
//!             *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
//!         }
//!         Ok::<_, tower::BoxError>(res)
//!     }
//! });
//!
//! let policy = RetryPolicy::default()
//!     .max_retries(3)
//!     .backoff(Backoff::exponential(Duration::from_millis(1)));
//! let svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy).expect("valid policy"))
//!     .service(backend);
//!
//! let res = svc.oneshot(Request::get("/v1/items").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//!
//! let info = res.extensions().get::<RetryInfo>().unwrap();
//! assert_eq!(info.attempts(), 3);
//! assert_eq!(info.retries()[0].reason(), RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE));
//! assert_eq!(info.stop_reason(), &StopReason::Succeeded);
//! # }
//! ```
//!
//! # Feature flags
//!
//! None: the crate depends on `http`, `http-body`, `tower`, `tokio` (time) and small helpers
//! only — no hyper — so it wraps any HTTP `Service`.
//!
//! [tower]: https://docs.rs/tower

pub mod body;
pub mod error;
pub mod follow_up;
pub mod future;
pub mod metrics;
pub mod retry_after;
pub mod trace;

mod backoff;
mod budget;
mod deadline;
mod info;
mod layer;
mod policy;
mod service;

pub use backoff::{Backoff, Delays, Jitter};
pub use body::{ReplayBody, ReplayBodyLayer, TryCloneBody, WithReplayBody};
pub use budget::RetryBudget;
pub use deadline::Deadline;
pub use info::{RetryInfo, RetryReason, RetryRecord, StopReason, WaitSource};
pub use layer::RetryLayer;
pub use policy::{
    ErrorPredicate, RefusedUntil, RetryPolicy, DEFAULT_MAX_RETRY_AFTER, IDEMPOTENCY_KEY,
};
pub use service::Retry;
