use super::future::ResponseFuture;
use crate::redirect::is_credential;
use crate::BaseUrl;
use http::header::{HeaderMap, MaxSizeReached};
use http::Request;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::BoxError;
use tower_service::Service;

/// A service that resolves each request against one base URL and adds default headers before
/// calling the inner service; made by [`SharedClientLayer`](crate::SharedClientLayer). See the
/// [module docs](crate::shared).
///
/// # Errors
///
/// [`tower::BoxError`]: a [`ResolveError`](crate::error::ResolveError) for a refused request
/// (the inner service is not called), or the inner service's error.
///
/// # Clone
///
/// A clone shares the base URL and the default headers (`Arc`) and clones the inner service.
///
/// ```
/// use calm_client::{error::ResolveError, SharedClientLayer};
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt};
///
/// # tokio_test::block_on(async {
/// # let backend = tower::service_fn(|_req: Request<()>| async move {
/// #     Ok::<_, std::convert::Infallible>(Response::new(()))
/// # });
/// let client = SharedClientLayer::new("https://api.example.com/v1")?.layer(backend);
/// let err = client
///     .oneshot(Request::get("https://other.example/v1/x").body(())?)
///     .await
///     .unwrap_err();
/// assert!(err.downcast_ref::<ResolveError>().is_some());
/// # Ok::<(), tower::BoxError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SharedClient<S> {
    inner: S,
    base: BaseUrl,
    headers: Arc<HeaderMap>,
}

impl<S> SharedClient<S> {
    pub(crate) fn from_parts(inner: S, base: BaseUrl, headers: Arc<HeaderMap>) -> Self {
        SharedClient {
            inner,
            base,
            headers,
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

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for SharedClient<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match prepare(&self.base, &self.headers, &mut req) {
            Ok(()) => ResponseFuture::called(self.inner.call(req)),
            Err(error) => ResponseFuture::refused(error),
        }
    }
}

/// Resolves the request's URI against `base` and adds the default headers it lacks.
pub(crate) fn prepare<B>(
    base: &BaseUrl,
    defaults: &HeaderMap,
    req: &mut Request<B>,
) -> Result<(), BoxError> {
    *req.uri_mut() = base.resolve(req.uri())?;
    add_default_headers(req.headers_mut(), defaults, true)?;
    Ok(())
}

/// Room a transport typically needs in a request's headers after the defaults: `host` and
/// `accept-encoding`, and one slot more, as hyper-util's client makes room for a `host` before
/// it looks whether the request already has one (its `entry`) — a full table would be
/// allocated again right there.
const TRANSPORT_HEADERS: usize = 3;

/// Adds to `headers` every one of `defaults` whose name they do not carry; without
/// `credentials`, only those that are not [credentials](crate::redirect::is_credential) (what
/// a request may still get once a redirect took it to another origin).
///
/// The table is first given room for all of `defaults` and the three headers a transport
/// typically adds after them (`host`, `accept-encoding`, and the slot hyper-util's client
/// reserves before it looks for a `host`), so it is not grown again on the way out.
///
/// # Errors
///
/// [`MaxSizeReached`] when the headers, with that room, would overflow; some defaults may
/// have been added.
///
/// ```
/// use calm_client::shared::add_default_headers;
/// use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, USER_AGENT};
///
/// let mut defaults = HeaderMap::new();
/// defaults.insert(USER_AGENT, HeaderValue::from_static("app/1"));
/// defaults.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
///
/// let mut own = HeaderMap::new();
/// own.insert(USER_AGENT, HeaderValue::from_static("mine/2"));
/// add_default_headers(&mut own, &defaults, false)?;
/// assert_eq!(own[USER_AGENT], "mine/2");
/// assert!(own.get(AUTHORIZATION).is_none());
///
/// add_default_headers(&mut own, &defaults, true)?;
/// assert_eq!(own[AUTHORIZATION], "Bearer t");
/// # Ok::<(), http::header::MaxSizeReached>(())
/// ```
pub fn add_default_headers(
    headers: &mut HeaderMap,
    defaults: &HeaderMap,
    credentials: bool,
) -> Result<(), MaxSizeReached> {
    if defaults.is_empty() {
        return Ok(());
    }
    // NOTE: room, in one go, for these and the headers the transport adds after them: a clone
    // of `defaults` would be full, and a table grown header by header is copied each time.
    headers.try_reserve(defaults.len() + TRANSPORT_HEADERS)?;
    if headers.is_empty() {
        for (name, value) in defaults {
            if credentials || !is_credential(name, value) {
                headers.try_append(name.clone(), value.clone())?;
            }
        }
        return Ok(());
    }
    for name in defaults.keys() {
        if headers.contains_key(name) {
            continue;
        }
        for value in defaults.get_all(name) {
            if credentials || !is_credential(name, value) {
                headers.try_append(name.clone(), value.clone())?;
            }
        }
    }
    Ok(())
}

impl<S: fmt::Debug> fmt::Debug for SharedClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedClient")
            .field("inner", &self.inner)
            .field("base", &self.base)
            .field("default_headers", &self.headers)
            .finish()
    }
}
