//! Error types of calm-client.
//!
//! Every error is an opaque struct with a `kind()` accessor returning a `#[non_exhaustive]`
//! enum, so a caller can branch on what went wrong while the messages stay free to improve.
//! Behind a [`tower::BoxError`], `downcast_ref::<ResolveError>()` (and so on) tells that this
//! crate produced the error.
//!
//! Messages, `Display` and `Debug` never repeat secrets: a URL is shown with everything up to
//! its last `@` (userinfo, even when a password holds a `/`, `?` or `#`), its query and its
//! fragment replaced by `***`; a part of a URL that might be the end of a password is not
//! echoed at all; header values are never shown.

use std::error::Error as StdError;
use std::fmt;

#[doc(no_inline)]
pub use crate::transport::{BodyError, BodyErrorKind, TransportError, TransportErrorKind};

/// A string that is not an acceptable base URL; returned by [`BaseUrl::parse`](crate::BaseUrl::parse).
///
/// The message names the part that is wrong and why, for example
/// ``invalid base URL "https://api.example.com/v1?***": a base URL cannot have a query (`?…`); put query parameters on each request``.
///
/// ```
/// use calm_client::{BaseUrl, error::InvalidBaseUrlKind};
///
/// let err = BaseUrl::parse("https://user:hunter2@api.example.com").unwrap_err();
/// assert_eq!(err.kind(), InvalidBaseUrlKind::UserInfo);
/// assert!(!err.to_string().contains("hunter2"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidBaseUrl {
    kind: InvalidBaseUrlKind,
    input: Box<str>,
    message: Box<str>,
}

/// What is wrong with a base URL; see [`InvalidBaseUrl::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidBaseUrlKind {
    /// The string is empty.
    Empty,
    /// The string contains whitespace or a control character (often a stray newline read
    /// from a configuration file).
    InvalidCharacter,
    /// The string does not start with `scheme://`.
    MissingScheme,
    /// The scheme is not `http` or `https`.
    UnsupportedScheme,
    /// There is no host after `scheme://`.
    MissingHost,
    /// The host is not a valid host name, IPv4 address or bracketed IPv6 address: a character
    /// that cannot appear in a host, an internationalized name that UTS #46 (IDNA) refuses, or
    /// a host that ends in a number (so is an IPv4 address under the WHATWG URL rules) but is
    /// not a valid IPv4 address (`1.2.3.4.5`, `256.0.0.1`, `example.123`).
    InvalidHost,
    /// The port is not a number from 1 to 65535, or is written with more than 16 characters
    /// (leading zeros are fine: `:0443` is port 443).
    InvalidPort,
    /// The URL carries userinfo (`user:password@`); credentials belong in headers.
    UserInfo,
    /// The URL has a query (`?…`); query parameters belong on each request.
    Query,
    /// The URL has a fragment (`#…`), which is never sent to a server.
    Fragment,
    /// The path contains a character that must be percent-encoded, or a malformed `%` escape.
    InvalidPath,
    /// The path contains a dot segment (`.`, `..`, or a percent-encoded form of them).
    DotSegment,
}

impl InvalidBaseUrl {
    pub(crate) fn new(kind: InvalidBaseUrlKind, input: &str, message: impl Into<Box<str>>) -> Self {
        InvalidBaseUrl {
            kind,
            input: redact_url(input).into_boxed_str(),
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> InvalidBaseUrlKind {
        self.kind
    }
}

impl fmt::Display for InvalidBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid base URL {:?}: {}", self.input, self.message)
    }
}

impl StdError for InvalidBaseUrl {}

/// A request URI that [`BaseUrl::resolve`](crate::BaseUrl::resolve) refuses, so that a
/// request never leaves its base URL.
///
/// [`SharedClient`](crate::SharedClient) returns it (boxed) without calling the inner
/// service.
///
/// ```
/// use calm_client::{BaseUrl, error::ResolveErrorKind};
///
/// let base = BaseUrl::parse("https://api.example.com/v1/").unwrap();
/// let err = base.resolve(&"https://evil.example/v1/x".parse().unwrap()).unwrap_err();
/// assert_eq!(err.kind(), ResolveErrorKind::ForeignOrigin);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveError {
    kind: ResolveErrorKind,
    message: Box<str>,
}

/// Why a request URI was refused; see [`ResolveError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResolveErrorKind {
    /// An absolute URI names another origin (scheme, host or port) than the base URL.
    ForeignOrigin,
    /// An absolute URI on the base origin whose path is not under the base path.
    OutsideBasePath,
    /// The path contains a dot segment (`.` or `..`, plain or percent-encoded in any case).
    /// Dot segments are refused, never normalized; see [`BaseUrl::resolve`](crate::BaseUrl::resolve).
    DotSegment,
    /// An absolute URI carries userinfo (`user@host`); credentials belong in headers.
    UserInfo,
    /// An absolute URI's port is not a number from 1 to 65535 (or is written with more than
    /// 16 characters). Leading zeros are fine: `:0443` is port 443.
    InvalidPort,
    /// The reference is not a valid URI reference (only from
    /// [`BaseUrl::resolve_str`](crate::BaseUrl::resolve_str)).
    InvalidReference,
}

