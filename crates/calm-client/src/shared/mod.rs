//! The session layer: [`SharedClientLayer`] resolves every request against one [`BaseUrl`]
//! and adds default headers.
//!
//! [`SharedClient<S>`](SharedClient) wraps any `Service<http::Request<B>>`. For each request
//! it
//!
//! 1. resolves the request URI with [`BaseUrl::resolve`]: a path lands under the base path,
//!    an absolute URI must be on the base origin and under the base path. A request it must
//!    refuse fails with a [`ResolveError`](crate::error::ResolveError) (boxed) **without
//!    reaching the inner service**;
//! 2. adds every default header the request does not already carry — the request's own
//!    header wins. By default that is `User-Agent: calm/<version>`
//!    ([`DEFAULT_USER_AGENT`]); credentials set with
//!    [`bearer_auth`](SharedClientBuilder::bearer_auth) or
//!    [`basic_auth`](SharedClientBuilder::basic_auth) are stored as sensitive header values
//!    (hidden from `Debug`, and from HPACK compression tables in HTTP/2);
//! 3. calls the inner service.
//!
//! Because of rule 1, the session sends default headers — credentials included — only to the
//! base origin. A redirect *the server* answers with is followed by the transport below, which
//! drops credentials and sensitive headers once a hop leaves the origin (see
//! [`transport`](crate::transport)); other default headers (`Accept`, `User-Agent`) go along.
//!
//! # Examples
//!
//! ```
//! use calm_client::SharedClientLayer;
//! use http::{header, Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio_test::block_on(async {
//! # let backend = tower::service_fn(|req: Request<String>| async move {
//! #     let auth = req.headers()[header::AUTHORIZATION].to_str().unwrap().to_owned();
//! #     Ok::<_, std::convert::Infallible>(Response::new(format!("{} {}", req.uri(), auth)))
//! # });
//! let session = SharedClientLayer::builder("https://api.example.com/v1")
//!     .bearer_auth("s3cr3t")
//!     .default_header("accept", "application/json")
//!     .build()?;
//! let client = ServiceBuilder::new().layer(session).service(backend);
//!
//! let response = client.oneshot(Request::get("/users?page=2").body(String::new())?).await?;
//! assert_eq!(response.body(), "https://api.example.com/v1/users?page=2 Bearer s3cr3t");
//! # Ok::<(), tower::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Errors
//!
//! The service's error type is [`tower::BoxError`]: a refused request is a
//! [`ResolveError`](crate::error::ResolveError), an inner error is the inner service's error,
//! boxed; `downcast_ref` tells them apart.
//!
//! # Clone
//!
//! [`SharedClientLayer`] and [`SharedClient`] are cheap to clone: the [`BaseUrl`] and the
//! default header map are behind `Arc`s shared by every clone and every service the layer
//! builds.
//!
//! # Order
//!
//! Put `SharedClientLayer` outermost, so that retries, rate limiting and redirects below it
//! all see the resolved absolute URI and the default headers.
//!
//! [`BaseUrl`]: crate::BaseUrl
//! [`BaseUrl::resolve`]: crate::BaseUrl::resolve

mod auth;
pub mod future;
mod layer;
mod service;

pub use self::layer::{SharedClientBuilder, SharedClientLayer, DEFAULT_USER_AGENT};
pub use self::service::{add_default_headers, SharedClient};
