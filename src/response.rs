//! Responses, with helpers to read their bodies.

use crate::error::{Error, ErrorKind, RequestLabel};
use crate::Body;
use bytes::Bytes;
use calm_client::transport::{BodyError, BodyErrorKind};
use futures_util::Stream;
use http::{HeaderMap, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt;

/// A response from a [`Client`](crate::Client): an [`http::Response`] with helpers to read the
/// body as bytes, text, JSON or a stream, and to see what the retry layer did.
///
/// Reading the body counts against the request's [`timeout`](crate::RequestBuilder::timeout):
/// a body still arriving when it runs out fails with a [timeout](Error::is_timeout).
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
    request: Option<RequestLabel>,
}

impl Response {
    pub(crate) fn new(inner: http::Response<Body>, request: RequestLabel) -> Response {
        Response {
            inner,
            request: Some(request),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.inner.version()
    }

    /// The URL that was requested (redirects followed inside the client are not reflected);
    /// `None` for a response made with `Response::from`.
    pub fn url(&self) -> Option<&Uri> {
        self.request.as_ref().and_then(RequestLabel::url)
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The body's length, if known exactly: from the body itself, else from `Content-Length`.
    /// As with reqwest, a body that is empty by definition (a `HEAD` response, a 204 or 304)
    /// says 0 whatever `Content-Length` announced; a decompressed body says `None`.
    ///
    /// ```
    /// let response = calm::Response::from(http::Response::new(calm::Body::from("four")));
    /// assert_eq!(response.content_length(), Some(4));
    /// ```
    pub fn content_length(&self) -> Option<u64> {
        self.inner.body().size_hint().exact().or_else(|| {
            self.inner
                .headers()
                .get(http::header::CONTENT_LENGTH)?
                .to_str()
                .ok()?
                .parse()
                .ok()
        })
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

    /// The response, or an [`Error`] naming the request and its status if the status is a
    /// client (4xx) or server (5xx) error. The body is dropped then.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// # let client = calm::Client::builder("http://api.test").no_retries().build_with(
    /// #     tower::service_fn(|_req: http::Request<calm::Body>| async {
    /// #         let mut response = http::Response::new(calm::Body::empty());
    /// #         *response.status_mut() = http::StatusCode::NOT_FOUND;
    /// #         Ok::<_, std::convert::Infallible>(response)
    /// #     })).unwrap();
    /// let error = client.get("/items/7").send().await?.error_for_status().unwrap_err();
    /// assert!(error.is_status());
    /// assert_eq!(error.status(), Some(http::StatusCode::NOT_FOUND));
    /// assert_eq!(
    ///     error.to_string(),
    ///     "GET http://api.test/items/7: the server answered 404 Not Found"
    /// );
    /// # Ok::<(), calm::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// An error of kind [`Status`](ErrorKind::Status) for a 4xx or 5xx status.
    pub fn error_for_status(self) -> Result<Response, Error> {
        match self.status_error() {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }

    /// Like [`error_for_status`](Self::error_for_status), keeping the response.
    ///
    /// # Errors
    ///
    /// An error of kind [`Status`](ErrorKind::Status) for a 4xx or 5xx status.
    pub fn error_for_status_ref(&self) -> Result<&Response, Error> {
        match self.status_error() {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }

    fn status_error(&self) -> Option<Error> {
        let status = self.status();
        (status.is_client_error() || status.is_server_error())
            .then(|| Error::status_error(status, self.request.clone()))
    }

    /// Reads the next chunk of the body; `None` at its end.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let mut response = calm::Response::from(http::Response::new(calm::Body::from("hi")));
    /// assert_eq!(response.chunk().await?.unwrap(), "hi");
    /// assert!(response.chunk().await?.is_none());
    /// # Ok::<(), calm::Error>(())
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// A [body](Error::is_body) error if the connection fails while reading, a
    /// [timeout](Error::is_timeout) if the request's time limit runs out.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.inner.body_mut().frame().await {
                None => return Ok(None),
                Some(Err(error)) => return Err(self.body_error(error)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The body as a [`Stream`] of chunks.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// use futures_util::StreamExt;
    ///
    /// let response = calm::Response::from(http::Response::new(calm::Body::from("hi")));
    /// let mut chunks = std::pin::pin!(response.bytes_stream());
    /// assert_eq!(chunks.next().await.unwrap()?, "hi");
    /// assert!(chunks.next().await.is_none());
    /// # Ok::<(), calm::Error>(())
    /// # });
    /// ```
    pub fn bytes_stream(self) -> impl Stream<Item = Result<Bytes, Error>> + Send {
        futures_util::stream::unfold(Some(self), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                Ok(None) => None,
                Err(error) => Some((Err(error), None)),
            }
        })
    }

    /// Reads the whole body.
    ///
    /// # Errors
    ///
    /// A [body](Error::is_body) error if the connection fails while reading, a
    /// [timeout](Error::is_timeout) if the request's time limit runs out.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let (parts, body) = self.inner.into_parts();
        match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) => Err(body_error(error, parts.status, self.request)),
        }
    }

    /// Reads the whole body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// As [`bytes`](Self::bytes), or a [decode](Error::is_decode) error if the body is not
    /// UTF-8.
    pub async fn text(self) -> Result<String, Error> {
        let (status, request) = (self.status(), self.request.clone());
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.into()).map_err(|e| decode_error(e, status, request))
    }

    /// Reads the whole body and deserializes it from JSON.
    ///
    /// # Errors
    ///
    /// As [`bytes`](Self::bytes), or a [decode](Error::is_decode) error naming the status
    /// and the URL if the body is not the JSON `T` expects — say, the error page of a 404
    /// whose status was not checked.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let response = calm::Response::from(http::Response::new(calm::Body::from(r#"{"id":7}"#)));
    /// let value: serde_json::Value = response.json().await.unwrap();
    /// assert_eq!(value["id"], 7);
    /// # });
    /// ```
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let (status, request) = (self.status(), self.request.clone());
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| decode_error(e, status, request))
    }

    /// The underlying [`http::Response`].
    pub fn into_http(self) -> http::Response<Body> {
        self.inner
    }

    fn body_error(&self, error: tower::BoxError) -> Error {
        body_error(error, self.status(), self.request.clone())
    }
}

fn body_error(error: tower::BoxError, status: StatusCode, request: Option<RequestLabel>) -> Error {
    let error = Error::from_boxed(error);
    let error = if error.is_timeout() {
        error
    } else {
        // NOTE: a body the transport could not decompress is not what it claimed to be.
        let undecodable = error
            .find_source::<BodyError>()
            .is_some_and(|e| e.kind() == BodyErrorKind::Decode);
        let kind = if undecodable {
            ErrorKind::Decode
        } else {
            ErrorKind::Body
        };
        Error::new(kind, error)
    };
    error.with_status(status).for_request(request)
}

fn decode_error(
    error: impl Into<tower::BoxError>,
    status: StatusCode,
    request: Option<RequestLabel>,
) -> Error {
    Error::new(ErrorKind::Decode, error)
        .with_status(status)
        .for_request(request)
}

impl From<http::Response<Body>> for Response {
    fn from(inner: http::Response<Body>) -> Self {
        Response {
            inner,
            request: None,
        }
    }
}

impl From<Response> for http::Response<Body> {
    fn from(response: Response) -> Self {
        response.inner
    }
}