impl ResolveError {
    pub(crate) fn new(kind: ResolveErrorKind, message: impl Into<Box<str>>) -> Self {
        ResolveError {
            kind,
            message: message.into(),
        }
    }

    /// Why the URI was refused.
    pub fn kind(&self) -> ResolveErrorKind {
        self.kind
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request URI refused: {}", self.message)
    }
}

impl StdError for ResolveError {}

/// A [`SharedClientBuilder`](crate::SharedClientBuilder) setting that cannot work; returned by
/// [`build`](crate::SharedClientBuilder::build).
///
/// Setters keep the first mistake and `build` reports it, so every configuration error
/// surfaces in one place, before any request is sent.
///
/// ```
/// use calm_client::{SharedClientLayer, error::BuildErrorKind};
///
/// let err = SharedClientLayer::builder("https://api.example.com")
///     .default_header("x-api-key", "line\nbreak")
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), BuildErrorKind::InvalidHeaderValue);
/// assert!(err.to_string().contains("x-api-key"));
/// ```
#[derive(Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
    message: Box<str>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// Which setting is wrong; see [`BuildError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// The base URL is invalid; the source is the [`InvalidBaseUrl`].
    InvalidBaseUrl,
    /// A header name is invalid.
    InvalidHeaderName,
    /// A header value (a default header, the bearer token, the basic credentials or the user
    /// agent) contains characters that cannot be sent in a header.
    InvalidHeaderValue,
}

impl BuildError {
    pub(crate) fn new(
        kind: BuildErrorKind,
        message: impl Into<Box<str>>,
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        BuildError {
            kind,
            message: message.into(),
            source,
        }
    }

    /// Which setting is wrong.
    pub fn kind(&self) -> BuildErrorKind {
        self.kind
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for BuildError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<InvalidBaseUrl> for BuildError {
    fn from(err: InvalidBaseUrl) -> Self {
        BuildError::new(
            BuildErrorKind::InvalidBaseUrl,
            err.to_string(),
            Some(Box::new(err)),
        )
    }
}

/// Replaces what may be a secret in a URL-ish string by `***`: everything between `scheme://`
/// (or the start) and the last `@`, the query and the fragment.
///
/// NOTE: the authority is not trusted to end at the first `/`, `?` or `#`: a password may hold
/// them (`https://u:Zm9v/YmFy@h/`), so the last `@` anywhere is taken as the end of the
/// userinfo. A path or query with an `@` is over-redacted, which is the safe side. When a `?`
/// or `#` comes before that `@`, nothing after the scheme is shown.
#[doc(hidden)]
pub fn redact_url(input: &str) -> String {
    let mut out = String::with_capacity(input.len().min(256) + 8);
    let rest = match input.find("://") {
        Some(i) => {
            out.push_str(&input[..i + 3]);
            &input[i + 3..]
        }
        None => input,
    };
    let rest = match rest.rfind('@') {
        Some(at) if rest[..at].contains(['?', '#']) => {
            out.push_str("***");
            return out;
        }
        Some(at) => {
            out.push_str("***@");
            &rest[at + 1..]
        }
        None => rest,
    };
    match rest.find(['?', '#']) {
        Some(i) => {
            out.push_str(&rest[..=i]);
            out.push_str("***");
            // NOTE: keep the `#` that follows a query, so the shape stays readable.
            if rest.as_bytes()[i] == b'?' && rest[i..].contains('#') {
                out.push_str("#***");
            }
        }
        None => out.push_str(rest),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_userinfo_query_and_fragment() {
        for (input, expected) in [
            ("https://u:p@h/x?k=v#f", "https://***@h/x?***#***"),
            ("https://h/x", "https://h/x"),
            ("h/x?key=1", "h/x?***"),
            ("a@b", "***@b"),
            ("u:p@h/v1", "***@h/v1"),
            ("//u:p@h/v1", "***@h/v1"),
            ("https://h#a?b", "https://h#***"),
            (
                "https://svc:Zm9v/YmFy@api.example.com/v1",
                "https://***@api.example.com/v1",
            ),
            ("https://svc:a?b@h/v1", "https://***"),
            ("https://svc:a#b@h/v1", "https://***"),
            ("https://svc:a@b@h/v1", "https://***@h/v1"),
            ("https://h/v1?email=a@b.example", "https://***"),
        ] {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }
}
