//! The session layer and the default transport of [calm]: where requests go, with which
//! default headers, over which connections.
//!
//! # Overview
//!
//! - [`BaseUrl`]: a normalized `http`/`https` base URL (`https://API.example.com:443/v1` and
//!   `https://api.example.com/v1/` are equal keys) that resolves request URIs httpx-style and
//!   refuses any that would leave it: another origin, or a path whose dot segments climb out
//!   of the base path.
//! - [`SharedClientLayer`] / [`SharedClient`]: a tower layer that resolves every request
//!   against the base URL and adds default headers (user agent, bearer or basic credentials,
//!   your own), the request's own headers winning. Refused requests never reach the inner
//!   service. See [`shared`].
//! - [`transport::Transport`]: hyper-util's pooled client over rustls (HTTP/1.1 and HTTP/2),
//!   following redirects with tower-http and dropping credentials on cross-origin hops,
//!   decoding compressed responses, going through HTTP and HTTPS proxies when asked (or when
//!   `HTTP_PROXY`/`HTTPS_PROXY` say so), with typed errors that tell "never sent" from
//!   "failed after sending".
//!
//! Errors live in [`error`]; each is an opaque struct with a `kind()`.
//!
//! [calm]: https://github.com/calm-rs/calm
//!
//! # Example
//!
//! ```
//! use calm_client::SharedClientLayer;
//! use http::{header, Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio_test::block_on(async {
//! // In a program, the backend is `calm_client::transport::Transport::builder().build()?`.
//! # let backend = tower::service_fn(|req: Request<()>| async move {
//! #     let key = req.headers()["x-api-key"].to_str().unwrap().to_owned();
//! #     Ok::<_, std::convert::Infallible>(Response::new(format!("{} {}", req.uri(), key)))
//! # });
//! let client = ServiceBuilder::new()
//!     .layer(
//!         SharedClientLayer::builder("https://api.example.com/v1")
//!             .default_header("x-api-key", "k-123")
//!             .build()?,
//!     )
//!     .service(backend);
//!
//! let response = client.clone().oneshot(Request::get("/users/42").body(())?).await?;
//! assert_eq!(response.body(), "https://api.example.com/v1/users/42 k-123");
//!
//! // A request cannot leave the base URL.
//! let refused = client.oneshot(Request::get("/v1/../../admin").body(())?).await;
//! assert!(refused.is_err());
//! # Ok::<(), tower::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Feature flags
//!
//! TLS is always rustls with the `ring` provider, with the `webpki-roots` certificates built
//! in. The features choose the response encodings the [transport](transport#decompression)
//! asks for and decodes; all are on by default:
//!
//! | feature | encoding | implementation |
//! |---|---|---|
//! | `gzip` | `gzip` | flate2 (miniz_oxide, pure Rust) |
//! | `brotli` | `br` | brotli (pure Rust) |
//! | `zstd` | `zstd` | libzstd, built from C source by `zstd-sys` (needs a C compiler) |
//! | `deflate` | `deflate` (zlib) | flate2 (miniz_oxide, pure Rust) |

mod base_url;
pub mod error;
pub mod redirect;
pub mod shared;
pub mod transport;

pub use crate::base_url::{BaseUrl, IntoBaseUrl};
pub use crate::error::{InvalidBaseUrl, ResolveError};
pub use crate::shared::{SharedClient, SharedClientBuilder, SharedClientLayer, DEFAULT_USER_AGENT};
