use super::auth::base64;
use super::SharedClient;
use crate::error::{BuildError, BuildErrorKind, InvalidBaseUrl};
use crate::{BaseUrl, IntoBaseUrl};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::sync::Arc;
use tower_layer::Layer;

/// The `User-Agent` a [`SharedClientLayer`] sends unless told otherwise: `calm/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("calm/", env!("CARGO_PKG_VERSION"));

/// A [`Layer`] that gives every request one base URL and a set of default headers; it
/// produces [`SharedClient`]s. See the [module docs](crate::shared).
///
/// # Clone
///
/// A clone shares the base URL and the default header map (`Arc`).
///
/// ```
/// use calm_client::SharedClientLayer;
/// use http::{header, Request, Response};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # tokio_test::block_on(async {
/// # let backend = tower::service_fn(|req: Request<()>| async move {
/// #     let ua = req.headers()[header::USER_AGENT].to_str().unwrap().to_owned();
/// #     Ok::<_, std::convert::Infallible>(Response::new(format!("{} {}", req.uri(), ua)))
/// # });
/// let layer = SharedClientLayer::new("http://127.0.0.1:8080/api")?;
/// let client = ServiceBuilder::new().layer(layer).service(backend);
/// let response = client.oneshot(Request::get("/ping").body(())?).await?;
/// assert_eq!(
///     response.body(),
///     &format!("http://127.0.0.1:8080/api/ping {}", calm_client::DEFAULT_USER_AGENT),
/// );
/// # Ok::<(), tower::BoxError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct SharedClientLayer {
    base: BaseUrl,
    headers: Arc<HeaderMap>,
}

impl SharedClientLayer {
    /// A layer for `base` with the default headers only (`User-Agent: calm/<version>`).
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`] when `base` is a string that is not an acceptable base URL.
    pub fn new(base: impl IntoBaseUrl) -> Result<SharedClientLayer, InvalidBaseUrl> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(DEFAULT_USER_AGENT),
        );
        Ok(SharedClientLayer {
            base: base.into_base_url()?,
            headers: Arc::new(headers),
        })
    }

    /// A builder for a layer with default headers and credentials. Every mistake, including
    /// an invalid `base`, is reported by [`build`](SharedClientBuilder::build).
    pub fn builder(base: impl IntoBaseUrl) -> SharedClientBuilder {
        SharedClientBuilder {
            base: base.into_base_url(),
            headers: HeaderMap::new(),
            error: None,
            defaults: 0,
        }
    }

    /// The base URL requests are resolved against.
    pub fn base_url(&self) -> &BaseUrl {
        &self.base
    }

    /// The default headers added to requests that lack them.
    pub fn default_headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Does to `request` what [`SharedClient`] does before calling its inner service: resolves
    /// the URI against the base URL and adds the default headers the request lacks.
    ///
    /// Useful to refuse a request before it waits for anything (a rate limiter's place, say),
    /// in a service that drives its inner stack's readiness itself.
    ///
    /// # Errors
    ///
    /// A [`ResolveError`](crate::error::ResolveError) (boxed) when the request would leave the
    /// base URL, or [`http::header::MaxSizeReached`] when the headers would overflow; the
    /// request is then left unsent, its URI possibly unchanged.
    ///
    /// ```
    /// use calm_client::SharedClientLayer;
    ///
    /// let layer = SharedClientLayer::new("https://api.example.com/v1")?;
    /// let mut request = http::Request::get("/users").body(())?;
    /// layer.prepare(&mut request)?;
    /// assert_eq!(request.uri(), "https://api.example.com/v1/users");
    /// assert!(request.headers().contains_key("user-agent"));
    ///
    /// let mut foreign = http::Request::get("https://evil.example/").body(())?;
    /// assert!(layer.prepare(&mut foreign).is_err());
    /// # Ok::<(), tower::BoxError>(())
    /// ```
    pub fn prepare<B>(&self, request: &mut http::Request<B>) -> Result<(), tower::BoxError> {
        super::service::prepare(&self.base, &self.headers, request)
    }
}

impl<S> Layer<S> for SharedClientLayer {
    type Service = SharedClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SharedClient::from_parts(inner, self.base.clone(), Arc::clone(&self.headers))
    }
}

impl fmt::Debug for SharedClientLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedClientLayer")
            .field("base", &self.base)
            .field("default_headers", &self.headers)
            .finish()
    }
}

