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

mod api;
mod body;
pub mod error;
mod request;
mod response;
mod shared_registry;
mod stats;

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
