//! [`TransportError`]: why the transport produced no response; [`BodyError`]: why its
//! response body could not be read to the end.

use super::proxy::ProxyConnectError;
use calm_retry::follow_up::FollowUpError;
use http::uri::{Authority, Scheme};
use std::error::Error as StdError;
use std::{fmt, io};
use tower::BoxError;

/// Why the [`Transport`](super::Transport) produced no response (or could not be built).
///
/// HTTP error statuses are responses, not `TransportError`s.
///
/// - [`kind`](TransportError::kind) says what failed; [`is_connect`](TransportError::is_connect)
///   says the request was **never sent** (so it is safe to retry whatever its method).
/// - [`source`](StdError::source) keeps the whole cause chain: the hyper-util error, then
///   hyper's, the connector's and the I/O error. A refused connection has a
///   [`std::io::Error`] of kind [`ConnectionRefused`](std::io::ErrorKind::ConnectionRefused)
///   in it.
/// - `Display` names the target origin and the root cause, for example
///   `could not connect to http://127.0.0.1:9: Connection refused (os error 111)` or
///   `TLS handshake with https://127.0.0.1:4443 failed: invalid peer certificate: UnknownIssuer`.
///   Because it ends with the root cause, printing the whole chain repeats that cause once.
///
/// ```
/// use calm_client::transport::{TransportError, TransportErrorKind};
///
/// fn never_sent(err: &tower::BoxError) -> bool {
///     err.downcast_ref::<TransportError>().is_some_and(TransportError::is_connect)
/// }
/// # let _ = never_sent;
/// ```
pub struct TransportError {
    kind: TransportErrorKind,
    target: Option<Box<str>>,
    message: Option<Box<str>>,
    source: Option<BoxError>,
    hop: Option<u32>,
    proxy: Option<Box<str>>,
}

/// What failed; see [`TransportError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made (DNS, refused, unreachable, unsupported scheme; or the
    /// proxy refused it, asked for credentials or refused the `CONNECT` tunnel, see
    /// [`TransportError::proxy`]): the request was **never sent**.
    Connect,
    /// The TCP connect did not finish within the
    /// [connect timeout](super::TransportBuilder::connect_timeout): the request was **never
    /// sent**.
    ConnectTimeout,
    /// The TLS handshake failed (unknown issuer, name mismatch, no common protocol...): the
    /// request was **never sent**.
    Tls,
    /// The connection closed before a complete response arrived. The server may have
    /// received, and even processed, the request.
    ConnectionClosed,
    /// The server sent something that is not valid HTTP.
    Protocol,
    /// The request could not be sent as given (its body failed, its method or version is
    /// unsupported, its URI is not absolute).
    Request,
    /// The transport could not be built (invalid root certificate, no root certificates, TLS
    /// configuration, a proxy URL that cannot be used, from the builder or the environment);
    /// only from [`TransportBuilder::build`](super::TransportBuilder::build).
    Config,
    /// Any other failure while sending the request or receiving the response head.
    Other,
}

impl TransportError {
    /// What failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the request was never sent: no connection, connect timeout or failed TLS
    /// handshake, and not on a redirect hop (the request before the hop was sent).
    pub fn is_connect(&self) -> bool {
        self.hop.is_none()
            && matches!(
                self.kind,
                TransportErrorKind::Connect
                    | TransportErrorKind::ConnectTimeout
                    | TransportErrorKind::Tls
            )
    }

    /// The redirect hop that failed (1 for the request sent after the first redirect), or
    /// `None` when the request itself failed. A failed hop's request was sent: its source
    /// chain starts with a [`FollowUpError`](calm_retry::follow_up::FollowUpError), so the
    /// retry layer does not take a hop's connect error for a request that was never sent.
    pub fn redirect_hop(&self) -> Option<u32> {
        self.hop
    }

    /// The same error, on redirect hop `hop`.
    pub(crate) fn after_redirect(mut self, hop: u32) -> Self {
        self.hop = Some(hop);
        self.source = self
            .source
            .map(|source| Box::new(FollowUpError::new(hop, source)) as BoxError);
        self
    }

