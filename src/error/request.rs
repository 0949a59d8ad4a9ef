//! [`Error`]: what happened to which request.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use calm_client::error::{ResolveError, ResolveErrorKind};
use calm_client::transport::TransportError;
use calm_ratelimit::error::{MaxWaitExceeded, Unavailable};
use calm_retry::error::RetryError;
use calm_retry::trace::UrlFull;
use calm_retry::RetryInfo;
use http::{Method, StatusCode, Uri};
use tokio::time::Instant;
use tower::timeout::error::Elapsed;
use tower::BoxError;

/// A request that failed: what happened, to which request, and every underlying error in the
/// [`source`](StdError::source) chain.
///
/// What a caller acts on is a method — [`is_timeout`](Self::is_timeout),
/// [`is_rate_limited`](Self::is_rate_limited), [`status`](Self::status), … — never a
/// downcast. [`Display`](fmt::Display) says it in one line, with the request's method and URL
/// (its query and any userinfo hidden):
///
/// ```text
/// GET https://api.example.com/v1/items?***: timed out after 2 s (3 attempts)
/// ```
///
/// `RequestBuilder::send` and the body readers of [`Response`](crate::Response) return it.
/// The [`Client`](crate::Client)'s `tower::Service` implementation keeps `tower::BoxError`,
/// as every tower layer expects; [`Error::from_boxed`] turns one into this type.
///
/// # Examples
///
/// ```
/// # tokio_test::block_on(async {
/// use std::time::Duration;
/// # let client = calm::Client::builder("http://api.test/v1/")
/// #     .rate_limit(calm::Quota::per_minute(std::num::NonZeroU32::new(1).unwrap()))
/// #     .max_wait(Duration::from_secs(1))
/// #     .build_with(tower::service_fn(|_req: http::Request<calm::Body>| async {
/// #         Ok::<_, std::convert::Infallible>(http::Response::new(calm::Body::empty()))
/// #     }))
/// #     .unwrap();
/// client.get("items").send().await?;
/// let error = client.get("items?page=2").send().await.unwrap_err();
/// assert!(error.is_rate_limited());
/// assert!(error.rate_limited_until().is_some());
/// assert_eq!(error.url().unwrap(), "http://api.test/v1/items?page=2");
/// assert!(error.to_string().starts_with("GET http://api.test/v1/items?***: rate limited"));
/// # Ok::<(), calm::Error>(())
/// # });
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    request: Option<RequestLabel>,
    status: Option<StatusCode>,
    info: Option<RetryInfo>,
    /// How long the request had run when it failed.
    elapsed: Option<Duration>,
    rate_limited_until: Option<Instant>,
    /// How far away the refused place was, as the limiter said when it refused.
    rate_limited_wait: Option<Duration>,
    /// Attempts started, when no retry record says it (a whole-request timeout).
    attempts: Option<u32>,
    source: Option<BoxError>,
}

/// What kind of failure an [`Error`] is; each has its `is_…` method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be built: a header that cannot be sent, a query or form that
    /// cannot be encoded, a path that is not a URI.
    Builder,
    /// The request would leave the client's base URL (another origin, a path outside the
    /// base path, a dot segment, userinfo); nothing was sent.
    Refused,
    /// A time limit ran out: the request's or client's `timeout` (which covers reading the
    /// body), or the last attempt's `attempt_timeout`.
    Timeout,
    /// No connection could be made (refused, DNS, TLS handshake, connect timeout); the
    /// request never left.
    Connect,
    /// The rate limiter would not wait that long for a place (`max_wait`, a server pause);
    /// see [`Error::rate_limited_until`].
    RateLimited,
    /// The rate limiter's shared state is out of reach and it fails closed.
    LimiterUnavailable,
    /// The request failed on its way (the connection broke, a redirect could not be
    /// followed, …).
    Request,
    /// The response has an error status, from
    /// [`error_for_status`](crate::Response::error_for_status).
    Status,
    /// The response body could not be read to its end.
    Body,
    /// The response body is not what it was read as (JSON for the type, UTF-8 text).
    Decode,
}

