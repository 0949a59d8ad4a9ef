//! [`Client`] and [`ClientBuilder`]: the three layers composed for one base URL.

mod attempts;
mod builder;
mod future;
mod hops;
mod stack;
mod transport_options;

pub(crate) use builder::with_facade_predicates;
pub use builder::ClientBuilder;
pub use future::ResponseFuture;

use crate::stats::{to_millis, LearnedRate, Recorder, Stats};
use crate::{Body, RequestBuilder};
use calm_client::{BaseUrl, IntoBaseUrl, SharedClientLayer};
use calm_ratelimit::{Limiter, Snapshot};
use http::{Method, Request, Response};
use stack::Stack;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{BoxError, Service};

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
/// Outermost first: the session ([`SharedClientLayer`]: resolve the URI) → the request's
/// `timeout` → `Retry` → `RateLimit` → `ConcurrencyLimit` → each attempt (counted, and cut by
/// `attempt_timeout`) → redirects
/// ([`FollowRedirectLayer`](crate::client::redirect::FollowRedirectLayer)) → each hop (the
/// session's default headers, which a request's own headers override; after a hop to another
/// origin, no default credentials) → transport. The default headers go in last so that the
/// retry layer's and the redirect follower's copies of each request stay small. Retry sits
/// outside the rate limiter so every retry pays for its place like a first try; the per-attempt
/// timeout sits inside it so time spent queueing for a place is not counted against an attempt;
/// the concurrency limit sits inside the rate limiter, which takes a place only once the layers
/// below are ready, so a place is never spent waiting for an in-flight slot. Redirects are
/// followed inside the attempt (the retry layer sees the chain as one request, and once a hop
/// went out the request counts as sent), and every hop to the API's origin takes its own place
/// in the same rate limiter; a hop to another origin does not spend the API's quota.
///
/// # Readiness
///
/// A `Client` is always ready: [`poll_ready`](Service::poll_ready) returns at once and the
/// returned future waits for the stack's readiness (the rate limiter's place, an in-flight
/// slot) itself. So a request the session refuses fails at once without taking a place, the
/// `timeout` covers the wait for the first place too, and a clone that is never called holds
/// nothing.
///
/// # Time limits
///
/// Each limit has one meaning; none is set by default.
///
/// | limit | covers | ends with |
/// |---|---|---|
/// | [`timeout`](ClientBuilder::timeout), [`RequestBuilder::timeout`](crate::RequestBuilder::timeout) (the shorter wins) | the whole request: rate-limiter waits, every attempt and backoff, redirects, and reading the response body to its end | [`Error::is_timeout`](crate::Error::is_timeout) ([`TimedOut`](crate::error::TimedOut)) — at once when the rate limiter's place lies past it ([`rate_limited_until`](crate::Error::rate_limited_until) says when); a retry that would end past it is not begun and the last response is returned |
/// | [`attempt_timeout`](ClientBuilder::attempt_timeout) | one attempt, from leaving the rate limiter to the response head (redirects included), not the body | an error the retry policy may retry |
/// | [`max_wait`](ClientBuilder::max_wait) | one wait for a place in the rate limiter | [`Error::is_rate_limited`](crate::Error::is_rate_limited), at once, not retried |
/// | connect timeout ([`TransportBuilder::connect_timeout`](crate::client::transport::TransportBuilder::connect_timeout), 10 s by default) | one TCP connect | [`Error::is_connect`](crate::Error::is_connect); retried for every method (nothing was sent) |
///
/// # Errors
///
/// [`RequestBuilder::send`](crate::RequestBuilder::send) returns a [`calm::Error`](crate::Error)
/// whose methods say what happened. This `Service` implementation keeps tower's
/// [`BoxError`], as every tower layer around it expects ([`Error::from_boxed`](crate::Error::from_boxed)
/// reads one): [`ResolveError`](crate::client::ResolveError) (the request would have left the
/// base URL; nothing was sent), [`RetryError`](crate::retry::error::RetryError) (the attempts
/// failed; it carries the [`RetryInfo`](crate::RetryInfo) and, as its source, the last
/// attempt's error — a [`TransportError`](crate::client::transport::TransportError), a
/// per-attempt [`Elapsed`](tower::timeout::error::Elapsed) or the rate limiter's
/// [`MaxWaitExceeded`](crate::ratelimit::error::MaxWaitExceeded)), or
/// [`TimedOut`](crate::error::TimedOut) when the whole request's `timeout` ran out.
/// HTTP failures are responses, not errors: a 503 that retries could not fix is returned as
/// the 503 it is ([`Response::error_for_status`](crate::Response::error_for_status) turns it
/// into an error).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    stack: Stack,
    session: SharedClientLayer,
    recorder: Arc<Recorder>,
    limiter: Option<Limiter>,
    timeout: Option<Duration>,
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
        self.shared.session.base_url()
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
            stats.server_pauses = snapshot.pauses;
            stats.learned_rate = snapshot.learned_rate;
        }
        stats
    }

    /// The limiter's state now, if the client has one.
    pub fn limiter_snapshot(&self) -> Option<Snapshot> {
        self.shared.limiter.as_ref().map(Limiter::snapshot)
    }

    /// Counts a request refused before it reached the stack (a path that is not a URI), as
    /// `Service::call` counts one the session refuses.
    pub(crate) fn record_refused(&self) {
        self.shared.recorder.request();
        self.shared.recorder.refused();
    }

    /// Sends `request`, whose URI is resolved under the base URL already (by `Service::call`
    /// or a [`RequestBuilder`]), through the stack.
    pub(crate) fn send_resolved(&self, request: Request<Body>) -> ResponseFuture {
        self.shared.recorder.request();
        ResponseFuture::send(request, Arc::clone(&self.shared))
    }

    /// A request with any method.
    pub fn request(&self, method: Method, path: impl AsRef<str>) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, path.as_ref())
    }

    /// A `GET` request for `path`, resolved under the base URL.
    pub fn get(&self, path: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A `POST` request. Not retried after it may have reached the server unless it carries
    /// an `Idempotency-Key` header (see [`RetryPolicy`](crate::RetryPolicy)).
    pub fn post(&self, path: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// A `PUT` request.
    pub fn put(&self, path: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    /// A `PATCH` request (retried like `POST`).
    pub fn patch(&self, path: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// A `DELETE` request.
    pub fn delete(&self, path: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// A `HEAD` request.
    pub fn head(&self, path: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::HEAD, path)
    }
}

impl<B> Service<Request<B>> for Client
where
    B: Into<Body>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let mut request = request.map(Into::into);
        // NOTE: only the URI: the default headers are added at the bottom of the stack, per
        // hop (see `hops`).
        match self.base_url().resolve(request.uri()) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(refused) => {
                self.record_refused();
                return ResponseFuture::refused(refused.into());
            }
        }
        self.send_resolved(request)
    }
}

