//! [`BuildError`]: a client that cannot be built.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use tower::BoxError;

/// A [`Client`](crate::Client) could not be built from its configuration.
///
/// [`kind`](BuildError::kind) says which part was wrong; [`source`](StdError::source) is the
/// member crate's own error with the details.
///
/// ```
/// let error = calm::Client::builder("ftp://api.example.com").build().unwrap_err();
/// assert_eq!(error.kind(), calm::BuildErrorKind::BaseUrl);
/// assert!(error.to_string().contains("base URL"));
/// ```
#[derive(Clone, Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
    source: Arc<dyn StdError + Send + Sync>,
}

/// Which part of a client's configuration was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// The base URL is invalid ([`InvalidBaseUrl`](crate::client::InvalidBaseUrl)).
    BaseUrl,
    /// A default header cannot be sent ([`calm_client::error::BuildError`]).
    Header,
    /// The retry policy is invalid ([`ConfigError`](crate::retry::error::ConfigError)).
    Retry,
    /// The default transport could not be set up
    /// ([`TransportError`](crate::client::transport::TransportError)).
    Transport,
    /// [`max_in_flight`](crate::ClientBuilder::max_in_flight) is `0`, so no request could
    /// ever be sent.
    MaxInFlight,
    /// An [`adaptive_rate`](crate::ClientBuilder::adaptive_rate) setting is out of range
    /// ([`InvalidAdaptive`](crate::ratelimit::InvalidAdaptive)).
    AdaptiveRate,
}

impl BuildError {
    pub(crate) fn new(kind: BuildErrorKind, source: impl Into<BoxError>) -> Self {
        BuildError {
            kind,
            source: Arc::from(source.into()),
        }
    }

    /// Which part of the configuration was wrong.
    pub fn kind(&self) -> BuildErrorKind {
        self.kind
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = match self.kind {
            BuildErrorKind::BaseUrl => "invalid base URL",
            BuildErrorKind::Header => "invalid default header",
            BuildErrorKind::Retry => "invalid retry policy",
            BuildErrorKind::Transport => "transport setup failed",
            BuildErrorKind::MaxInFlight => "invalid in-flight limit",
            BuildErrorKind::AdaptiveRate => "invalid adaptive rate",
        };
        write!(f, "cannot build client: {part}: {}", self.source)
    }
}

impl StdError for BuildError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