/// The method and URL of the request an error belongs to.
#[derive(Clone, Debug)]
pub(crate) struct RequestLabel {
    pub(crate) method: Method,
    /// The URL, or, when the path given could not be made one, that path with its query and
    /// any userinfo already hidden.
    pub(crate) url: Result<Uri, Box<str>>,
}

impl RequestLabel {
    pub(crate) fn new(method: Method, url: Uri) -> RequestLabel {
        RequestLabel {
            method,
            url: Ok(url),
        }
    }

    /// A request whose `path` could not be made a URL.
    pub(crate) fn unresolved(method: Method, path: &str) -> RequestLabel {
        RequestLabel {
            method,
            url: Err(redact_reference(path).into()),
        }
    }

    pub(crate) fn url(&self) -> Option<&Uri> {
        self.url.as_ref().ok()
    }
}

/// `reference` with its query, fragment and userinfo replaced by `***`.
fn redact_reference(reference: &str) -> String {
    calm_client::error::redact_url(reference)
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, source: impl Into<BoxError>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                request: None,
                status: None,
                info: None,
                elapsed: None,
                rate_limited_until: None,
                rate_limited_wait: None,
                attempts: None,
                source: Some(source.into()),
            }),
        }
    }

    /// Reads what a boxed error from a [`Client`](crate::Client)'s stack (or a body) says:
    /// its kind, the retry record and the rate limiter's instant, keeping the error as the
    /// source.
    ///
    /// ```
    /// use calm::ErrorKind;
    ///
    /// let boxed: tower::BoxError = Box::new(tower::timeout::error::Elapsed::new());
    /// assert_eq!(calm::Error::from_boxed(boxed).kind(), ErrorKind::Timeout);
    /// ```
    pub fn from_boxed(error: BoxError) -> Error {
        let error = match error.downcast::<Error>() {
            Ok(error) => return *error,
            Err(error) => error,
        };
        let kind = classify(&*error);
        let info = sources(&*error)
            .find_map(|e| e.downcast_ref::<RetryError>())
            .and_then(RetryError::info)
            .cloned();
        let refusal = sources(&*error).find_map(|e| e.downcast_ref::<MaxWaitExceeded>());
        let (until, wait) = (
            refusal.map(MaxWaitExceeded::available_at),
            refusal.map(MaxWaitExceeded::wait),
        );
        let timed_out = sources(&*error).find_map(|e| e.downcast_ref::<TimedOut>());
        let limit = timed_out.map(TimedOut::after);
        let attempts = timed_out.map(TimedOut::attempts).filter(|n| *n > 0);
        let mut this = Error::new(kind, error);
        this.inner.info = info;
        this.inner.rate_limited_until = until;
        this.inner.rate_limited_wait = wait;
        this.inner.elapsed = limit;
        this.inner.attempts = attempts;
        this
    }

    pub(crate) fn status_error(status: StatusCode, request: Option<RequestLabel>) -> Error {
        let mut this = Error::new(ErrorKind::Status, format!("the server answered {status}"));
        this.inner.status = Some(status);
        this.inner.request = request;
        this
    }

    pub(crate) fn for_request(mut self, request: Option<RequestLabel>) -> Error {
        if self.inner.request.is_none() {
            self.inner.request = request;
        }
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Error {
        self.inner.status.get_or_insert(status);
        self
    }

    pub(crate) fn with_elapsed(mut self, elapsed: Duration) -> Error {
        self.inner.elapsed.get_or_insert(elapsed);
        self
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether a time limit ran out (the request's `timeout`, also while reading the body,
    /// or the last attempt's `attempt_timeout`).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether no connection could be made: the request never left.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.inner.kind == ErrorKind::Connect
    }

    /// Whether the rate limiter would not wait that long (`max_wait`, or a server pause
    /// ending past the request's bound); [`rate_limited_until`](Self::rate_limited_until)
    /// says when it could have gone.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.inner.kind == ErrorKind::RateLimited
    }

    /// When a rate-limited request could have gone; also for a [timeout](Self::is_timeout)
    /// because the rate limiter's place lay past it.
    #[must_use]
    pub fn rate_limited_until(&self) -> Option<Instant> {
        self.inner.rate_limited_until
    }

    /// Whether this came from [`error_for_status`](crate::Response::error_for_status).
    #[must_use]
    pub fn is_status(&self) -> bool {
        self.inner.kind == ErrorKind::Status
    }

    /// Whether the response body could not be read to its end.
    #[must_use]
    pub fn is_body(&self) -> bool {
        self.inner.kind == ErrorKind::Body
            || (self.inner.kind == ErrorKind::Timeout && self.inner.status.is_some())
    }

    /// Whether the body is not what it was read as (JSON for the type, UTF-8 text).
    #[must_use]
    pub fn is_decode(&self) -> bool {
        self.inner.kind == ErrorKind::Decode
    }

    /// Whether the request was refused because it would leave the client's base URL.
    #[must_use]
    pub fn is_refused(&self) -> bool {
        self.inner.kind == ErrorKind::Refused
    }

    /// Whether the request could not be built.
    #[must_use]
    pub fn is_builder(&self) -> bool {
        self.inner.kind == ErrorKind::Builder
    }

    /// Whether the request failed on its way, for a reason no other `is_…` names (the
    /// connection broke, a redirect could not be followed, …).
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.inner.kind == ErrorKind::Request
    }

    /// Whether the rate limiter's shared state is out of reach and it fails closed.
    #[must_use]
    pub fn is_limiter_unavailable(&self) -> bool {
        self.inner.kind == ErrorKind::LimiterUnavailable
    }

    /// The response's status, when there was a response (a status error, a body that
    /// failed).
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The request's method.
    #[must_use]
    pub fn method(&self) -> Option<&Method> {
        self.inner.request.as_ref().map(|r| &r.method)
    }

    /// The request's URL, query included (never userinfo: calm refuses it in request URLs).
    /// [`Display`](fmt::Display) hides the query. `None` when the path given could not be
    /// made a URL under the base URL (the error line still shows it, redacted).
    #[must_use]
    pub fn url(&self) -> Option<&Uri> {
        self.inner.request.as_ref().and_then(RequestLabel::url)
    }

    /// The first error of type `E` in the source chain: the layer's own error, when one is
    /// needed (a [`TransportError`](crate::client::transport::TransportError)'s kind, say).
    ///
    /// ```
    /// use calm::retry::error::RetryError;
    ///
    /// let boxed: tower::BoxError = Box::new(tower::timeout::error::Elapsed::new());
    /// let error = calm::Error::from_boxed(boxed);
    /// assert!(error.find_source::<tower::timeout::error::Elapsed>().is_some());
    /// assert!(error.find_source::<RetryError>().is_none());
    /// ```
    #[must_use]
    pub fn find_source<E: StdError + 'static>(&self) -> Option<&E> {
        let first = self
            .inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))?;
        sources(first).find_map(|e| e.downcast_ref::<E>())
    }

    /// What the retry layer did before giving up: attempts, the reason for each retry, why
    /// it stopped.
    #[must_use]
    pub fn retry_info(&self) -> Option<&RetryInfo> {
        self.inner.info.as_ref()
    }
}

