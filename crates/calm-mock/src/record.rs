//! The request log.

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version};
use tokio::time::Instant;

/// One request as the [`MockApi`](crate::MockApi) received it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use calm_mock::MockApi;
/// use http::{Method, Request, Version};
///
/// let api = MockApi::start().await;
/// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
/// let req = Request::put(api.url("/v1/items/7?notify=no"))
///     .header("content-type", "application/json")
///     .body(String::from(r#"{"n":1}"#))
///     .unwrap();
/// client.request(req).await.unwrap();
///
/// let r = &api.requests()[0];
/// assert_eq!(r.method, Method::PUT);
/// assert_eq!(r.uri, "/v1/items/7?notify=no"); // origin form over HTTP/1.1
/// assert_eq!(r.version, Version::HTTP_11);
/// assert_eq!(r.headers["content-type"], "application/json");
/// assert_eq!(r.body, r#"{"n":1}"#);
/// assert!(r.at <= tokio::time::Instant::now());
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
