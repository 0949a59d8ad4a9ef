//! [`ClientBuilder`]: configuration of a [`Client`] and the assembly of its stack.

use super::attempts::Attempts;
use super::hops::HopLimit;
use super::{Client, Shared, Stack};
use crate::error::{sources, BuildError, BuildErrorKind};
use crate::stats::Recorder;
use crate::Body;
use bytes::Bytes;
use calm_client::redirect::FollowRedirectLayer;
use calm_client::transport::{Transport, TransportBuilder, TransportError};
use calm_client::{IntoBaseUrl, SharedClientBuilder, SharedClientLayer};
use calm_ratelimit::{Adaptive, Limiter, Quota, RateLimitLayer};
use calm_retry::{RetryLayer, RetryPolicy};
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tower::limit::ConcurrencyLimitLayer;
use tower::{BoxError, Layer, Service, ServiceBuilder};

/// Configures a [`Client`]; see [`Client::builder`].
///
/// Setters take and return the builder by value; mistakes (an invalid base URL, a header
/// value that cannot be sent, an invalid retry policy, a TLS setup that fails) are kept and
/// reported by [`build`](ClientBuilder::build) / [`build_with`](ClientBuilder::build_with).
///
/// | setting | default |
/// |---|---|
/// | retries | [`RetryPolicy::default()`]: 3 retries of idempotent requests on 429/502/503/504 and transport errors, exponential backoff with jitter, `Retry-After` honored up to 60 s, shared budget |
/// | rate limit | none (server hints on once there is one; pauses capped at 60 s) |
/// | `timeout` (whole request, body included) | none |
/// | `attempt_timeout` (each attempt, to the response head) | none |
/// | in-flight limit | none |
/// | redirects | followed, at most 10 in a row; each hop to the API's origin takes a place |
/// | `User-Agent` | `calm/<version>` |
///
/// ```
/// use calm::{Backoff, Client, Quota, RetryPolicy};
/// use std::num::NonZeroU32;
/// use std::time::Duration;
///
/// let n = |n| NonZeroU32::new(n).unwrap();
/// let client = Client::builder("https://api.example.com/v1")
///     .bearer_auth("token")
///     .default_header("accept", "application/json")
///     .user_agent("inventory-sync/2.1")
///     // 10 per second and 5000 per hour, both at once
///     .rate_limit(Quota::per_second(n(10)))
///     .rate_limit(Quota::per_hour(n(5000)))
///     .max_wait(Duration::from_secs(30))
///     .retry(RetryPolicy::default().max_retries(5).backoff(Backoff::urllib3(0.5)))
///     .attempt_timeout(Duration::from_secs(10))
///     .timeout(Duration::from_secs(60))
///     .max_in_flight(8)
///     .build()?;
/// assert_eq!(client.base_url().as_str(), "https://api.example.com/v1/");
///
/// let error = Client::builder("https://api.example.com")
///     .default_header("x-api-key", "line\nbreak")
///     .build()
///     .unwrap_err();
/// assert_eq!(error.kind(), calm::BuildErrorKind::Header);
/// # Ok::<(), calm::BuildError>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    session: Result<SharedClientBuilder, BuildError>,
    retry: RetryPolicy,
    quotas: Vec<Quota>,
    limiter: Option<Limiter>,
    max_wait: Option<Duration>,
    server_hints: bool,
    max_pause: Option<Duration>,
    attempt_timeout: Option<Duration>,
    timeout: Option<Duration>,
    max_in_flight: Option<usize>,
    max_redirects: Option<usize>,
    trace_url_query: bool,
    adaptive: Option<Adaptive>,
    pub(super) transport: TransportBuilder,
}

impl ClientBuilder {
    pub(super) fn new(base: impl IntoBaseUrl) -> Self {
        let session = base
            .into_base_url()
            .map(SharedClientLayer::builder)
            .map_err(|e| BuildError::new(BuildErrorKind::BaseUrl, e));
        ClientBuilder {
            session,
            retry: RetryPolicy::default(),
            quotas: Vec::new(),
            limiter: None,
            max_wait: None,
            server_hints: true,
            max_pause: None,
            attempt_timeout: None,
            timeout: None,
            max_in_flight: None,
            max_redirects: None,
            trace_url_query: false,
            adaptive: None,
            transport: Transport::builder(),
        }
    }

    fn map_shared(mut self, f: impl FnOnce(SharedClientBuilder) -> SharedClientBuilder) -> Self {
        self.session = self.session.map(f);
        self
    }

