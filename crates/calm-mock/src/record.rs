//! The request log.

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version};
use tokio::time::Instant;

/// One request as the [`MockApi`](crate::MockApi) received it.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(api: calm_mock::MockApi) {
/// for r in api.requests() {
///     println!("{} {} ({} body bytes)", r.method, r.uri, r.body.len());
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request target as received: origin form (`/v1/x?page=2`) over HTTP/1.1, absolute
    /// over HTTP/2.
    pub uri: Uri,
    /// The HTTP version the request used.
    pub version: Version,
    /// The request headers.
    pub headers: HeaderMap,
    /// The whole request body (what arrived of it if the client broke off).
    pub body: Bytes,
    /// When the request head arrived, on tokio's clock.
    pub at: Instant,
}
