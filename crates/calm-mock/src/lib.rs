//! A scripted loopback HTTP API for calm's tests, examples and benches.
//!
//! # Overview
//!
//! [`MockApi`] is a real HTTP server (hyper, HTTP/1.1 and HTTP/2) on `127.0.0.1` at an
//! ephemeral port, running on the current tokio runtime. It behaves like the rate-limited APIs
//! calm is made for, on demand:
//!
//! - **Scripts** per path: status, headers (`Retry-After`, `RateLimit`, …), body, delay, and
//!   sequences such as `503, 503, 200` ([`MockApi::script`], [`Reply`]).
//! - **Faults**: hang up without answering ([`Reply::close`]), never answer
//!   ([`Reply::stall`]), trickle the body ([`Reply::slow_body`]), answer late
//!   ([`Reply::delay`]), redirect ([`Reply::redirect`]).
//! - **Quota mode**: the server enforces its own requests-per-period limit and answers `429`
//!   with `Retry-After` and quota headers in a chosen [`QuotaHeaders`] style.
//! - **Compression**: a reply's body sent with `Content-Encoding` gzip, br, zstd or deflate,
//!   always or when the request's `Accept-Encoding` allows ([`Reply::encoded`],
//!   [`Reply::encoded_if_accepted`], [`Encoding`]).
//! - **TLS mode**: HTTPS with a self-signed certificate made at start-up, so the https path is
//!   tested with no network ([`MockApi::root_certificate_der`]).
//! - **Observation**: a log of the requests ([`RecordedRequest`]: method, URI, headers,
//!   body, arrival time on `tokio::time::Instant`), an exact count of every request and a
//!   count of TCP connections accepted.
//!
//! # The request log
//!
//! A request is recorded as soon as its head has been read: before it uses up a scripted
//! reply or a quota place, so a client that hangs up at once is still in the log. Its body is
//! filled in once read, before it is answered.
//!
//! The log is bounded, so a long run in one process measures the client, not the mock:
//!
//! | setting | default | |
//! |---|---|---|
//! | [`log_limit`](MockApiBuilder::log_limit) | [`DEFAULT_LOG_LIMIT`] (10,000) | the most recent requests kept; older ones are dropped |
//! | [`record_bodies`](MockApiBuilder::record_bodies) | on | keep request bodies in the log |
//!
//! An entry is a compact copy of the request head (about 150 bytes for a small request) plus
//! its body, so the default log stays under a few MB however long the run, unless the
//! bodies are big. [`MockApi::request_count`] is exact whatever the limit.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use calm_mock::MockApi;
//!
//! // A long load test: keep the last 100 heads, no bodies.
//! let api = MockApi::builder().log_limit(100).record_bodies(false).start().await;
//! let client = Client::builder(TokioExecutor::new()).build_http::<String>();
//! for i in 0..150 {
//!     client.get(api.url(&format!("/v1/items/{i}")).parse().unwrap()).await.unwrap();
//! }
//! assert_eq!(api.request_count(), 150);
//! let kept = api.requests();
//! assert_eq!(kept.len(), 100);
//! assert_eq!(kept[0].uri.path(), "/v1/items/50");
//! # }
//! ```
//!
//! Dropping the [`MockApi`] stops the server and closes its connections.
//!
//! Tests that talk to a mock run on real time and should assert counts and contents, not
//! durations.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use bytes::Bytes;
//! use calm_mock::{MockApi, Reply};
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//!
//! let api = MockApi::start().await;
//! api.script("/v1/items", [Reply::status(503).header("retry-after", "1"), Reply::ok()]);
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let uri: http::Uri = api.url("/v1/items").parse().unwrap();
//! let first = client.get(uri.clone()).await.unwrap();
//! assert_eq!(first.status(), 503);
//! assert_eq!(first.headers()["retry-after"], "1");
//! let second = client.get(uri.clone()).await.unwrap();
//! assert_eq!(second.status(), 200);
//! assert_eq!(second.into_body().collect().await.unwrap().to_bytes(), "ok");
//!
//! assert_eq!(api.request_count(), 2);
//! assert_eq!(api.requests()[0].uri.path(), "/v1/items");
//! assert_eq!(api.connections(), 1); // the client reused its connection
//! # }
//! ```
//!
//! # Feature flags
//!
//! None: TLS support (rustls with the `ring` provider, rcgen) and the encoders (flate2 and
//! brotli in pure Rust; zstd, which builds libzstd from C source) are always built in.

mod body;
mod encoding;
mod quota;
mod record;
mod reply;
mod server;
mod tls;

pub use encoding::Encoding;
pub use quota::QuotaHeaders;
pub use record::{RecordedRequest, DEFAULT_LOG_LIMIT};
pub use reply::Reply;
pub use server::{MockApi, MockApiBuilder};