impl fmt::Debug for Client {
    /// The base URL and, with a rate limiter, its quotas, queue and pause now; no internals.
    ///
    /// ```
    /// # use std::num::NonZeroU32;
    /// # let api = tower::service_fn(|_r: http::Request<calm::Body>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty())) });
    /// let client = calm::Client::builder("https://api.example.com/v1")
    ///     .bearer_auth("secret")
    ///     .rate_limit(calm::Quota::per_second(NonZeroU32::new(10).unwrap()))
    ///     .build_with(api)
    ///     .unwrap();
    /// assert_eq!(
    ///     format!("{client:?}"),
    ///     r#"Client { base_url: "https://api.example.com/v1/", quotas: [10/s], queued: 0, paused: no, .. }"#,
    /// );
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Client");
        s.field("base_url", &self.shared.session.base_url().as_str());
        match &self.shared.limiter {
            None => s.field("rate_limit", &format_args!("none")),
            Some(limiter) => {
                let snapshot = limiter.snapshot();
                s.field("quotas", &Quotas(limiter.quotas()));
                if snapshot.learned_rate.is_some() {
                    let rate = LearnedRate(snapshot.learned_rate);
                    s.field("learned_rate", &format_args!("{rate}"));
                }
                s.field("queued", &snapshot.queued);
                match snapshot.paused_for() {
                    Some(left) => s.field("paused", &format_args!("{:?} left", to_millis(left))),
                    None => s.field("paused", &format_args!("no")),
                }
            }
        };
        s.finish_non_exhaustive()
    }
}

/// Quotas as `[10/s, 5000/h]`.
struct Quotas<'a>(&'a [calm_ratelimit::Quota]);

impl fmt::Debug for Quotas<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for quota in self.0 {
            list.entry(&format_args!("{quota}"));
        }
        list.finish()
    }
}