/// What the source chain says, outermost first: a refusal by the base URL, a timeout (the
/// whole request's wraps a limiter refusal past it), the rate limiter's refusal, then a
/// connection that could not be made.
fn classify(error: &(dyn StdError + 'static)) -> ErrorKind {
    let mut kind = ErrorKind::Request;
    for e in sources(error) {
        if let Some(refusal) = e.downcast_ref::<ResolveError>() {
            let kind = match refusal.kind() {
                ResolveErrorKind::InvalidReference => ErrorKind::Builder,
                _ => ErrorKind::Refused,
            };
            return kind;
        }
        if e.is::<Elapsed>() || e.is::<TimedOut>() {
            return ErrorKind::Timeout;
        }
        if e.is::<MaxWaitExceeded>() {
            return ErrorKind::RateLimited;
        }
        if e.is::<Unavailable>() {
            return ErrorKind::LimiterUnavailable;
        }
        if let Some(transport) = e.downcast_ref::<TransportError>() {
            if transport.is_connect() {
                kind = ErrorKind::Connect;
            }
        }
        if e.is::<http::Error>()
            || e.is::<http::header::InvalidHeaderName>()
            || e.is::<http::header::InvalidHeaderValue>()
            || e.is::<http::uri::InvalidUri>()
        {
            kind = ErrorKind::Builder;
        }
    }
    if kind == ErrorKind::Request && calm_retry::error::is_connection_refused(error) {
        kind = ErrorKind::Connect;
    }
    kind
}

/// `error` and every error in its source chain, outermost first.
pub(crate) fn sources<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// The request's whole time limit ran out: its [`timeout`](crate::RequestBuilder::timeout)
/// or the client's, which counts until the response body has been read to its end.
///
/// What the [`Client`](crate::Client)'s `Service` implementation, and a response body read
/// past the limit, fail with; [`Error::is_timeout`] says it without a downcast.
///
/// When the request's next place in the rate limiter lies past the limit, it fails at once
/// with this error, whose [`source`](StdError::source) is the limiter's refusal.
#[derive(Clone, Debug)]
pub struct TimedOut {
    pub(crate) after: Duration,
    pub(crate) attempts: u32,
    pub(crate) cause: Option<Arc<dyn StdError + Send + Sync>>,
}

impl TimedOut {
    pub(crate) fn new(after: Duration) -> TimedOut {
        TimedOut {
            after,
            attempts: 0,
            cause: None,
        }
    }

    /// The limit that ran out.
    #[must_use]
    pub fn after(&self) -> Duration {
        self.after
    }

    /// The attempts started before it ran out (0 when the body ran out of time, or nothing
    /// was sent).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the rate limiter's next place lay past the limit, so the request failed before
    /// the limit ran out.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.cause.is_some()
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Some(_) => write!(
                f,
                "the request's next place in the rate limiter lies past its timeout ({})",
                Human(self.after)
            ),
            None => write!(f, "the request's timeout ({}) ran out", Human(self.after)),
        }
    }
}

