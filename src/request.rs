//! Building requests for a [`Client`].

use crate::{Body, Client, Response};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::Method;
use tower::{BoxError, ServiceExt};

/// A request being built for a [`Client`]; [`send`](RequestBuilder::send) sends it.
///
/// The path is resolved against the client's base URL (`"/users"` and `"users"` both land under
/// it). Mistakes — a header that cannot be sent, a path that is not a URI — are kept and returned
/// by `send`, so the chain stays readable.
///
/// ```
/// # tokio_test::block_on(async {
/// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
/// #     |req: http::Request<calm::Body>| async move {
/// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::from(req.uri().to_string())))
/// #     })).unwrap();
/// let response = client
///     .post("/items?dry_run=1")
///     .header("idempotency-key", "5e1f")
///     .body("payload")
///     .send()
///     .await?;
/// assert_eq!(response.text().await?, "http://api.test/items?dry_run=1");
/// # Ok::<(), tower::BoxError>(())
/// # });
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    request: Result<http::Request<Body>, BoxError>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, path: &str) -> Self {
        // NOTE: resolved here because `http::Uri` cannot hold a relative path such as
        // `users/42`; the session layer then accepts the absolute URI as it is.
        let request = client
            .base_url()
            .resolve_str(path)
            .map_err(BoxError::from)
            .and_then(|uri| {
                http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .map_err(BoxError::from)
            });
        RequestBuilder { client, request }
    }

    /// Adds a header; it replaces a default header of the same name.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        if let Ok(request) = &mut self.request {
            let parsed = name
                .try_into()
                .map_err(Into::into)
                .and_then(|name| Ok((name, value.try_into().map_err(Into::into)?)));
            match parsed {
                Ok((name, value)) => {
                    request.headers_mut().append(name, value);
                }
                Err(error) => self.request = Err(error.into()),
            }
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        if let Ok(request) = &mut self.request {
            *request.body_mut() = body.into();
        }
        self
    }

    /// Serializes `value` as the JSON body and sets `Content-Type: application/json`.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |req: http::Request<calm::Body>| async move {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
    /// #     })).unwrap();
    /// let echoed = client.post("/echo").json(&serde_json::json!({"n": 1})).send().await?;
    /// assert_eq!(echoed.text().await?, r#"{"n":1}"#);
    /// # Ok::<(), tower::BoxError>(())
    /// # });
    /// ```
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        if let Ok(request) = &mut self.request {
            match serde_json::to_vec(value) {
                Ok(bytes) => {
                    *request.body_mut() = Body::from(bytes);
                    request
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Err(error) => self.request = Err(error.into()),
            }
        }
        self
    }

    /// Replaces the client's retry policy for this one request (`max_retries(0)` turns retries
    /// off for it). As for the client's own policy, a rate-limiter refusal (`max_wait`) is never
    /// retried, and the client's [`deadline`](crate::ClientBuilder::deadline), if it has one,
    /// still bounds the request.
    ///
    /// ```
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// let once = client.get("/report").retry(calm::RetryPolicy::default().max_retries(0));
    /// # drop(once);
    /// ```
    pub fn retry(mut self, policy: crate::RetryPolicy) -> Self {
        if let Ok(request) = &mut self.request {
            request
                .extensions_mut()
                .insert(crate::api::with_facade_predicates(policy));
        }
        self
    }

    /// Adds a value to the request's extensions, for layers of your own.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        if let Ok(request) = &mut self.request {
            request.extensions_mut().insert(value);
        }
        self
    }

    /// The request as built so far.
    ///
    /// # Errors
    ///
    /// The first mistake made while building it.
    pub fn build(self) -> Result<http::Request<Body>, BoxError> {
        self.request
    }

    /// Sends the request through the client's whole stack.
    ///
    /// # Errors
    ///
    /// A building mistake, or the stack's error: see [`Client`]'s `# Errors`.
    pub async fn send(self) -> Result<Response, BoxError> {
        let request = match self.request {
            Ok(request) => request,
            Err(mistake) => {
                self.client.record_refused();
                return Err(mistake);
            }
        };
        let response = self.client.oneshot(request).await?;
        Ok(Response::from(response))
    }
}