    /// Adds a header sent with every request that does not set it itself.
    ///
    /// Default headers are added last, to each hop as it goes to the transport (see the
    /// [order](Client#order) of the layers): after a redirect to another origin, the default
    /// credentials (`Authorization`, `Cookie`, `Proxy-Authorization` and values marked
    /// sensitive) are not added, for the rest of that request.
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

    /// Learns the API's rate from its throttling responses (429, 503): lowers the pace when
    /// throttled, grows it back along a cubic curve (see [`Adaptive`]). Quotas given to
    /// [`rate_limit`](Self::rate_limit) stay hard ceilings. It learns from the responses, so
    /// [`server_hints(false)`](Self::server_hints) with it is a [`BuildError`] of kind
    /// [`AdaptiveRate`](BuildErrorKind::AdaptiveRate), and so is a
    /// [`limiter`](Self::limiter) with it (build that one with [`Limiter::adaptive`] or
    /// [`Limiter::adaptive_over`]).
    ///
    /// ```
    /// use calm::ratelimit::Adaptive;
    /// use calm::{Client, Quota};
    /// use std::num::NonZeroU32;
    ///
    /// let client = Client::builder("https://api.example.com")
    ///     .rate_limit(Quota::per_second(NonZeroU32::new(50).unwrap())) // never above
    ///     .adaptive_rate(Adaptive::starting_at(20.0))
    ///     .build()?;
    /// assert_eq!(client.limiter_snapshot().unwrap().learned_rate, Some(20.0));
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn adaptive_rate(mut self, adaptive: Adaptive) -> Self {
        self.adaptive = Some(adaptive);
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
    ///
    /// The client replaces the policy's two error tests with its own, which know the layers
    /// below: a rate-limiter refusal ([`max_wait`](Self::max_wait)) is never retried, and any
    /// failure of calm's transport before the request left (connect error, TLS handshake,
    /// connect timeout) counts as "never sent", so it is retried for every method.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Turns retries off: every request is sent once.
    pub fn no_retries(mut self) -> Self {
        self.retry = self.retry.max_retries(0);
        self
    }

    /// A time limit for each attempt, until its response head (redirect hops included), not
    /// counting time spent waiting for the rate limiter. An attempt that runs out fails with
    /// tower's [`Elapsed`](tower::timeout::error::Elapsed), an error the retry policy may
    /// retry.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// A time limit for the whole request, as reqwest's `timeout`: every wait for the rate
    /// limiter, every attempt and backoff, and reading the response body to its end. Retries
    /// whose wait would end past it are not begun (the last response is returned); a request
    /// still running when it passes fails with a [timeout](crate::Error::is_timeout), and so
    /// does reading a body that is still arriving. A request's own
    /// [`timeout`](crate::RequestBuilder::timeout) may shorten it. See the
    /// [table of limits](crate::Client#time-limits).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At most `max` requests in flight at once across all clones (tower's
    /// `ConcurrencyLimit`). `0` is a [`BuildError`] of kind
    /// [`MaxInFlight`](BuildErrorKind::MaxInFlight): no request could ever be sent.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// The most redirects followed in a row (default: the transport's setting, 10); `0`
    /// returns every redirect as it is.
    ///
    /// Redirects are followed inside one attempt, above the transport: every hop to the
    /// API's origin takes its place in the rate limiter, a hop to another origin does not
    /// (and never carries the client's credentials), and the retry layer sees the chain as one
    /// request — once a hop went out, the request counts as sent.
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = Some(max);
        self
    }