impl StdError for TimedOut {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause.as_deref().map(|e| e as _)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        if let Some(request) = &inner.request {
            match &request.url {
                Ok(url) => write!(f, "{} {}: ", request.method, redacted(url))?,
                Err(path) => write!(f, "{} {path}: ", request.method)?,
            }
        }
        match inner.kind {
            ErrorKind::Builder => f.write_str("invalid request")?,
            ErrorKind::Refused => f.write_str("refused: it would leave the base URL")?,
            ErrorKind::Timeout => match (inner.rate_limited_wait, inner.elapsed) {
                (Some(wait), Some(limit)) => write!(
                    f,
                    "timed out: its place in the rate limiter, {} away, lies past its timeout \
                     ({})",
                    Human(wait),
                    Human(limit)
                )?,
                _ => {
                    f.write_str("timed out")?;
                    if let Some(elapsed) = inner.elapsed {
                        write!(f, " after {}", Human(elapsed))?;
                    }
                    if inner.status.is_some() {
                        f.write_str(" reading the body")?;
                    }
                }
            },
            ErrorKind::Connect => f.write_str("could not connect")?,
            ErrorKind::RateLimited => {
                f.write_str("rate limited")?;
                if let Some(wait) = inner.rate_limited_wait {
                    write!(f, ": no place for {}", Human(wait))?;
                }
            }
            ErrorKind::LimiterUnavailable => {
                f.write_str("the rate limiter's shared state is out of reach (failing closed)")?;
            }
            ErrorKind::Request => f.write_str("request failed")?,
            ErrorKind::Status => match inner.status {
                Some(status) => write!(f, "the server answered {status}")?,
                None => f.write_str("error status")?,
            },
            ErrorKind::Body => f.write_str("reading the body failed")?,
            ErrorKind::Decode => match inner.status {
                Some(status) => write!(f, "could not decode the {status} response's body")?,
                None => f.write_str("could not decode the body")?,
            },
        }
        let attempts = inner
            .info
            .as_ref()
            .map(RetryInfo::attempts)
            .or(inner.attempts);
        if let Some(attempts) = attempts.filter(|n| *n > 1) {
            write!(f, " ({attempts} attempts)")?;
        }
        // NOTE: the cause's own text, so the one line says why; the chain has the rest.
        if let Some(source) = &inner.source {
            if !matches!(inner.kind, ErrorKind::Timeout | ErrorKind::Status) {
                write!(f, ": {}", Innermost(&**source))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut s = f.debug_struct("Error");
        s.field("kind", &inner.kind);
        if let Some(request) = &inner.request {
            s.field("method", &request.method);
            match &request.url {
                Ok(url) => s.field("url", &format_args!("{}", redacted(url))),
                Err(path) => s.field("url", path),
            };
        }
        if let Some(status) = inner.status {
            s.field("status", &status);
        }
        if let Some(info) = &inner.info {
            s.field("attempts", &info.attempts());
        }
        if let Some(source) = &inner.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|e| e as _)
    }
}

