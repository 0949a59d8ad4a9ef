//! [`Client`] and [`ClientBuilder`]: the three layers composed for one base URL.

use crate::error::{BuildError, BuildErrorKind};
use crate::stats::{Recorder, Stats};
use crate::{Body, RequestBuilder};
use bytes::Bytes;
use calm_client::transport::{Transport, TransportBuilder};
use calm_client::{BaseUrl, IntoBaseUrl, SharedClientBuilder, SharedClientLayer};
use calm_ratelimit::{Limiter, Quota, RateLimitLayer, Snapshot};
use calm_retry::{RetryLayer, RetryPolicy};
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder};

type Stack = BoxCloneSyncService<Request<Body>, Response<Body>, BoxError>;

/// One API, one shared, retrying, paced service: clone it freely.
///
/// A `Client` is the whole stack for one base URL — default headers, retries, the rate limiter
/// and the transport's connection pool — behind one cheap handle. Clones share all of it, so
/// every task that talks to the API through a clone of one client shares one connection pool,
/// one rate budget and one retry budget. A [`Registry`](crate::Registry) hands out such clones
/// per base URL.
///
/// It is a [`tower::Service`] for requests whose body converts into a [`Body`] (`Body`,
/// `Bytes`, `String`, `&'static str`, `Vec<u8>`, `()`), and offers
/// [`get`](Client::get)/[`post`](Client::post)/… for the common case.
///
/// # Example
///
/// ```
/// # tokio_test::block_on(async {
/// use calm::{Client, Quota, RetryPolicy};
/// use std::num::NonZeroU32;
///
/// # let api = tower::service_fn(|req: http::Request<calm::Body>| async move {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::from(req.uri().to_string())))
/// # });
/// let client = Client::builder("https://api.example.com/v1")
///     .bearer_auth("token")
///     .rate_limit(Quota::per_second(NonZeroU32::new(10).unwrap()))
///     .retry(RetryPolicy::default().max_retries(3))
///     .build_with(api)?; // `.build()` uses calm's hyper-util + rustls transport
///
/// let response = client.get("/users?page=2").send().await?;
/// assert_eq!(response.text().await?, "https://api.example.com/v1/users?page=2");
/// # Ok::<(), tower::BoxError>(())
/// # });
/// ```
///
/// # Order
///
/// Outermost first: `SharedClient` (resolve the URI, add default headers) → deadline
/// `Timeout` → `Retry` → `RateLimit` → `ConcurrencyLimit` → per-attempt `Timeout` → transport.
/// Retry sits outside the rate limiter so every retry pays for its place like a first try;
/// the per-attempt timeout sits inside it so time spent queueing for a place is not counted
/// against an attempt; the concurrency limit sits inside the rate limiter so a request holds
/// an in-flight slot only while it is actually sent.
///
/// # Errors
///
/// The service's error is a [`BoxError`]. Downcast it to learn which layer failed:
/// [`ResolveError`](crate::client::ResolveError) (the request would have left the base URL;
/// nothing was sent), [`RetryError`](crate::retry::error::RetryError) (the attempts failed; it
/// carries the [`RetryInfo`](crate::RetryInfo) and, as its source, the last attempt's error —
/// a [`TransportError`](crate::client::transport::TransportError), a per-attempt
/// [`Elapsed`](tower::timeout::error::Elapsed) or the rate limiter's
/// [`MaxWaitExceeded`](crate::ratelimit::error::MaxWaitExceeded)), or
/// [`Elapsed`](tower::timeout::error::Elapsed) when the whole-request deadline passed.
/// HTTP failures are responses, not errors: a 503 that retries could not fix is returned as
/// the 503 it is.
#[derive(Clone)]
pub struct Client {
    stack: Stack,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    base: BaseUrl,
    recorder: Arc<Recorder>,
    limiter: Option<Limiter>,
}

impl Client {
    /// Starts configuring a client for `base`.
    ///
    /// An invalid base URL is reported by [`build`](ClientBuilder::build).
    pub fn builder(base: impl IntoBaseUrl) -> ClientBuilder {
        ClientBuilder::new(base)
    }

    /// The client's normalized base URL.
    ///
    /// ```
    /// # let client = calm::Client::builder("https://API.example.com:443/v1").build_with(
    /// #     tower::service_fn(|_r: http::Request<calm::Body>| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty())) })).unwrap();
    /// assert_eq!(client.base_url().as_str(), "https://api.example.com/v1/");
    /// ```
    pub fn base_url(&self) -> &BaseUrl {
        &self.shared.base
    }

    /// The rate limiter in the stack, if one was configured; [`Limiter::snapshot`] shows its
    /// state.
    pub fn limiter(&self) -> Option<&Limiter> {
        self.shared.limiter.as_ref()
    }

