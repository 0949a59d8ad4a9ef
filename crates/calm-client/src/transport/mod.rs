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
//!   each hop must pass through other layers (calm's `Client` does, so hops are paced); with
//!   `max_redirects(0)` no follower is built at all;
//! - response bodies decoded (gzip, brotli, zstd, deflate) by tower-http's
//!   [`Decompression`][decompression], with `Accept-Encoding` sent (see
//!   [Decompression](#decompression));
//! - HTTP and HTTPS proxies, from the builder or the `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`
//!   variables, matched by hyper-util (see [Proxies](#proxies));
//! - failures as [`TransportError`], whose [`kind`](TransportError::kind) tells a request
//!   that was never sent (connect, TLS) from one that failed after sending; a response body
//!   that cannot be read to the end fails with a [`BodyError`].
//!
//! [decompression]: https://docs.rs/tower-http/0.6/tower_http/decompression/
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
//! | [`decompression`](TransportBuilder::decompression) | on (the encodings of the enabled features) |
//! | [`proxy_from_env`](TransportBuilder::proxy_from_env) | on (no proxy unless the environment names one) |
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
//! # Decompression
//!
//! With [`decompression`](TransportBuilder::decompression) on (the default), a request
//! without an `Accept-Encoding` header is sent with one listing every encoding compiled in,
//! for example `zstd,gzip,deflate,br`; a request that sets its own keeps it. A response
//! whose `Content-Encoding` is one of those comes back decoded as it streams in, its
//! `Content-Encoding` and `Content-Length` headers removed (they described the encoded
//! bytes); any other response, `identity` or an encoding not asked for, comes back as sent,
//! headers untouched. Off, nothing is added and nothing decoded.
//!
//! Each encoding is a cargo feature, all on by default: `gzip`, `brotli`, `deflate` (the
//! zlib format, as `Content-Encoding: deflate` means) in pure Rust, and `zstd`, which builds
//! libzstd from C source (a C compiler is needed). With none, the transport decodes nothing
//! and sends no `Accept-Encoding`.
//!
//! The response body is a [`ResponseBody`]; a body that fails to decode fails with a
//! [`BodyError`] of kind [`Decode`](BodyErrorKind::Decode), one whose connection fails
//! mid-body with kind [`Read`](BodyErrorKind::Read).
//!
//! # Proxies
//!
//! Where the proxy settings come from, in order:
//!
//! 1. [`proxy`](TransportBuilder::proxy), [`http_proxy`](TransportBuilder::http_proxy),
//!    [`https_proxy`](TransportBuilder::https_proxy): once any is set, the environment is
//!    not read at all. [`no_proxy`](TransportBuilder::no_proxy) turns every proxy off.
//! 2. Otherwise, with [`proxy_from_env`](TransportBuilder::proxy_from_env) on (the default),
//!    the environment, read once by [`build`](TransportBuilder::build): `HTTP_PROXY` for
//!    `http` origins, `HTTPS_PROXY` for `https` origins, `ALL_PROXY` for either when its own
//!    is unset, and `NO_PROXY` for exceptions; the upper-case name first, then the lower-case
//!    one, as hyper-util and curl read them. An empty variable counts as unset. In a CGI
//!    program (`REQUEST_METHOD` set) none is read, since there `HTTP_PROXY` can come from a
//!    request header. A proxy from the environment is never used for a loopback destination
//!    (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`), as in Go's `net/http`.
//!
//! [`proxy_bypass`](TransportBuilder::proxy_bypass) lists destinations that skip the proxy
//! (in `NO_PROXY` form, replacing `NO_PROXY`). Matching is hyper-util's
//! [`Matcher`](hyper_util::client::proxy::matcher::Matcher), with curl's rules.
//!
//! A proxy URL is `http://[user:password@]host[:port]`, or `https://…` for TLS to the proxy;
//! SOCKS is not supported. Every URL, given or read from the environment, is checked by
//! [`build`](TransportBuilder::build): one that cannot be used is a
//! [`Config`](TransportErrorKind::Config) error naming where it came from (never the URL,
//! which may hold a password), not a silent direct connection.
//!
//! - A request to an `http` origin goes to the proxy in absolute form
//!   (`GET http://api.example.com/v1/items HTTP/1.1`), with the proxy's credentials in
//!   `Proxy-Authorization` (which a proxy consumes); what the proxy answers itself (`407`,
//!   `502`) is a response like any other.
//! - A request to an `https` origin goes through a `CONNECT` tunnel: only the `CONNECT`
//!   request carries the credentials; TLS to the origin runs inside the tunnel, so the proxy
//!   sees neither the request nor the response.
//! - The credentials are never sent to an origin: each redirect hop is matched again, and a
//!   hop that goes direct or through a tunnel gets no `Proxy-Authorization` from the
//!   transport.
//! - A proxy that cannot be reached, or that refuses a tunnel (`407` included), fails the
//!   request with a [`Connect`](TransportErrorKind::Connect) error (never sent) whose
//!   [`proxy`](TransportError::proxy) names the proxy.
//!
//! ```
//! use calm_client::transport::Transport;
//!
//! # fn main() -> Result<(), calm_client::transport::TransportError> {
//! // Through a proxy, except for the cluster's own services.
//! let transport: Transport = Transport::builder()
//!     .proxy("http://proxy.internal:3128")
//!     .proxy_bypass(".svc.cluster.local, 10.0.0.0/8")
//!     .build()?;
//! # drop(transport);
//! // Never through a proxy, whatever the environment says.
//! let direct: Transport = Transport::builder().no_proxy().build()?;
//! # drop(direct);
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

mod body;
mod builder;
mod error;
pub mod future;
mod host;
mod proxy;
mod service;

pub use self::body::ResponseBody;
pub use self::builder::TransportBuilder;
pub use self::error::{BodyError, BodyErrorKind, TransportError, TransportErrorKind};
pub use self::service::Transport;