/// The deepest error of a chain whose message says something: wrappers such as "request
/// failed" add nothing to the one line.
struct Innermost<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for Innermost<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = sources(self.0).last().unwrap_or(self.0);
        write!(f, "{last}")
    }
}

/// A URL as errors show it: no userinfo, its query hidden.
fn redacted(uri: &Uri) -> UrlFull<'_> {
    UrlFull {
        uri,
        full_url: false,
    }
}

/// A duration as people write it: `2 s`, `250 ms`, `1.5 s`.
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{} s", d.as_secs())
        } else if d < Duration::from_secs(1) {
            let ms = d.as_secs_f64() * 1000.0;
            if ms.fract() == 0.0 {
                write!(f, "{ms} ms")
            } else {
                write!(f, "{ms:.1} ms")
            }
        } else {
            write!(f, "{:.1} s", d.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (Duration::from_secs(2), "2 s"),
            (Duration::from_millis(250), "250 ms"),
            (Duration::from_millis(1500), "1.5 s"),
            (Duration::from_micros(1500), "1.5 ms"),
        ];
        for (d, text) in cases {
            assert_eq!(Human(d).to_string(), text);
        }
    }

    #[test]
    fn a_path_that_is_no_url_is_shown_without_query_or_userinfo() {
        let cases = [
            ("../admin", "../admin"),
            ("/search?q=red shoes", "/search?***"),
            (
                "https://u:pw@evil.example/x#top",
                "https://***@evil.example/x#***",
            ),
            // NOTE: a password may hold `?` or `#`: nothing of it is shown.
            ("https://svc:a?b@h/v1", "https://***"),
            ("https://u:p#w@evil/x", "https://***"),
        ];
        for (path, shown) in cases {
            assert_eq!(redact_reference(path), shown);
        }
    }

    #[test]
    fn the_query_is_hidden() {
        let uri: Uri = "https://api.example.com/v1/items?token=s3cret"
            .parse()
            .unwrap();
        assert_eq!(
            redacted(&uri).to_string(),
            "https://api.example.com/v1/items?***"
        );
    }
}
