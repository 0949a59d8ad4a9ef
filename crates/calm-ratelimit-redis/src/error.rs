//! Errors found when a Redis backend is built.

use std::error::Error as StdError;
use std::fmt;

use calm_ratelimit::BoxError;

/// A Redis backend that cannot be built: every setting is checked by
/// [`build`](crate::RedisBackendBuilder::build), never later.
///
/// # Examples
///
/// ```
/// use calm_ratelimit_redis::{ErrorKind, RedisBackend};
///
/// let err = RedisBackend::builder("http://localhost", "github").build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidUrl);
///
/// let err = RedisBackend::builder("redis://127.0.0.1/", "").build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::EmptyName);
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    source: Option<BoxError>,
}

/// What was wrong with the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A Redis URL that redis-rs does not accept (`redis://`, `rediss://`, `unix://`, …).
    InvalidUrl,
    /// The limiter's name is empty: it names the keys every process shares.
    EmptyName,
    /// The key prefix contains `{` or `}`, which would change the keys' hash tag.
    InvalidKeyPrefix,
    /// A quota whose period and burst, in microseconds, pass 2^53: the script's arithmetic
    /// (Lua numbers) would no longer be exact.
    QuotaTooLarge,
    /// A cluster builder was given no node.
    NoNode,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error {
            kind,
            detail: detail.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.source = Some(source.into());
        self
    }

    /// What was wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis rate limiter: {}", self.detail)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
