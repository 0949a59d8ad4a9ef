//! Responses, with helpers to read their bodies.

use crate::Body;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tower::BoxError;

/// A response from a [`Client`](crate::Client): an [`http::Response`] with helpers to read the
/// body as bytes, text or JSON, and to see what the retry layer did.
///
/// ```
/// # tokio_test::block_on(async {
/// let response = calm::Response::from(http::Response::new(calm::Body::from("hi")));
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.text().await.unwrap(), "hi");
/// # });
/// ```
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Body>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The response extensions, where the layers record what they did.
    pub fn extensions(&self) -> &http::Extensions {
        self.inner.extensions()
    }

    /// What the retry layer did for this request: attempts, the reason for each retry, and why
    /// it stopped. Every response a [`Client`](crate::Client) returns has it, even with
    /// retries off ([`no_retries`](crate::ClientBuilder::no_retries)); `None` only for a
    /// response that did not come through one (made with `Response::from`, say).
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// use calm::Client;
    /// let client = Client::builder("http://api.test")
    ///     .build_with(tower::service_fn(|_req: http::Request<calm::Body>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    ///     }))
    ///     .unwrap();
    /// let response = client.get("/").send().await.unwrap();
    /// assert_eq!(response.retry_info().unwrap().attempts(), 1);
    /// # });
    /// ```
    pub fn retry_info(&self) -> Option<&crate::RetryInfo> {
        self.inner.extensions().get()
    }

    /// Reads the whole body.
    ///
    /// # Errors
    ///
    /// The body's own error if the connection fails while reading.
    pub async fn bytes(self) -> Result<Bytes, BoxError> {
        Ok(self.inner.into_body().collect().await?.to_bytes())
    }

    /// Reads the whole body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// The body's error, or [`std::string::FromUtf8Error`] if the body is not UTF-8.
    pub async fn text(self) -> Result<String, BoxError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8(bytes.into())?)
    }

    /// Reads the whole body and deserializes it from JSON.
    ///
    /// # Errors
    ///
    /// The body's error, or [`serde_json::Error`] if the body is not the JSON `T` expects.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let response = calm::Response::from(http::Response::new(calm::Body::from(r#"{"id":7}"#)));
    /// let value: serde_json::Value = response.json().await.unwrap();
    /// assert_eq!(value["id"], 7);
    /// # });
    /// ```
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, BoxError> {
        let bytes = self.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The underlying [`http::Response`].
    pub fn into_http(self) -> http::Response<Body> {
        self.inner
    }
}

impl From<http::Response<Body>> for Response {
    fn from(inner: http::Response<Body>) -> Self {
        Response { inner }
    }
}

impl From<Response> for http::Response<Body> {
    fn from(response: Response) -> Self {
        response.inner
    }
}
