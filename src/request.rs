//! Building requests for a [`Client`].

use std::time::Duration;

use crate::error::{Error, ErrorKind, RequestLabel};
use crate::{Body, Client, Response};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::Method;
use tokio::time::Instant;

/// A request being built for a [`Client`]; [`send`](RequestBuilder::send) sends it.
///
/// The path is resolved against the client's base URL (`"/users"` and `"users"` both land under
/// it). Mistakes — a header that cannot be sent, a query that cannot be encoded, a path that is
/// not a URI — are kept and returned by `send`, so the chain stays readable.
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
/// # Ok::<(), calm::Error>(())
/// # });
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    request: Result<http::Request<Body>, Error>,
}

/// A request's own time limit, from [`RequestBuilder::timeout`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestTimeout(pub(crate) Duration);

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, path: &str) -> Self {
        // NOTE: resolved here because `http::Uri` cannot hold a relative path such as
        // `users/42`; `send` then skips the session's check (no builder method changes the
        // scheme, authority or path: `query` rebuilds the query only).
        let label = || RequestLabel::unresolved(method.clone(), path);
        let request = client
            .base_url()
            .resolve_str(path)
            .map_err(|e| Error::from_boxed(e.into()).for_request(Some(label())))
            .map(|uri| {
                let mut request = http::Request::new(Body::empty());
                *request.method_mut() = method;
                *request.uri_mut() = uri;
                request
            });
        RequestBuilder { client, request }
    }

    /// Applies `f` to the request, unless a mistake was made before; keeps `f`'s mistake.
    fn with(mut self, f: impl FnOnce(&mut http::Request<Body>) -> Result<(), Error>) -> Self {
        if let Ok(request) = &mut self.request {
            if let Err(mistake) = f(request) {
                self.request = Err(mistake);
            }
        }
        self
    }

    /// Adds a header; it replaces a default header of the same name.
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.with(|request| {
            let name = name.try_into().map_err(|e| builder(e.into()))?;
            let value = value.try_into().map_err(|e| builder(e.into()))?;
            request.headers_mut().append(name, value);
            Ok(())
        })
    }

    /// Adds every header of `headers`, as reqwest's `headers` does: each name replaces the
    /// values already set for it, on this request (by `header`, `json`, `bearer_auth`, …) or
    /// as a default header; repeated values of one name are all kept.
    ///
    /// ```
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-trace", "abc".parse().unwrap());
    /// let request = client.get("/").header("x-trace", "old").headers(headers).build()?;
    /// let values: Vec<_> = request.headers().get_all("x-trace").iter().collect();
    /// assert_eq!(values, ["abc"]);
    /// # Ok::<(), calm::Error>(())
    /// ```
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.with(|request| {
            let mut last = None;
            for (name, value) in headers {
                // NOTE: `HeaderMap`'s iterator names only the first of repeated values.
                let name = match name {
                    Some(name) => {
                        request.headers_mut().remove(&name);
                        last.insert(name)
                    }
                    None => match &last {
                        Some(name) => name,
                        None => continue,
                    },
                };
                request.headers_mut().append(name.clone(), value);
            }
            Ok(())
        })
    }

    /// Sends `Authorization: Bearer <token>`, marked sensitive (never logged by hyper).
    ///
    /// ```
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// let request = client.get("/me").bearer_auth("t0ken").build()?;
    /// assert_eq!(request.headers()["authorization"], "Bearer t0ken");
    /// assert!(request.headers()["authorization"].is_sensitive());
    /// # Ok::<(), calm::Error>(())
    /// ```
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.authorization(format!("Bearer {token}"))
    }

    /// Sends `Authorization: Basic …` for `username` and an optional `password`, marked
    /// sensitive.
    ///
    /// ```
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// let request = client.get("/").basic_auth("aladdin", Some("opensesame")).build()?;
    /// assert_eq!(request.headers()["authorization"], "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    /// # Ok::<(), calm::Error>(())
    /// ```
    pub fn basic_auth(
        self,
        username: impl std::fmt::Display,
        password: Option<impl std::fmt::Display>,
    ) -> Self {
        use base64::Engine as _;
        let credentials = match password {
            Some(password) => format!("{username}:{password}"),
            None => format!("{username}:"),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        self.authorization(format!("Basic {encoded}"))
    }

    fn authorization(self, value: String) -> Self {
        self.with(|request| {
            let mut value = HeaderValue::try_from(value).map_err(builder)?;
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
            Ok(())
        })
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<Body>) -> Self {
        self.with(|request| {
            *request.body_mut() = body.into();
            Ok(())
        })
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
    /// # Ok::<(), calm::Error>(())
    /// # });
    /// ```
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.with(|request| {
            let bytes = serde_json::to_vec(value).map_err(builder)?;
            *request.body_mut() = Body::from(bytes);
            request
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(())
        })
    }

    /// Serializes `value` as an `application/x-www-form-urlencoded` body (a struct, a map,
    /// a slice of pairs) and sets the `Content-Type`.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |req: http::Request<calm::Body>| async move {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
    /// #     })).unwrap();
    /// let echoed = client.post("/login").form(&[("user", "ada"), ("note", "a&b c")]).send().await?;
    /// assert_eq!(echoed.text().await?, "user=ada&note=a%26b+c");
    /// # Ok::<(), calm::Error>(())
    /// # });
    /// ```
    #[cfg(feature = "form")]
    pub fn form<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.with(|request| {
            let encoded = serde_urlencoded::to_string(value).map_err(builder)?;
            *request.body_mut() = Body::from(encoded);
            request.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            Ok(())
        })
    }

    /// Appends `value`, URL-encoded, to the query (a struct, a map, a slice of pairs); a query
    /// already in the path is kept in front.
    ///
    /// ```
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// let request = client
    ///     .get("/search?page=2")
    ///     .query(&[("q", "red shoes"), ("sort", "price&asc")])
    ///     .build()?;
    /// assert_eq!(request.uri(), "http://api.test/search?page=2&q=red+shoes&sort=price%26asc");
    /// # Ok::<(), calm::Error>(())
    /// ```
    #[cfg(feature = "form")]
    pub fn query<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.with(|request| {
            let encoded = serde_urlencoded::to_string(value).map_err(builder)?;
            if encoded.is_empty() {
                return Ok(());
            }
            let uri = request.uri();
            let path_and_query = match uri.query() {
                Some(query) if !query.is_empty() => {
                    format!("{}?{query}&{encoded}", uri.path())
                }
                _ => format!("{}?{encoded}", uri.path()),
            };
            let mut parts = uri.clone().into_parts();
            parts.path_and_query = Some(path_and_query.try_into().map_err(builder)?);
            *request.uri_mut() = http::Uri::from_parts(parts).map_err(builder)?;
            Ok(())
        })
    }

    /// A time limit for this request: every wait, attempt and backoff, and reading the body
    /// to its end. With a client [`timeout`](crate::ClientBuilder::timeout) too, the shorter
    /// of the two applies: unlike reqwest's, a request's timeout cannot lengthen the client's,
    /// which is the bound the program was configured with. A request still running when it passes fails
    /// with a [timeout](Error::is_timeout), and so does reading a body that is still
    /// arriving.
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// use std::time::Duration;
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         std::future::pending::<()>().await;
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// # tokio::time::pause();
    /// let error = client.get("/slow").timeout(Duration::from_secs(2)).send().await.unwrap_err();
    /// assert!(error.is_timeout());
    /// assert_eq!(error.to_string(), "GET http://api.test/slow: timed out after 2 s");
    /// # });
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|request| {
            request.extensions_mut().insert(RequestTimeout(timeout));
            Ok(())
        })
    }

    /// Replaces the client's retry policy for this one request (`max_retries(0)` turns retries
    /// off for it). As for the client's own policy, a rate-limiter refusal (`max_wait`) is never
    /// retried, and the request's [`timeout`](Self::timeout), if it has one, still bounds the
    /// request.
    ///
    /// ```
    /// # let client = calm::Client::builder("http://api.test").build_with(tower::service_fn(
    /// #     |_req: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
    /// #     })).unwrap();
    /// let once = client.get("/report").retry(calm::RetryPolicy::default().max_retries(0));
    /// # drop(once);
    /// ```
    pub fn retry(self, policy: crate::RetryPolicy) -> Self {
        self.with(|request| {
            request
                .extensions_mut()
                .insert(crate::api::with_facade_predicates(policy));
            Ok(())
        })
    }

    /// Adds a value to the request's extensions, for layers of your own.
    pub fn extension<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.with(|request| {
            request.extensions_mut().insert(value);
            Ok(())
        })
    }

    /// The request as built so far.
    ///
    /// # Errors
    ///
    /// The first mistake made while building it.
    pub fn build(self) -> Result<http::Request<Body>, Error> {
        self.request
    }

    /// Sends the request through the client's whole stack.
    ///
    /// # Errors
    ///
    /// An [`Error`] saying what happened to this request: a mistake made while building it,
    /// a refusal (it would leave the base URL), a timeout, a connection that could not be
    /// made, a refusal by the rate limiter, a failure on the way. An HTTP error status is a
    /// response, not an error: see [`Response::error_for_status`].
    pub async fn send(self) -> Result<Response, Error> {
        let request = match self.request {
            Ok(request) => request,
            Err(mistake) => {
                self.client.record_refused();
                return Err(mistake);
            }
        };
        let label = RequestLabel::new(request.method().clone(), request.uri().clone());
        let started = Instant::now();
        // NOTE: resolved under the base URL when the builder was made (`query` keeps it
        // there), so the session's check is not made twice.
        debug_assert!(self.client.base_url().resolve(request.uri()).is_ok());
        match self.client.send_resolved(request).await {
            Ok(response) => Ok(Response::new(response, label)),
            Err(error) => Err(Error::from_boxed(error)
                .for_request(Some(label))
                .with_elapsed(started.elapsed())),
        }
    }
}

fn builder(error: impl Into<tower::BoxError>) -> Error {
    Error::new(ErrorKind::Builder, error)
}
