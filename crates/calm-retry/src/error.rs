//! Error types of the retry layer.
//!
//! - [`RetryError`]: what [`Retry`](crate::Retry) returns when the final outcome of a request
//!   is an error. It wraps the inner service's last error (its
//!   [`source`](std::error::Error::source)) together with the [`RetryInfo`] of the attempts
//!   made, or the [`ConfigError`] of an invalid per-request policy.
//! - [`ConfigError`]: an invalid [`RetryPolicy`](crate::RetryPolicy) or
//!   [`Backoff`](crate::Backoff), reported when the layer is built, or an invalid
//!   [`RetryBudget`](crate::RetryBudget), reported when the budget is made.
//! - [`ReplayError`]: a [`ReplayBody`](crate::ReplayBody) asked to replay bytes it did not keep.

use std::{error::Error as StdError, fmt, io};

use tower::BoxError;

use crate::info::RetryInfo;

/// The final error of a request that went through [`Retry`](crate::Retry).
///
/// HTTP failures are responses, not errors: a `503` that retries could not fix comes back as
/// the `503` it is. A `RetryError` means the inner service itself failed (a transport error,
/// a timeout below the layer, ...) and retries either were not allowed or did not help, or
/// that a per-request [`RetryPolicy`](crate::RetryPolicy) was invalid.
///
/// The inner error is [`source()`](std::error::Error::source), so code that walks the source
/// chain (or uses [`RetryError::find_source`]) still finds it; [`RetryError::info`] says what
/// was tried.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use calm_retry::{error::RetryError, RetryLayer, RetryPolicy};
/// use http::{Request, Response};
/// use tower::{BoxError, Layer, ServiceExt};
///
/// #[derive(Debug)]
/// struct Down;
/// impl std::fmt::Display for Down {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("down") }
/// }
/// impl std::error::Error for Down {}
///
/// let backend = tower::service_fn(|_req: Request<String>| async {
///     Err::<Response<String>, BoxError>(Box::new(Down))
/// });
/// let policy = RetryPolicy::default().max_retries(2).backoff(calm_retry::Backoff::none());
/// let svc = RetryLayer::new(policy).unwrap().layer(backend);
///
/// let err: RetryError = svc.oneshot(Request::new(String::new())).await.unwrap_err();
/// assert_eq!(err.info().unwrap().attempts(), 3);
/// assert!(err.find_source::<Down>().is_some());
/// # }
/// ```
pub struct RetryError {
    kind: RetryErrorKind,
    info: Option<RetryInfo>,
    source: Option<BoxError>,
}

/// What kind of [`RetryError`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryErrorKind {
    /// The inner service failed (in `call` or `poll_ready`); the error is the `source()`.
    Service,
    /// The [`RetryPolicy`](crate::RetryPolicy) found in the request's extensions is invalid;
    /// the request was not sent. The [`ConfigError`] is the `source()`.
    InvalidPolicy,
}

impl RetryError {
    pub(crate) fn service(source: BoxError, info: RetryInfo) -> Self {
        RetryError {
            kind: RetryErrorKind::Service,
            info: Some(info),
            source: Some(source),
        }
    }

    pub(crate) fn invalid_policy(error: ConfigError) -> Self {
        RetryError {
            kind: RetryErrorKind::InvalidPolicy,
            info: None,
            source: Some(Box::new(error)),
        }
    }

    /// What kind of error this is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use calm_retry::error::{ConfigError, RetryErrorKind};
    /// use calm_retry::{Backoff, RetryLayer, RetryPolicy};
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     Ok::<_, tower::BoxError>(Response::new(String::new()))
    /// # });
    /// let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
    ///
    /// // A per-request policy is checked when the request arrives.
    /// let shrinking = Backoff::exponential(Duration::from_secs(1)).factor(0.5);
    /// let mut req = Request::new(String::new());
    /// req.extensions_mut().insert(RetryPolicy::default().backoff(shrinking));
    ///
    /// let err = svc.oneshot(req).await.unwrap_err();
    /// assert_eq!(err.kind(), RetryErrorKind::InvalidPolicy);
    /// assert!(err.info().is_none()); // nothing was sent
    /// assert!(err.find_source::<ConfigError>().is_some());
    /// # }
    /// ```
    pub fn kind(&self) -> RetryErrorKind {
        self.kind
    }