    /// What this client and its clones have done so far.
    ///
    /// The rate-limiter figures come from the [`Limiter`], so a limiter shared by several
    /// clients reports their total.
    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.recorder.snapshot();
        if let Some(snapshot) = self.limiter_snapshot() {
            stats.rate_limit_wait = snapshot.total_waited;
            stats.rate_limit_waits = snapshot.waits;
        }
        stats
    }

    /// The limiter's state now, if the client has one.
    pub fn limiter_snapshot(&self) -> Option<Snapshot> {
        self.shared.limiter.as_ref().map(Limiter::snapshot)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, path)
    }

    /// A `GET` request for `path`, resolved under the base URL.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A `POST` request. Not retried after it may have reached the server unless it carries
    /// an `Idempotency-Key` header (see [`RetryPolicy`]).
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// A `PUT` request.
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    /// A `PATCH` request (retried like `POST`).
    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// A `DELETE` request.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// A `HEAD` request.
    pub fn head(&self, path: &str) -> RequestBuilder {
        self.request(Method::HEAD, path)
    }
}

impl<B> Service<Request<B>> for Client
where
    B: Into<Body>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = <Stack as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.stack.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.stack.call(request.map(Into::into))
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.shared.base.as_str())
            .field("limiter", &self.shared.limiter)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
///
/// Setters take and return the builder by value; mistakes (an invalid base URL, a header
/// value that cannot be sent, an invalid retry policy, a TLS setup that fails) are kept and
/// reported by [`build`](ClientBuilder::build) / [`build_with`](ClientBuilder::build_with).
///
/// | setting | default |
/// |---|---|
/// | retries | [`RetryPolicy::default()`]: 3 retries of idempotent requests on 429/502/503/504 and transport errors, exponential backoff with jitter, `Retry-After` honored up to 60 s, shared budget |
/// | rate limit | none |
/// | per-attempt timeout | none |
/// | deadline | none |
/// | in-flight limit | none |
/// | `User-Agent` | `calm/<version>` |
#[must_use]
pub struct ClientBuilder {
    base: Result<BaseUrl, BuildError>,
    shared: Option<SharedClientBuilder>,
    retry: RetryPolicy,
    quotas: Vec<Quota>,
    limiter: Option<Limiter>,
    max_wait: Option<Duration>,
    server_hints: bool,
    max_pause: Option<Duration>,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    max_in_flight: Option<usize>,
    transport: TransportBuilder,
}

impl ClientBuilder {
    fn new(base: impl IntoBaseUrl) -> Self {
        let base = base
            .into_base_url()
            .map_err(|e| BuildError::new(BuildErrorKind::BaseUrl, e));
        let shared = base.as_ref().ok().map(SharedClientLayer::builder);
        ClientBuilder {
            base,
            shared,
            retry: RetryPolicy::default(),
            quotas: Vec::new(),
            limiter: None,
            max_wait: None,
            server_hints: true,
            max_pause: None,
            timeout: None,
            deadline: None,
            max_in_flight: None,
            transport: Transport::builder(),
        }
    }

    fn map_shared(mut self, f: impl FnOnce(SharedClientBuilder) -> SharedClientBuilder) -> Self {
        self.shared = self.shared.map(f);
        self
    }

