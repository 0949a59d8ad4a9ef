//! The default transport: hyper-util's pooled client over rustls, with redirects.
//!
//! [`Transport`] is what sits at the bottom of a calm stack:
//!
//! - hyper-util's legacy [`Client`](hyper_util::client::legacy::Client): one connection
//!   pool shared by every clone, HTTP/1.1, and HTTP/2 when the server picks it by ALPN on
//!   `https` (plain `http` speaks HTTP/1.1);
//! - TLS by [rustls](https://docs.rs/rustls) with the `ring` provider, trusting the Mozilla
//!   roots of `webpki-roots` by default, plus any root you
//!   [add](TransportBuilder::add_root_certificate);
//! - redirects followed by tower-http's
//!   [`FollowRedirect`](tower_http::follow_redirect::FollowRedirect), at most 10 in a row,
//!   dropping `Authorization`, `Cookie` and `Proxy-Authorization` from the first hop to
//!   another origin on (a later hop back to the origin does not get them back either), and
//!   marking what each hop returns so a retry layer above never takes a hop's connect error
//!   or 429 for the original request's (see [`redirect`](crate::redirect)); set
//!   [`max_redirects(0)`](TransportBuilder::max_redirects) and use
//!   [`FollowRedirectLayer`](crate::redirect::FollowRedirectLayer) higher in the stack when
//!   each hop must pass through other layers (calm's `Client` does, so hops are paced);
//! - failures as [`TransportError`], whose [`kind`](TransportError::kind) tells a request
//!   that was never sent (connect, TLS) from one that failed after sending.
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | [`connect_timeout`](TransportBuilder::connect_timeout) | 10 s (TCP connect; shared among the addresses a name resolves to) |
//! | [`pool_idle_timeout`](TransportBuilder::pool_idle_timeout) | 90 s |
//! | [`pool_max_idle_per_host`](TransportBuilder::pool_max_idle_per_host) | unlimited |
//! | [`tcp_nodelay`](TransportBuilder::tcp_nodelay) | on |
//! | [`tcp_keepalive`](TransportBuilder::tcp_keepalive) | 60 s |
//! | [`max_redirects`](TransportBuilder::max_redirects) | 10 |
//! | [`tls_built_in_root_certs`](TransportBuilder::tls_built_in_root_certs) | on (webpki-roots) |
//! | [`https_only`](TransportBuilder::https_only) | off |
//!
//! There is no overall request timeout here: put tower's `Timeout` above the transport (calm's
//! stack does, per attempt); it also bounds the TLS handshake.
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use calm_client::{transport::Transport, SharedClientLayer};
//! use http_body_util::Full;
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), tower::BoxError> {
//! let transport = Transport::builder()
//!     .connect_timeout(std::time::Duration::from_secs(5))
//!     .build::<Full<Bytes>>()?;
//! let client = ServiceBuilder::new()
//!     .layer(SharedClientLayer::new("https://api.example.com/v1")?)
//!     .service(transport);
//! // `client` is a `Service<http::Request<Full<Bytes>>>`; no connection is made until a
//! // request is sent.
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! # Request bodies
//!
//! `Transport<B>` sends any body `B: http_body::Body + Default + Send + Unpin + 'static` whose
//! data is `Send` and whose error converts into [`tower::BoxError`]; the default is
//! [`Full<Bytes>`](http_body_util::Full). `Default` is what `FollowRedirect` sends after a
//! `303 See Other` (and on `301`/`302` after a `POST`); a redirect that would need the
//! original non-empty body again (`307`/`308`) is returned as it is.

mod builder;
mod error;
pub mod future;
mod service;

pub use self::builder::TransportBuilder;
pub use self::error::{TransportError, TransportErrorKind};
pub use self::service::Transport;