    /// Whether the spans' `url.full` shows each request's query string. Off by default: a
    /// query often carries an API key or a signature, so spans show it as `?***`. Userinfo is
    /// never shown. See [Seeing what calm does](crate#seeing-what-calm-does).
    pub fn trace_url_query(mut self, yes: bool) -> Self {
        self.trace_url_query = yes;
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
        let settings = std::mem::replace(&mut self.transport, Transport::builder());
        // NOTE: the client follows redirects itself, above the transport (see
        // `max_redirects`), so the transport's own follower is off.
        self.max_redirects = self
            .max_redirects
            .or(Some(settings.configured_max_redirects()));
        let transport = settings
            .max_redirects(0)
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
        let session = self
            .session?
            .build()
            .map_err(|e| BuildError::new(BuildErrorKind::Header, e))?;
        if self.max_in_flight == Some(0) {
            return Err(BuildError::new(
                BuildErrorKind::MaxInFlight,
                "max_in_flight is 0: every request would wait for a slot forever",
            ));
        }
        let retry = with_facade_predicates(self.retry);
        let retry_layer = RetryLayer::new(retry)
            .map_err(|e| BuildError::new(BuildErrorKind::Retry, e))?
            .trace_url_query(self.trace_url_query);

        if self.adaptive.is_some() && (self.limiter.is_some() || !self.server_hints) {
            return Err(BuildError::new(
                BuildErrorKind::AdaptiveRate,
                "an adaptive rate learns from the responses the rate limiter reads: it needs \
                 server_hints on and the client's own limiter (for a limiter of your own, use \
                 Limiter::adaptive or Limiter::adaptive_over)",
            ));
        }
        let limiter = match (self.limiter, self.adaptive) {
            (Some(limiter), _) => Some(limiter),
            (None, Some(adaptive)) => Some(
                Limiter::adaptive(self.quotas.iter().copied(), adaptive)
                    .map_err(|e| BuildError::new(BuildErrorKind::AdaptiveRate, e))?,
            ),
            (None, None) => {
                (!self.quotas.is_empty()).then(|| Limiter::with_quotas(self.quotas.iter().copied()))
            }
        };
        let rate_limit_layer = limiter.clone().map(|limiter| {
            let mut layer = RateLimitLayer::from_limiter(limiter)
                .server_hints(self.server_hints)
                .host(session.base_url().authority().as_str());
            if let Some(max_wait) = self.max_wait {
                layer = layer.max_wait(max_wait);
            }
            if let Some(max_pause) = self.max_pause {
                layer = layer.max_pause(max_pause);
            }
            layer
        });

        let recorder = Arc::new(Recorder::default());
        // NOTE: hops are paced below the redirect follower, through the same limiter; the
        // response they end with is read for hints once, by the layer above.
        let hop_limit = rate_limit_layer
            .as_ref()
            .map(|layer| layer.clone().server_hints(false).layer(transport.clone()));
        let defaults = Arc::new(session.default_headers().clone());
        let hops = HopLimit::new(transport, defaults, hop_limit, Arc::clone(&recorder));
        let stack = ServiceBuilder::new()
            .layer(retry_layer)
            .option_layer(rate_limit_layer)
            .option_layer(self.max_in_flight.map(ConcurrencyLimitLayer::new))
            .layer_fn(|inner| Attempts::new(inner, self.attempt_timeout, Arc::clone(&recorder)))
            .layer(FollowRedirectLayer::new(self.max_redirects.unwrap_or(10)))
            .service(hops);

        Ok(Client {
            shared: Arc::new(Shared {
                stack: Stack::new(stack),
                session,
                recorder,
                limiter,
                timeout: self.timeout,
            }),
        })
    }
}

/// `policy` with the facade's two error tests, which know the layers below the retry layer:
/// a rate-limiter refusal is never retried, and calm's transport says itself whether a
/// request was never sent.
pub(crate) fn with_facade_predicates(policy: RetryPolicy) -> RetryPolicy {
    policy
        .retryable_error(not_a_rate_limit_refusal)
        .connect_error(never_sent)
        .refused_until(place_available_at)
}

/// The rate limiter refused to wait for a place this far away: the attempt never started.
fn place_available_at(error: &(dyn std::error::Error + 'static)) -> Option<tokio::time::Instant> {
    sources(error)
        .find_map(|error| error.downcast_ref::<calm_ratelimit::error::MaxWaitExceeded>())
        .map(calm_ratelimit::error::MaxWaitExceeded::available_at)
}

/// Every inner error is worth another attempt except the rate limiter's own refusals: one a
/// caller asked for by setting `max_wait`, and a shared limiter failing closed.
fn not_a_rate_limit_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    !is_rate_limit_refusal(error)
}

fn is_rate_limit_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    sources(error).any(|error| {
        error.is::<calm_ratelimit::error::MaxWaitExceeded>()
            || error.is::<calm_ratelimit::error::Unavailable>()
    })
}

/// A connect failure, TLS handshake failure or connect timeout of calm's transport (the
/// request never left), or else a refused connection of any other transport.
fn never_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    // NOTE: a limiter's refusal was never sent either, but it is not a connection failure
    // (a shared limiter's refused connection to its store sits in its source chain).
    if is_rate_limit_refusal(error) {
        return false;
    }
    match sources(error).find_map(|error| error.downcast_ref::<TransportError>()) {
        Some(transport) => transport.is_connect(),
        None => calm_retry::error::is_connection_refused(error),
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("session", &self.session)
            .field("retry", &self.retry)
            .field("quotas", &self.quotas)
            .field("limiter", &self.limiter)
            .field("max_wait", &self.max_wait)
            .field("server_hints", &self.server_hints)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_redirects", &self.max_redirects)
            .field("adaptive", &self.adaptive)
            .finish_non_exhaustive()
    }
}
