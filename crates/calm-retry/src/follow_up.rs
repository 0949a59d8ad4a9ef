//! Sent means sent: outcomes that come from a follow-up request, not the retried one.
//!
//! A layer below [`Retry`](crate::Retry) may send more than one request for each attempt: a
//! redirect follower sends the original request, then one request per hop. What the retry
//! layer then sees (a response, or an error) belongs to the *last* hop. Two of its rules are
//! about the very request it sent, and must not be applied to a later hop:
//!
//! - "the request never reached the server" (a connect error): a connect error of hop 2 says
//!   nothing about hop 1, which *was* sent and may have been processed;
//! - "the server refused it unprocessed" (429): a 429 from the target of a `303 See Other`
//!   does not mean the `POST` that was answered with the 303 was not processed.
//!
//! A layer that sends follow-up requests marks what comes back from them: a response with the
//! [`FollowUp`] extension, an error wrapped in a [`FollowUpError`]. The retry layer then
//! treats the attempt as sent and processed, whatever the hop's outcome: it retries it only
//! when the request is idempotent (or vouched for by an `Idempotency-Key`). calm-client's
//! redirect follower and transport mark their hops this way.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use calm_retry::follow_up::FollowUp;
//! use calm_retry::{RetryInfo, RetryLayer, RetryPolicy, StopReason};
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt};
//!
//! let sent = Arc::new(AtomicU32::new(0));
//! let counter = Arc::clone(&sent);
//! // A backend whose 429 comes from a redirect hop, after the POST itself was accepted.
//! let backend = tower::service_fn(move |_req: Request<String>| {
//!     counter.fetch_add(1, Ordering::Relaxed);
//!     async {
//!         let mut res = Response::new(String::new());
//!         *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
//!         res.extensions_mut().insert(FollowUp::new(1));
//!         Ok::<_, tower::BoxError>(res)
//!     }
//! });
//! let svc = RetryLayer::new(RetryPolicy::default()).unwrap().layer(backend);
//!
//! let res = svc.oneshot(Request::post("/orders").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(sent.load(Ordering::Relaxed), 1); // the POST is not sent again
//! let info = res.extensions().get::<RetryInfo>().unwrap();
//! assert_eq!(info.stop_reason(), &StopReason::NotRetryable);
//! # }
//! ```

use std::{error::Error as StdError, fmt};

use tower::BoxError;

/// Marks a response (in its extensions) as the answer to follow-up request number `hop`
/// (1 for the first redirect hop), sent after the request the retry layer sent.
///
/// See the [module docs](self) for what the retry layer does with it.
///
/// ```
/// use calm_retry::follow_up::FollowUp;
///
/// let mut res = http::Response::new(());
/// res.extensions_mut().insert(FollowUp::new(2));
/// assert_eq!(res.extensions().get::<FollowUp>().map(FollowUp::hop), Some(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FollowUp {
    hop: u32,
}

impl FollowUp {
    /// The mark of follow-up request number `hop`.
    #[must_use]
    pub const fn new(hop: u32) -> FollowUp {
        FollowUp { hop }
    }

    /// Which follow-up request: 1 for the first redirect hop.
    #[must_use]
    pub const fn hop(&self) -> u32 {
        self.hop
    }
}

/// The error of follow-up request number `hop`: the request it follows was sent.
///
/// Its [`source`](StdError::source) is the hop's own error, so the cause chain is kept; only
/// its meaning for retries changes (see the [module docs](self)).
///
/// ```
/// use std::io;
/// use calm_retry::error::is_connection_refused;
/// use calm_retry::follow_up::{is_follow_up, FollowUpError};
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// assert!(is_connection_refused(&refused));
///
/// let hop = FollowUpError::new(1, refused);
/// assert_eq!(hop.to_string(), "redirect hop 1 failed after the request was sent");
/// assert!(is_follow_up(&hop));
/// assert!(!is_connection_refused(&hop)); // the request itself was sent
/// ```
pub struct FollowUpError {
    hop: u32,
    source: BoxError,
}

impl FollowUpError {
    /// Wraps the error of follow-up request number `hop`.
    pub fn new(hop: u32, source: impl Into<BoxError>) -> FollowUpError {
        FollowUpError {
            hop,
            source: source.into(),
        }
    }

    /// Which follow-up request failed: 1 for the first redirect hop.
    #[must_use]
    pub fn hop(&self) -> u32 {
        self.hop
    }

    /// The hop's own error.
    pub fn into_source(self) -> BoxError {
        self.source
    }
}

impl fmt::Debug for FollowUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowUpError")
            .field("hop", &self.hop)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for FollowUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "redirect hop {} failed after the request was sent",
            self.hop
        )
    }
}

impl StdError for FollowUpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Whether `err` or an error in its source chain is a [`FollowUpError`].
///
/// See [`FollowUpError`] for an example.
pub fn is_follow_up(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.is::<FollowUpError>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// Whether a response is marked as coming from a follow-up request.
pub(crate) fn is_follow_up_response(extensions: &http::Extensions) -> bool {
    extensions.get::<FollowUp>().is_some()
}