/// Builds a [`SharedClientLayer`]; made by [`SharedClientLayer::builder`].
///
/// Setters take and return the builder by value. A setter given something that cannot be sent
/// records the mistake, and [`build`](SharedClientBuilder::build) returns the first one — no
/// error is ever left for request time.
///
/// Headers named `Authorization`, `Proxy-Authorization` or `Cookie` are marked sensitive
/// whichever setter adds them. To mark another one (an API-key header, say), pass a
/// [`HeaderValue`] on which you called [`set_sensitive(true)`](HeaderValue::set_sensitive).
///
/// ```
/// use calm_client::SharedClientLayer;
/// use http::header::{HeaderValue, AUTHORIZATION};
///
/// let mut key = HeaderValue::from_static("k-123");
/// key.set_sensitive(true);
/// let layer = SharedClientLayer::builder("https://api.example.com")
///     .basic_auth("Aladdin", Some("open sesame"))
///     .default_header("x-api-key", key)
///     .user_agent("my-app/1.0")
///     .build()
///     .unwrap();
///
/// let auth = &layer.default_headers()[AUTHORIZATION];
/// assert_eq!(auth, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
/// assert!(auth.is_sensitive());
/// assert!(layer.default_headers()["x-api-key"].is_sensitive());
/// assert_eq!(layer.default_headers()["user-agent"], "my-app/1.0");
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SharedClientBuilder {
    base: Result<BaseUrl, InvalidBaseUrl>,
    headers: HeaderMap,
    error: Option<BuildError>,
    /// How many `default_header` calls were made, to name the failing one.
    defaults: usize,
}

impl SharedClientBuilder {
    /// Adds a header sent with every request that does not set it itself. Setting the same
    /// name again replaces the earlier value.
    ///
    /// `name` and `value` may be anything `http` converts: `&str`, `String`,
    /// [`HeaderName`] / [`HeaderValue`]...
    pub fn default_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.defaults += 1;
        if self.error.is_some() {
            return self;
        }
        let name = match name.try_into() {
            Ok(name) => name,
            Err(e) => {
                let index = self.defaults;
                return self.fail(
                    BuildErrorKind::InvalidHeaderName,
                    format!("the name of default header #{index} is not a valid header name"),
                    e.into(),
                );
            }
        };
        match value.try_into() {
            Ok(value) => self.set(name, value),
            Err(e) => self.fail(
                BuildErrorKind::InvalidHeaderValue,
                format!(
                    "the value of default header `{name}` contains characters that cannot be \
                     sent in a header"
                ),
                e.into(),
            ),
        }
    }

    /// Sends `Authorization: Bearer <token>` (as a sensitive value) with every request that
    /// has no `Authorization` header of its own.
    pub fn bearer_auth(self, token: impl fmt::Display) -> Self {
        if self.error.is_some() {
            return self;
        }
        match HeaderValue::try_from(format!("Bearer {token}")) {
            Ok(value) => self.set(header::AUTHORIZATION, value),
            Err(e) => self.fail(
                BuildErrorKind::InvalidHeaderValue,
                "the bearer token contains characters that cannot be sent in a header".into(),
                e.into(),
            ),
        }
    }

    /// Sends `Authorization: Basic <base64(user:password)>` (as a sensitive value) with
    /// every request that has no `Authorization` header of its own. Without a password the
    /// credentials are `user:`.
    pub fn basic_auth<U, P>(self, user: U, password: Option<P>) -> Self
    where
        U: fmt::Display,
        P: fmt::Display,
    {
        if self.error.is_some() {
            return self;
        }
        let credentials = match password {
            Some(password) => format!("{user}:{password}"),
            None => format!("{user}:"),
        };
        match HeaderValue::try_from(format!("Basic {}", base64(credentials.as_bytes()))) {
            Ok(value) => self.set(header::AUTHORIZATION, value),
            // NOTE: base64 output is always a valid header value; kept for completeness.
            Err(e) => self.fail(
                BuildErrorKind::InvalidHeaderValue,
                "the basic credentials cannot be sent in a header".into(),
                e.into(),
            ),
        }
    }

    /// Replaces the default `User-Agent` ([`DEFAULT_USER_AGENT`]).
    pub fn user_agent<V>(self, value: V) -> Self
    where
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        if self.error.is_some() {
            return self;
        }
        match value.try_into() {
            Ok(value) => self.set(header::USER_AGENT, value),
            Err(e) => self.fail(
                BuildErrorKind::InvalidHeaderValue,
                "the user agent contains characters that cannot be sent in a header".into(),
                e.into(),
            ),
        }
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// The first mistake made while configuring: an invalid base URL
    /// ([`BuildErrorKind::InvalidBaseUrl`], with the [`InvalidBaseUrl`] as its source), a
    /// header name or a header value that cannot be sent.
    pub fn build(self) -> Result<SharedClientLayer, BuildError> {
        let base = self.base?;
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut headers = self.headers;
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(
                header::USER_AGENT,
                HeaderValue::from_static(DEFAULT_USER_AGENT),
            );
        }
        Ok(SharedClientLayer {
            base,
            headers: Arc::new(headers),
        })
    }

    fn set(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        if name == header::AUTHORIZATION
            || name == header::PROXY_AUTHORIZATION
            || name == header::COOKIE
        {
            value.set_sensitive(true);
        }
        if let Err(e) = self.headers.try_insert(name, value) {
            return self.fail(
                BuildErrorKind::InvalidHeaderName,
                "too many default headers".into(),
                e.into(),
            );
        }
        self
    }

    fn fail(mut self, kind: BuildErrorKind, message: String, source: http::Error) -> Self {
        if self.error.is_none() {
            self.error = Some(BuildError::new(kind, message, Some(Box::new(source))));
        }
        self
    }
}

impl fmt::Debug for SharedClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedClientBuilder")
            .field("base", &self.base)
            .field("default_headers", &self.headers)
            .field("error", &self.error)
            .finish()
    }
}