    /// What the layer did before giving up: attempts, the reason and wait of each retry and
    /// why it stopped. `None` when the request was never sent (an invalid per-request policy).
    pub fn info(&self) -> Option<&RetryInfo> {
        self.info.as_ref()
    }

    /// The inner service's last error (or the [`ConfigError`]), by reference.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::io;
    /// use calm_retry::{RetryLayer, RetryPolicy};
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     Err::<Response<String>, _>(tower::BoxError::from(io::Error::other("disk full")))
    /// # });
    /// // `backend` fails with an `io::Error`; POST is not retried.
    /// let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
    /// let req = Request::post("/upload").body(String::new()).unwrap();
    ///
    /// let err = svc.oneshot(req).await.unwrap_err();
    /// let inner = err.inner().unwrap();
    /// assert_eq!(inner.to_string(), "disk full");
    /// assert!(inner.is::<io::Error>());
    /// # }
    /// ```
    pub fn inner(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// Takes the inner service's last error (or the [`ConfigError`]) out of this error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::io;
    /// use calm_retry::{Backoff, RetryLayer, RetryPolicy};
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt};
    ///
    /// # let backend = tower::service_fn(|_req: Request<String>| async {
    /// #     Err::<Response<String>, _>(tower::BoxError::from(io::Error::from(
    /// #         io::ErrorKind::TimedOut,
    /// #     )))
    /// # });
    /// // `backend` always times out.
    /// let policy = RetryPolicy::default().backoff(Backoff::none());
    /// let svc = RetryLayer::new(policy).unwrap().layer(backend);
    ///
    /// let err = svc.oneshot(Request::new(String::new())).await.unwrap_err();
    /// // Hand the transport's own error on, without the retry wrapper.
    /// let inner: Box<io::Error> = err.into_inner().unwrap().downcast().unwrap();
    /// assert_eq!(inner.kind(), io::ErrorKind::TimedOut);
    /// # }
    /// ```
    pub fn into_inner(self) -> Option<BoxError> {
        self.source
    }

    /// Searches the source chain (starting with the inner error) for an error of type `E`.
    /// See the type's example.
    pub fn find_source<E: StdError + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn StdError + 'static)> = self.source();
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

impl fmt::Debug for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryError")
            .field("kind", &self.kind)
            .field("info", &self.info)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RetryErrorKind::Service => match &self.info {
                Some(info) if info.attempts() > 1 => write!(
                    f,
                    "request failed after {} attempts ({})",
                    info.attempts(),
                    info.stop_reason()
                ),
                _ => f.write_str("request failed"),
            },
            RetryErrorKind::InvalidPolicy => f.write_str("invalid per-request retry policy"),
        }
    }
}

impl StdError for RetryError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// An invalid retry configuration, found when the layer (or a
/// [`RetryBudget`](crate::RetryBudget)) is built.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use calm_retry::{error::ConfigErrorKind, RetryBudget};
///
/// let err = RetryBudget::new(Duration::from_secs(10), 1, f32::NAN).unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::BudgetRatio);
/// assert!(err.to_string().starts_with("invalid retry configuration"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: &'static str,
}

/// Which setting a [`ConfigError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The growth factor of [`Backoff::exponential`](crate::Backoff::exponential) is not a
    /// finite number ≥ 1, or the factor of [`Backoff::urllib3`](crate::Backoff::urllib3) is not
    /// a finite number ≥ 0.
    BackoffFactor,
    /// [`Jitter::Proportional`](crate::Jitter::Proportional) is not a finite fraction in
    /// `0.0..=1.0`.
    Jitter,
    /// The budget window is outside 1 s ..= 60 s.
    BudgetWindow,
    /// The budget's retry ratio is not a finite number in `0.0..=1000.0`.
    BudgetRatio,
    /// The budget's per-second floor is too large (≥ `i32::MAX`).
    BudgetMinPerSecond,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, detail: &'static str) -> Self {
        ConfigError { kind, detail }
    }

    /// Which setting is invalid. See the type's example.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid retry configuration: {}", self.detail)
    }
}