    /// Adds a header sent with every request that does not set it itself.
    pub fn default_header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.map_shared(|shared| shared.default_header(name, value))
    }

    /// Sends `Authorization: Bearer <token>` (marked sensitive) with every request.
    pub fn bearer_auth(self, token: impl fmt::Display) -> Self {
        self.map_shared(|shared| shared.bearer_auth(token))
    }

    /// Sends HTTP basic authentication (marked sensitive) with every request.
    pub fn basic_auth(self, user: impl fmt::Display, password: Option<impl fmt::Display>) -> Self {
        self.map_shared(|shared| shared.basic_auth(user, password))
    }

    /// Replaces the default `User-Agent: calm/<version>`.
    pub fn user_agent<V>(self, value: V) -> Self
    where
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.map_shared(|shared| shared.user_agent(value))
    }

    /// Paces requests by `quota`. Call it again to add more quotas (say 10/s and 5000/h):
    /// a request then takes its place in all of them at once.
    pub fn rate_limit(mut self, quota: Quota) -> Self {
        self.quotas.push(quota);
        self
    }

    /// Paces requests with a [`Limiter`] shared with other clients (two hosts of one API
    /// account, say). Replaces quotas given to [`rate_limit`](Self::rate_limit).
    pub fn limiter(mut self, limiter: Limiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Fails a request at once, with
    /// [`MaxWaitExceeded`](crate::ratelimit::error::MaxWaitExceeded), when its place in the
    /// rate limiter is further away than `max_wait`. Such a refusal is not retried.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Whether the rate limiter listens to the server's `Retry-After` and quota headers
    /// (default: on).
    pub fn server_hints(mut self, enabled: bool) -> Self {
        self.server_hints = enabled;
        self
    }

    /// The longest pause a server hint may impose on the rate limiter.
    pub fn max_pause(mut self, max_pause: Duration) -> Self {
        self.max_pause = Some(max_pause);
        self
    }

    /// The retry policy (default: [`RetryPolicy::default()`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Turns retries off: every request is sent once.
    pub fn no_retries(mut self) -> Self {
        self.retry = self.retry.max_retries(0);
        self
    }

    /// A time limit for each attempt (tower's `Timeout`), not counting time spent waiting for
    /// the rate limiter. An attempt that runs out is an error the retry policy may retry.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A time limit for the whole request, across all attempts and waits. Retries whose wait
    /// would end past it are not begun (the last response is returned), and a request still
    /// running when it passes fails with [`Elapsed`](tower::timeout::error::Elapsed).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// At most `max` requests in flight at once across all clones (tower's
    /// `ConcurrencyLimit`).
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// Trusts `der` (a DER-encoded certificate) as a root, in addition to the webpki roots.
    /// Used by [`build`](Self::build) only.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.transport = self.transport.add_root_certificate(der);
        self
    }

    /// Replaces the transport settings [`build`](Self::build) uses.
    pub fn transport(mut self, transport: TransportBuilder) -> Self {
        self.transport = transport;
        self
    }

    /// Builds the client over calm's default transport: hyper-util's pooled client over
    /// rustls, following redirects.
    ///
    /// # Errors
    ///
    /// [`BuildError`]: the first configuration mistake.
    pub fn build(mut self) -> Result<Client, BuildError> {
        let transport = std::mem::replace(&mut self.transport, Transport::builder())
            .build::<Body>()
            .map_err(|e| BuildError::new(BuildErrorKind::Transport, e))?;
        self.build_with(transport)
    }

    /// Builds the client over `transport`: any service taking `http::Request<Body>` — a
    /// hyper-util client built for [`Body`], a tower-test mock, an axum `Router`.
    ///
    /// The transport must accept absolute URIs (hyper-util's legacy client does).
    ///
    /// # Errors
    ///
    /// [`BuildError`]: the first configuration mistake.
    pub fn build_with<S, ResBody>(self, transport: S) -> Result<Client, BuildError>
    where
        S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let base = self.base?;
        let shared_layer = self
            .shared
            .expect("a valid base URL always has a header builder")
            .build()
            .map_err(|e| BuildError::new(BuildErrorKind::Header, e))?;
        let retry_policy = match self.deadline {
            Some(deadline) => self.retry.deadline(deadline),
            None => self.retry,
        }
        .retryable_error(not_a_rate_limit_refusal);
        let retry_layer =
            RetryLayer::new(retry_policy).map_err(|e| BuildError::new(BuildErrorKind::Retry, e))?;

        let limiter = self.limiter.or_else(|| {
            (!self.quotas.is_empty()).then(|| Limiter::with_quotas(self.quotas.iter().copied()))
        });
        let rate_limit_layer = limiter.clone().map(|limiter| {
            let mut layer = RateLimitLayer::from_limiter(limiter).server_hints(self.server_hints);
            if let Some(max_wait) = self.max_wait {
                layer = layer.max_wait(max_wait);
            }
            if let Some(max_pause) = self.max_pause {
                layer = layer.max_pause(max_pause);
            }
            layer
        });

        let recorder = Arc::new(Recorder::default());
        let on_request = recorder.clone();
        let on_finish = recorder.clone();
        let on_attempt = recorder.clone();

        let stack = ServiceBuilder::new()
            .map_request(move |request: Request<Body>| {
                on_request.request();
                request
            })
            .layer(shared_layer)
            .map_result(move |result: Result<Response<Body>, BoxError>| {
                on_finish.finished(&result);
                result
            })
            .option_layer(self.deadline.map(TimeoutLayer::new))
            .map_err(BoxError::from)
            .layer(retry_layer)
            .option_layer(rate_limit_layer)
            .option_layer(self.max_in_flight.map(ConcurrencyLimitLayer::new))
            .option_layer(self.timeout.map(TimeoutLayer::new))
            .map_result(move |result: Result<Response<Body>, BoxError>| {
                on_attempt.attempt(result.as_ref().ok().map(Response::status));
                result
            })
            .map_response(|response: Response<ResBody>| response.map(Body::from_response))
            .map_err(Into::into)
            .service(transport);

        Ok(Client {
            stack: BoxCloneSyncService::new(stack),
            shared: Arc::new(Shared {
                base,
                recorder,
                limiter,
            }),
        })
    }
}

/// The facade's retry predicate: every inner error is worth another attempt except the rate
/// limiter's own refusal, which a caller asked for by setting `max_wait`.
fn not_a_rate_limit_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<calm_ratelimit::error::MaxWaitExceeded>() {
            return false;
        }
        next = error.source();
    }
    true
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base", &self.base)
            .field("retry", &self.retry)
            .field("quotas", &self.quotas)
            .field("limiter", &self.limiter)
            .field("max_wait", &self.max_wait)
            .field("server_hints", &self.server_hints)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

#[allow(dead_code)]
fn _assert_client_is_send_sync_static() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Client>();
}