    /// The origin (`scheme://authority`) the request was going to, when known.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The proxy (`scheme://host:port`, never its credentials) that the connection could not
    /// be made through, when the request went through one and failed there: the proxy
    /// refused the connection, asked for credentials (`407`) or refused the tunnel.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    pub(crate) fn config(message: impl Into<Box<str>>, source: Option<BoxError>) -> Self {
        TransportError {
            kind: TransportErrorKind::Config,
            target: None,
            message: Some(message.into()),
            source,
            hop: None,
            proxy: None,
        }
    }

    pub(crate) fn from_client(
        error: hyper_util::client::legacy::Error,
        scheme: Option<&Scheme>,
        authority: Option<&Authority>,
    ) -> Self {
        let kind = classify(&error);
        let proxy = causes(&error)
            .iter()
            .find_map(|e| e.downcast_ref::<ProxyConnectError>())
            .map(|e| e.proxy().into());
        // NOTE: never the userinfo of a URI that did not come through a `BaseUrl`.
        let host_port = authority.map(|a| a.as_str().rsplit('@').next().unwrap_or_default());
        let target = match (scheme, host_port) {
            (Some(scheme), Some(host_port)) => Some(format!("{scheme}://{host_port}").into()),
            (None, Some(host_port)) => Some(host_port.into()),
            _ => None,
        };
        TransportError {
            kind,
            target,
            message: None,
            source: Some(Box::new(error)),
            hop: None,
            proxy,
        }
    }

    fn root_cause(&self) -> Option<&(dyn StdError + 'static)> {
        let mut cause: &(dyn StdError + 'static) = self.source.as_deref()?;
        while let Some(next) = cause.source() {
            cause = next;
        }
        Some(cause)
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> TransportErrorKind {
    let causes = causes(error);
    if error.is_connect() {
        if causes.iter().any(|e| e.is::<rustls::Error>()) {
            TransportErrorKind::Tls
        } else if causes.iter().any(|e| {
            e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        }) {
            TransportErrorKind::ConnectTimeout
        } else {
            TransportErrorKind::Connect
        }
    } else {
        match causes.iter().find_map(|e| e.downcast_ref::<hyper::Error>()) {
            Some(h) if h.is_incomplete_message() || h.is_closed() || h.is_canceled() => {
                TransportErrorKind::ConnectionClosed
            }
            Some(h) if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() => {
                TransportErrorKind::Protocol
            }
            Some(h) if h.is_user() || h.is_body_write_aborted() => TransportErrorKind::Request,
            Some(_) => TransportErrorKind::Other,
            // NOTE: hyper-util's own errors without a hyper cause are all about the request
            // (unsupported method or version, relative URI).
            None if error.source().is_none() => TransportErrorKind::Request,
            None => TransportErrorKind::Other,
        }
    }
}

/// `error` and its causes, including the errors `io::Error`s wrap (an `io::Error`'s
/// `source()` skips the error it wraps and goes straight to that error's source).
fn causes<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut stack = vec![error];
    while let Some(error) = stack.pop() {
        if out.len() >= 64 {
            break;
        }
        out.push(error);
        if let Some(next) = error.source() {
            stack.push(next);
        }
        if let Some(inner) = error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            stack.push(inner);
        }
    }
    out
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.target.as_deref().unwrap_or("the server");
        if let Some(hop) = self.hop {
            write!(f, "redirect hop {hop}: ")?;
        }
        match self.kind {
            TransportErrorKind::Connect => write!(f, "could not connect to {target}")?,
            TransportErrorKind::ConnectTimeout => write!(f, "connecting to {target} timed out")?,
            TransportErrorKind::Tls => write!(f, "TLS handshake with {target} failed")?,
            TransportErrorKind::ConnectionClosed => write!(
                f,
                "the connection to {target} closed before a complete response arrived"
            )?,
            TransportErrorKind::Protocol => {
                write!(f, "{target} sent a response that is not valid HTTP")?
            }
            TransportErrorKind::Request => write!(f, "the request to {target} could not be sent")?,
            TransportErrorKind::Config => f.write_str("invalid transport configuration")?,
            TransportErrorKind::Other => write!(f, "the request to {target} failed")?,
        }
        if let Some(proxy) = &self.proxy {
            write!(f, " (through the proxy {proxy})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        match self.root_cause() {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("message", &self.message)
            .field("source", &self.source)
            .field("hop", &self.hop)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Why a [`ResponseBody`](super::ResponseBody) could not be read to the end: the error of its
/// `http_body::Body` impl.
///
/// - [`kind`](BodyError::kind) tells a body that could not be **read** (the connection
///   failed while it arrived) from one that arrived but could not be **decoded** (not valid
///   data for its `Content-Encoding`).
/// - [`source`](StdError::source) is the underlying error: hyper's for
///   [`Read`](BodyErrorKind::Read), the decoder's [`std::io::Error`] for
///   [`Decode`](BodyErrorKind::Decode).
/// - `Display` says which, then the root cause, for example
///   `could not decode the response body: corrupt deflate stream`.
///
/// ```
/// use calm_client::transport::{BodyError, BodyErrorKind};
///
/// fn is_decode(err: &(dyn std::error::Error + 'static)) -> bool {
///     err.downcast_ref::<BodyError>().is_some_and(|e| e.kind() == BodyErrorKind::Decode)
/// }
/// # let _ = is_decode;
/// ```
pub struct BodyError {
    kind: BodyErrorKind,
    source: BoxError,
}

/// What failed; see [`BodyError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyErrorKind {
    /// The body could not be read: the connection closed or was reset before the body was
    /// complete, or the HTTP/2 stream failed. The server sent a response; the body is
    /// incomplete.
    Read,
    /// The body arrived but could not be decoded: it is not valid data for the
    /// `Content-Encoding` it came with, it ends in the middle of the compressed stream, or
    /// bytes follow the end of the compressed stream.
    Decode,
}

impl BodyError {
    /// What failed.
    pub fn kind(&self) -> BodyErrorKind {
        self.kind
    }

    /// Sorts an error of the body below: hyper's errors are read errors, anything else came
    /// from a decoder.
    pub(crate) fn from_body(error: impl Into<BoxError>) -> Self {
        let error = error.into();
        // NOTE: tower-http hands on the inner body's own error (hyper's) as it is, and its
        // decoders fail with `io::Error`s (or a message about trailing bytes).
        let kind = if causes(&*error).iter().any(|e| e.is::<hyper::Error>()) {
            BodyErrorKind::Read
        } else {
            BodyErrorKind::Decode
        };
        BodyError {
            kind,
            source: error,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BodyErrorKind::Read => f.write_str("could not read the response body")?,
            BodyErrorKind::Decode => f.write_str("could not decode the response body")?,
        }
        let mut cause: &(dyn StdError + 'static) = &*self.source;
        while let Some(next) = cause.source() {
            cause = next;
        }
        write!(f, ": {cause}")
    }
}

impl fmt::Debug for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl StdError for BodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
