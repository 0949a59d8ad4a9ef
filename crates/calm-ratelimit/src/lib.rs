//! A shared, fair, exact pacer for tower clients of rate-limited HTTP APIs, that listens to
//! the server.
//!
//! # Overview
//!
//! [`RateLimitLayer`] wraps any `Service<http::Request<B>>` (a hyper-util client, a tonic
//! channel, an axum `Router` under test) in [`RateLimit`]. Every clone of the layer and of its
//! services shares one [`Limiter`], so a stack cloned per task still enforces one budget.
//!
//! - **Exact**: each [`Quota`] (n per second, minute, hour, day or custom period, with a burst)
//!   is enforced by GCRA over [`tokio::time::Instant`], so tests run hours of schedule on
//!   paused time. Several quotas (say 10/s and 5000/h) are admitted atomically.
//! - **Fair**: a request reserves the earliest instant every quota admits at the moment it
//!   asks, then sleeps once until it. Callers are served in the order they asked; no polling,
//!   no thundering herd: a cancelled caller wakes nobody but, at most, the new head of the
//!   queue.
//! - **Bounded**: with [`max_wait`](RateLimitLayer::max_wait), or a request's own
//!   [`MaxWait`], a caller whose place is too far away fails at once with
//!   [`error::MaxWaitExceeded`], naming when it could have gone (and the server pause, if one
//!   is why).
//! - **Cancellable**: a caller dropped before its instant gives its place back, and the callers
//!   behind it move up (see [`backend`] for exactly what is refunded).
//! - **Spent only when it can go**: no place is taken while the inner service is not ready,
//!   and a request reaches it at the instant of its place (see
//!   [`RateLimit`'s readiness](RateLimit#readiness)).
//! - **Listening, when asked**: with [`server_hints(true)`](RateLimitLayer::server_hints), a
//!   429 with `Retry-After`, or quota headers saying nothing remains ([`hints`]), pause
//!   *every* caller of the limiter until the reset, capped by
//!   [`max_pause`](RateLimitLayer::max_pause) (one minute by default), logged at WARN. For
//!   calls to an upstream API, turn hints on; calm's `Client` does. They are off by default
//!   so that a layer in front of your own routes does not pause itself on your own handlers'
//!   answers.
//! - **Adaptive, when asked**: [`Limiter::adaptive`] learns the server's real limit from its
//!   throttling responses (429, 503), for APIs that do not publish it or lower it under load:
//!   down by 30 % per throttling episode, back up along a cubic curve (see [`Adaptive`]), the
//!   quotas staying hard ceilings.
//! - **Observable**: [`Limiter::snapshot`] gives the next free instant, the pause in force,
//!   the server's last report, the learned rate, and how many requests waited how long.
//!
//! Put it *inside* a retry layer: every retry is a request the server counts, so it pays
//! for its place like any other.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use calm_ratelimit::{Quota, RateLimitLayer};
//! use tokio::time::Instant;
//! use tower::{Layer, ServiceExt};
//!
//! // 60 per minute: one request every second, shared by every clone.
//! let layer = RateLimitLayer::new(Quota::per_minute(NonZeroU32::new(60).unwrap()));
//! # let backend = tower::service_fn(|_req: http::Request<()>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! # });
//! let svc = layer.layer(backend);
//!
//! let start = Instant::now();
//! let tasks: Vec<_> = (0..3)
//!     .map(|_| tokio::spawn(svc.clone().oneshot(http::Request::new(()))))
//!     .collect();
//! for task in tasks {
//!     task.await.unwrap().unwrap();
//! }
//! // Three requests: at 0 s, 1 s and 2 s.
//! assert_eq!(start.elapsed(), Duration::from_secs(2));
//! assert_eq!(layer.limiter().snapshot().waits, 2);
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `metrics`: records waits, the queue, refusals, pauses and the learned rate through the
//!   `metrics` facade (see [`metrics`]).
//!
//! The crate depends on `http`, `tokio` (time), `tower-service`, `tower-layer`, `httpdate`,
//! `pin-project-lite` and `tracing` only (and `metrics` with its feature), never on hyper.

mod adaptive;
pub mod backend;
pub mod error;
mod future;
pub mod hints;
mod layer;
mod limiter;
mod max_wait;
pub mod metrics;
mod paced;
mod quota;
mod service;
mod snapshot;

pub use crate::adaptive::{Adaptive, InvalidAdaptive};
pub use crate::error::BoxError;
pub use crate::future::{ResponseFuture, LOGGED_WAIT};
pub use crate::hints::WallClock;
pub use crate::layer::{RateLimitLayer, DEFAULT_MAX_PAUSE};
pub use crate::limiter::{Acquire, Limiter};
pub use crate::max_wait::MaxWait;
pub use crate::quota::Quota;
pub use crate::service::RateLimit;
pub use crate::snapshot::Snapshot;