impl StdError for ConfigError {}

/// A [`ReplayBody`](crate::ReplayBody) was asked for bytes it could not replay: its buffer
/// went past the cap (or the original body failed) while another copy was still behind.
///
/// [`Retry`](crate::Retry) never starts a retry whose body is in that state; this error only
/// shows up when copies are polled concurrently (say, the server answered before it had read
/// the whole first body and that body is still streaming past the cap).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bytes::Bytes;
/// use calm_retry::{error::ReplayError, ReplayBody, TryCloneBody};
/// use http_body_util::{BodyExt, Full};
///
/// let first = ReplayBody::with_max_bytes(Full::new(Bytes::from("0123456789")), 4);
/// let behind = first.try_clone_body().unwrap();
/// // The first copy streams past the 4-byte cap: it still gets every byte...
/// assert_eq!(first.collect().await.unwrap().to_bytes(), "0123456789");
/// // ...but the copy that was behind cannot have them any more.
/// let err = behind.collect().await.unwrap_err();
/// assert!(err.is::<ReplayError>());
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayError {
    _priv: (),
}

impl ReplayError {
    pub(crate) fn new() -> Self {
        ReplayError { _priv: () }
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body cannot be replayed: its buffer exceeded the replay cap")
    }
}

impl StdError for ReplayError {}

/// The default test for "the request was never sent": walks `err`'s source chain (starting
/// with `err` itself) looking for a [`std::io::Error`] of kind
/// [`ConnectionRefused`](std::io::ErrorKind::ConnectionRefused).
///
/// This recognises refused connects from hyper-util's legacy client and from calm's transport,
/// whose errors keep the `io::Error` in their source chain. An error of a follow-up request
/// (a [`FollowUpError`](crate::follow_up::FollowUpError) in the chain: a redirect hop) is never
/// "never sent": the request before it was. Replace it with
/// [`RetryPolicy::connect_error`](crate::RetryPolicy::connect_error).
///
/// # Examples
///
/// ```
/// use std::io;
/// let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
/// assert!(calm_retry::error::is_connection_refused(&refused));
/// let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
/// assert!(!calm_retry::error::is_connection_refused(&reset));
/// ```
pub fn is_connection_refused(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.is::<crate::follow_up::FollowUpError>() {
            return false;
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::ConnectionRefused {
                return true;
            }
            // NOTE: io::Error::source() skips a custom payload and returns *its* source, so look
            // at the payload itself too.
            if let Some(inner) = io.get_ref() {
                if is_connection_refused(inner) {
                    return true;
                }
            }
        }
        next = err.source();
    }
    false
}

/// The default test for "this transport error may be retried": every error may.
///
/// Replace it with [`RetryPolicy::retryable_error`](crate::RetryPolicy::retryable_error), for
/// example to keep a rate limiter's "wait too long" error from being retried.
///
/// # Examples
///
/// ```
/// use std::io;
/// use calm_retry::error::any_error;
///
/// assert!(any_error(&io::Error::from(io::ErrorKind::ConnectionReset)));
/// assert!(any_error(&std::fmt::Error));
/// ```
pub fn any_error(_err: &(dyn StdError + 'static)) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn connection_refused_is_found_in_the_chain() {
        let err = Wrapper(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(is_connection_refused(&err));
        let err = Wrapper(io::Error::from(io::ErrorKind::TimedOut));
        assert!(!is_connection_refused(&err));
        // A custom io::Error wrapping a refused connect.
        let err = io::Error::other(Wrapper(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert!(is_connection_refused(&err));
    }

    #[test]
    fn find_source_walks_the_chain() {
        let err = RetryError::service(
            Box::new(Wrapper(io::Error::from(io::ErrorKind::TimedOut))),
            RetryInfo::default(),
        );
        assert!(err.find_source::<Wrapper>().is_some());
        assert_eq!(
            err.find_source::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::TimedOut)
        );
        assert!(err.find_source::<ConfigError>().is_none());
    }
}
